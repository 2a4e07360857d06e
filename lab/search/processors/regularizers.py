"""UID-regularized decoding (Meister, Cotterell & Vieira, 2020, "If beam search is the answer,
what was the question?", Section 5): decode for

    y* = argmax_y  log p(y | x) - lam * R(y)                                    (their Eq. 9)

where ``u_t = -log p(y_t | y_<t, x)`` is the surprisal of the t-th output token (natural log,
EOS included, so ``sum_t -u_t`` is a hypothesis' ``logprob``) and R is one of

* ``square``: R(y) = sum_t u_t^2
* ``max``:    R(y) = max_t u_t
* ``var``:    R(y) = 1/|y| sum_t (u_t - mu)^2,  mu = 1/|y| sum_t u_t
* ``local``:  R(y) = 1/|y| sum_t (u_t - u_{t-1})^2,  u_0 = 0 (the BOS position, given)
* ``greedy``: R(y) = sum_t (u_t - min_{y'} u_t(y'))^2, which needs every step's distribution.

How each enters the search:

* ``uid_square`` and ``uid_greedy`` add up over steps, so they are stateless logits processors
  (``lam * u^2``, resp. ``lam * (u - min u)^2``, subtracted per candidate token): exact.
* ``uid_max`` is a processor with state: a row's running max ``m`` of its prefix's surprisals,
  and the candidate's increment ``-lam * max(0, u - m)``; the increments of a sequence add up
  to ``-lam * max_t u_t`` exactly (``m`` starts at 0, surprisals are >= 0). Processors are not
  told how the search reorders rows, so ``m`` is looked up by prefix; a prefix fixes ``m`` only
  within one sentence, so it refuses batches of several sentences (``eval.batch_size=1``).
* ``var`` and ``local`` are not monotone in the prefix (a later token can lower them) and need
  the whole sequence (mu, |y|): no per-step form is exact, so ``rerank`` applies them (and any
  of the others) to a finished n-best list as a final rescoring.

Processors see the log-probs the earlier processors left: put ``uid_*`` first among
``search.processors`` (the built-in bans only set -inf, which stays -inf). They change the
search's ranking ``score``, never the reported ``logprob``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lab.data import pad
from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.registry import PROCESSORS
from lab.search.types import Hypothesis

KINDS = ("square", "max", "var", "local")


def uid_regularizer(u: Tensor | Sequence[float], kind: str) -> float:
    """R(y) of Meister et al. (2020) from the surprisals ``u`` ``(T,)`` of one output."""
    u = torch.as_tensor(u, dtype=torch.float64)  # (T,)
    if u.numel() == 0:
        return 0.0
    if kind == "square":
        return float((u * u).sum())
    if kind == "max":
        return float(u.max())
    if kind == "var":
        return float(((u - u.mean()) ** 2).mean())
    if kind == "local":
        prev = torch.cat([u.new_zeros(1), u[:-1]])  # (T,) u_{t-1}, u_0 = 0
        return float(((u - prev) ** 2).mean())
    raise LabError(f"unknown UID regularizer '{kind}'; use one of: {', '.join(KINDS)}.")


def uid_objective(token_log_probs: Tensor | Sequence[float], kind: str, lam: float) -> float:
    """log p(y) - lam * R(y) from the per-token log-probs ``(T,)`` of one output."""
    lp = torch.as_tensor(token_log_probs, dtype=torch.float64)  # (T,)
    return float(lp.sum()) - float(lam) * uid_regularizer(-lp, kind)


def rerank(
    model: DecoderModel,
    src: Tensor,
    src_lengths: Tensor,
    nbest: list[list[Hypothesis]],
    kind: str,
    lam: float,
) -> list[list[Hypothesis]]:
    """Rescore each sentence's n-best list by ``log p(y) - lam * R(y)`` and sort by it.

    ``src`` ``(B, S)`` and ``src_lengths`` ``(B,)`` are the batch ``nbest`` was decoded from;
    the token log-probs come from one teacher-forced ``model.token_log_probs`` call. The
    returned hypotheses keep their ``logprob``; ``score`` becomes the objective.
    """
    uid_regularizer([], kind)  # fails on an unknown kind before any model call
    flat = [(i, h) for i, hyps in enumerate(nbest) for h in hyps if h.length]
    if not flat:
        return [list(hyps) for hyps in nbest]
    rows = torch.tensor([i for i, _ in flat], device=src.device)  # (H,)
    tgt, tgt_len = pad([h.tokens for _, h in flat])  # (H, T), (H,)
    pos = torch.arange(tgt.size(1))[None, :]  # (1, T)
    tgt = tgt.masked_fill(pos >= tgt_len[:, None], model.pad_id).to(src.device)  # (H, T)
    with torch.inference_mode():
        lp = model.token_log_probs(src[rows], src_lengths[rows], tgt).cpu()  # (H, T)
    out: list[list[Hypothesis]] = [[h for h in hyps if not h.length] for hyps in nbest]
    for (i, h), row in zip(flat, lp, strict=True):
        score = uid_objective(row[: h.length], kind, lam)
        out[i].append(Hypothesis(h.tokens, h.logprob, score, h.length, h.finished))
    return [sorted(hyps, key=lambda h: -h.score) for hyps in out]


def _surprisal(log_probs: Tensor) -> Tensor:
    """``-log_probs`` ``(N, V)``, 0 where a candidate is banned (-inf): its -inf stays."""
    return torch.where(torch.isfinite(log_probs), -log_probs, torch.zeros_like(log_probs))


@PROCESSORS.register("uid_square")
class UIDSquare:
    """UID squared regularizer (Meister et al., 2020): log p(y) - lam * sum_t u_t^2."""

    def __init__(self, lam: float) -> None:
        self.lam = float(lam)

    def __call__(self, log_probs: Tensor, tokens: Tensor, step: int) -> Tensor:
        u = _surprisal(log_probs)  # (N, V)
        return log_probs - self.lam * u * u


@PROCESSORS.register("uid_greedy")
class UIDGreedy:
    """UID greedy regularizer (Meister et al., 2020): - lam * sum_t (u_t - min_y' u_t(y'))^2."""

    def __init__(self, lam: float) -> None:
        self.lam = float(lam)

    def __call__(self, log_probs: Tensor, tokens: Tensor, step: int) -> Tensor:
        gap = log_probs.max(dim=-1, keepdim=True).values - log_probs  # (N, V) u - min u
        gap = torch.where(torch.isfinite(gap), gap, torch.zeros_like(gap))
        return log_probs - self.lam * gap * gap


@PROCESSORS.register("uid_max")
class UIDMax:
    """UID max regularizer (Meister et al., 2020): - lam * max_t u_t; one sentence per batch."""

    def __init__(self, lam: float) -> None:
        self.lam = float(lam)
        self._prev: tuple[dict[tuple[int, ...], int], Tensor, Tensor] | None = None

    def __call__(self, log_probs: Tensor, tokens: Tensor, step: int) -> Tensor:
        if step == 1:
            if not torch.allclose(log_probs, log_probs[:1].expand_as(log_probs), atol=1e-5):
                raise LabError(
                    "processor uid_max needs one sentence per batch; set eval.batch_size=1."
                )
            running = log_probs.new_zeros(log_probs.size(0))  # (N,) max surprisal so far
        else:
            running = self._running(tokens)  # (N,)
        u = _surprisal(log_probs)  # (N, V)
        prefixes = {tuple(row): i for i, row in enumerate(tokens.tolist())}
        self._prev = (prefixes, u, running)
        return log_probs - self.lam * (u - running[:, None]).clamp_min(0.0)

    def _running(self, tokens: Tensor) -> Tensor:
        """Each row's running max, from its parent's (found by prefix) and its last token."""
        if self._prev is None:
            raise LabError("processor uid_max was called mid-sentence; start at step 1.")
        prefixes, u_prev, running_prev = self._prev
        try:
            parents = [prefixes[tuple(row[:-1])] for row in tokens.tolist()]
        except KeyError:
            raise LabError(
                "processor uid_max lost a prefix (several sentences?); set eval.batch_size=1."
            ) from None
        par = torch.tensor(parents, device=tokens.device)  # (N,)
        last = u_prev[par].gather(1, tokens[:, -1:]).squeeze(1)  # (N,) u of the last token
        return torch.maximum(running_prev[par], last)
