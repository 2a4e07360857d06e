"""Logits processors: small transforms of a step's log-probabilities, applied in order.

A processor is called as ``proc(log_probs, tokens, step)`` with ``log_probs`` ``(N, V)``,
``tokens`` ``(N, step-1)`` (generated so far, no BOS) and ``step`` the 1-based position of the
token being chosen; it returns the processed ``(N, V)``. Processors change what the search
ranks by, never the model log-probability a hypothesis reports. A processor with
``takes_limit = True`` (``forced_eos``) is also given ``limit``, each row's length limit ``(N,)``,
by the searches that have one per sentence (``beam``, ``beam_lp``, the toolkit presets).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.registry import PROCESSORS
from lab.vocab import BOS_ID, EOS_ID, PAD_ID

NEG_INF = float("-inf")


@PROCESSORS.register("ban_tokens")
class BanTokens:
    """Never generate the given token ids (the search always bans PAD and BOS)."""

    def __init__(self, ids: Sequence[int]) -> None:
        self.ids = list(ids)

    def __call__(self, log_probs: Tensor, tokens: Tensor, step: int) -> Tensor:
        return log_probs.index_fill(1, torch.tensor(self.ids, device=log_probs.device), NEG_INF)


@PROCESSORS.register("min_length")
class MinLength:
    """Forbid EOS until the output has at least ``min_len`` tokens (EOS included)."""

    def __init__(self, min_len: int, eos_id: int = EOS_ID) -> None:
        self.min_len, self.eos_id = int(min_len), eos_id

    def __call__(self, log_probs: Tensor, tokens: Tensor, step: int) -> Tensor:
        if step >= self.min_len:
            return log_probs
        return log_probs.index_fill(
            1, torch.tensor([self.eos_id], device=log_probs.device), NEG_INF
        )


@PROCESSORS.register("no_repeat_ngram")
class NoRepeatNgram:
    """Forbid any n-gram from occurring twice in a hypothesis (Paulus et al., 2018)."""

    def __init__(self, n: int) -> None:
        if n < 1:
            raise LabError(f"processor no_repeat_ngram needs n >= 1, got {n}; set n=1 or more.")
        self.n = int(n)

    def __call__(self, log_probs: Tensor, tokens: Tensor, step: int) -> Tensor:
        n, t = self.n, tokens.size(1)
        if t < n or t == 0:
            return log_probs
        if n == 1:
            banned = torch.zeros_like(log_probs, dtype=torch.int32).scatter_add_(
                1, tokens, torch.ones_like(tokens, dtype=torch.int32)
            )
            return log_probs.masked_fill(banned > 0, NEG_INF)
        grams = tokens.unfold(1, n, 1)  # (N, G, n) every n-gram seen so far
        if grams.size(1) == 0:
            return log_probs
        prefix = tokens[:, t - n + 1 :]  # (N, n-1) the n-1 tokens just generated
        match = (grams[:, :, : n - 1] == prefix[:, None, :]).all(-1)  # (N, G)
        hits = torch.zeros_like(log_probs, dtype=torch.int32).scatter_add_(
            1, grams[:, :, n - 1], match.to(torch.int32)
        )  # (N, V)
        return log_probs.masked_fill(hits > 0, NEG_INF)


FORCED_EOS_SCORES = ("zero", "logprob")


@PROCESSORS.register("forced_eos")
class ForcedEOS:
    """At the last allowed step leave only EOS (HF forced_eos_token_id; fairseq's last step).

    ``max_len``: the step that must be EOS; 0 means each sentence's own length limit, which only
    the beam searches pass (``limit``). ``score``: what the forced EOS adds to the running score:
    ``zero``, as Hugging Face's ``ForcedEOSTokenLogitsProcessor`` (every score -inf, EOS's 0), or
    ``logprob``, its log-probability, as fairseq's ``SequenceGenerator._generate`` (``step >=
    max_len``: every token but EOS -inf). The reported model log-prob is EOS's either way.
    """

    takes_limit = True

    def __init__(self, max_len: int = 0, score: str = "zero", eos_id: int = EOS_ID) -> None:
        if score not in FORCED_EOS_SCORES:
            raise LabError(
                f"processor forced_eos: score={score!r} is not one of"
                f" {', '.join(FORCED_EOS_SCORES)} (zero: Hugging Face's, logprob: fairseq's)."
            )
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 0:
            raise LabError(
                f"processor forced_eos: max_len must be a whole number >= 0, got {max_len!r};"
                " 0 forces EOS at each sentence's own length limit (beam searches only)."
            )
        self.max_len, self.score, self.eos_id = max_len, score, eos_id

    def __call__(
        self, log_probs: Tensor, tokens: Tensor, step: int, limit: Tensor | None = None
    ) -> Tensor:
        n = log_probs.size(0)
        if self.max_len:
            limit = torch.full((n,), self.max_len, device=log_probs.device)
        assert limit is not None, "Processors refuses forced_eos without max_len or limits"
        last = limit.le(step)  # (N,) rows choosing their last allowed token
        if not last.any():
            return log_probs
        eos = log_probs[:, self.eos_id]  # (N,)
        forced = torch.full_like(log_probs, NEG_INF)  # (N, V)
        forced[:, self.eos_id] = eos if self.score == "logprob" else 0.0
        return torch.where(last[:, None], forced, log_probs)


def model_forces_eos(model: DecoderModel) -> bool:
    """Whether ``model`` asks for EOS at the length limit: a Hugging Face model (model=hf) whose
    generation config sets ``forced_eos_token_id``, as MarianMT's does; other models never do."""
    hf = getattr(model, "hf", None)
    forced = getattr(getattr(hf, "generation_config", None), "forced_eos_token_id", None)
    if forced is None:
        return False
    ids = list(forced) if isinstance(forced, list | tuple) else [forced]
    if ids != [model.eos_id]:
        raise LabError(
            f"the model's forced_eos_token_id={forced} is not its EOS id {model.eos_id}; the lab"
            " forces EOS only: set search.forced_eos=off (or zero to force EOS)."
        )
    return True


class Processors:
    """The processors a search applies, built (and so validated) with the search.

    Always first: PAD and BOS banned; then EOS banned before ``min_len``; then each
    ``{"name": ..., **kwargs}`` spec of the config, in order. A misspelled name or key fails
    when the search is built, before any training. ``for_model`` binds them to a model's ids.
    ``limits``: whether the search passes each row's length limit to ``apply`` (the beam
    searches do); without it, ``forced_eos`` needs its own ``max_len``.
    """

    def __init__(
        self,
        specs: Sequence[Mapping[str, Any]] | None = None,
        min_len: int = 0,
        limits: bool = False,
    ) -> None:
        self.specs = [dict(s) for s in specs or ()]
        self.min_len, self.limits = int(min_len), limits
        for spec in self.specs:
            if "name" not in spec:
                raise LabError(
                    f"search.processors entry {spec} has no name; write {{name: <processor>, ...}}"
                    f" with one of: {', '.join(PROCESSORS.names())}."
                )
        self.for_ids(PAD_ID, BOS_ID, EOS_ID)

    def for_model(self, model: DecoderModel) -> list:
        return self.for_ids(model.pad_id, model.bos_id, model.eos_id)

    def for_ids(self, pad_id: int, bos_id: int, eos_id: int) -> list:
        procs: list = [BanTokens([pad_id, bos_id])]
        if self.min_len > 1:
            procs.append(MinLength(self.min_len, eos_id))
        for spec in self.specs:
            spec = dict(spec)
            name = spec.pop("name")
            if name in ("min_length", "forced_eos"):
                spec.setdefault("eos_id", eos_id)
            procs.append(PROCESSORS.build(name, **spec))
            if name == "forced_eos" and not (procs[-1].max_len or self.limits):
                raise LabError(
                    "processor forced_eos needs max_len (the step that must be EOS) with this"
                    " search; only beam searches know each sentence's own limit."
                )
        return procs


def apply(
    procs: Sequence, log_probs: Tensor, tokens: Tensor, step: int, limit: Tensor | None = None
) -> Tensor:
    """``procs`` applied in order; ``limit`` ``(N,)``, each row's length limit, goes to the
    processors that take it."""
    for p in procs:
        if getattr(p, "takes_limit", False):
            log_probs = p(log_probs, tokens, step, limit)
        else:
            log_probs = p(log_probs, tokens, step)
    return log_probs
