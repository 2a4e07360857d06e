"""One step of stochastic beam search (``lab.search.sampling.stochastic_beam``): children's
perturbed scores drawn from a truncated Gumbel below their parent's, the k largest kept."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lab.search.contracts import Processor
from lab.search.driver import Move, Step
from lab.search.rng import gumbel
from lab.search.types import NEG_INF, Hypothesis


def log1mexp(a: Tensor) -> Tensor:
    """``log(1 - exp(a))`` for ``a <= 0``, accurate at both ends (Maechler, 2012): -inf at
    ``a = 0``, 0 at ``a = -inf``."""
    return torch.where(a > -math.log(2.0), torch.log(-torch.expm1(a)), torch.log1p(-torch.exp(a)))


def truncated_gumbel(parent: Tensor, perturbed: Tensor) -> Tensor:
    """Children's perturbed scores, conditioned on their maximum being the parent's.

    ``parent`` ``(N, 1)``: each row's perturbed score T; ``perturbed`` ``(N, V)``: independent
    Gumbel(phi_i) draws ``phi_i + g_i`` for the children, whose maximum is Z. Returns
    ``-log(exp(-T) - exp(-Z) + exp(-G_i))`` ``(N, V)``, computed as
    ``T - softplus(T - G_i + log1mexp(G_i - Z))`` so that nothing overflows; the arg-max child
    gets exactly T. Rows whose parent is -inf (no prefix there) or without any possible child
    get -inf everywhere, as do children of probability 0.
    """
    z = perturbed.amax(dim=-1, keepdim=True)  # (N, 1)
    v = parent - perturbed + log1mexp(perturbed - z)  # (N, V)
    out = parent - v.clamp_min(0.0) - torch.log1p(torch.exp(-v.abs()))  # (N, V)
    usable = parent.isfinite() & z.isfinite()  # (N, 1)
    return out.masked_fill(~usable | out.isnan(), NEG_INF)


class StochasticStepper:
    """k prefixes per sentence with their perturbed scores; ended outputs stay as leaves."""

    def __init__(
        self,
        k: int,
        temperature: float,
        procs: list[Processor],
        gens: list[torch.Generator],
        ids: tuple[int, int],
        dev: torch.device,
    ) -> None:
        """``ids``: the model's EOS and PAD ids."""
        self.processors, self.gens, (self.eos, self.pad) = procs, gens, ids
        self.k, self.temperature, n, f64 = k, temperature, len(gens), torch.float64
        self.score = torch.full((n, self.k), NEG_INF, dtype=f64, device=dev)  # (n, k) G
        self.score[:, 0] = gumbel(gens, 1, 1, dev).view(n)  # the root: G ~ Gumbel(log 1)
        self.phi = torch.zeros(n, self.k, dtype=f64, device=dev)  # (n, k) sampling log-prob
        self.logp = torch.zeros(n, self.k, dtype=f64, device=dev)  # (n, k) model log-prob
        self.ended = torch.zeros(n, self.k, dtype=torch.bool, device=dev)  # (n, k) a leaf
        self.length = torch.zeros(n, self.k, dtype=torch.long, device=dev)  # (n, k) EOS incl.
        self.kappa = torch.full((n,), NEG_INF, dtype=f64, device=dev)  # (n,) best G left behind

    def advance(self, step: Step) -> Move:
        k, (n, vocab), f64 = self.k, step.processed.shape, torch.float64
        n //= k
        step_phi = torch.log_softmax(step.processed.to(f64) / self.temperature, dim=-1)
        child_phi = self.phi.view(n * k, 1) + step_phi  # (n*k, V)
        noise = gumbel(self.gens, k, vocab, step_phi.device)  # (n*k, V) k rows per sentence
        growing = self.score.isfinite() & ~self.ended  # (n, k)
        parent = self.score.masked_fill(~growing, NEG_INF).view(n * k, 1)  # (n*k, 1)
        child_g = truncated_gumbel(parent, child_phi + noise).view(n, k * vocab)
        leaves = self.score.masked_fill(~self.ended, NEG_INF)  # (n, k) ended outputs compete
        top, idx = torch.cat([child_g, leaves], dim=1).topk(k + 1, dim=1)  # (n, k+1)
        self.kappa = torch.maximum(self.kappa, top[:, k])  # the best subtree dropped so far
        self.score, idx = top[:, :k], idx[:, :k]  # (n, k)
        child = idx < k * vocab  # (n, k) a new prefix (else: a leaf kept)
        slot = torch.where(child, idx // vocab, idx - k * vocab)  # (n, k) the row it came from
        cidx = idx.clamp_max(k * vocab - 1)  # (n, k) index into the children
        token = torch.where(child, cidx % vocab, self.pad)  # (n, k)
        step_lp = step.log_probs.to(f64).view(n, k * vocab).gather(1, cidx)  # (n, k)
        child_step_phi = step_phi.view(n, -1).gather(1, cidx)  # (n, k)
        self.phi = self.phi.gather(1, slot) + torch.where(child, child_step_phi, 0)
        self.logp = self.logp.gather(1, slot) + torch.where(child, step_lp, 0.0)
        self.length = self.length.gather(1, slot) + child.long()
        at_limit = step.limit.le(step.t)[:, None]  # (n, 1)
        self.ended = ~child | token.eq(self.eos) | at_limit  # (n, k)
        rows = (torch.arange(n, device=slot.device)[:, None] * k + slot).view(-1)  # (n*k,)
        done = (self.ended | self.score.isneginf()).all(dim=1)  # (n,)
        feed = token.masked_fill(~child, self.eos).view(-1)  # (n*k,) leaves feed EOS
        return Move(token.view(-1), done, rows=rows, feed=feed)

    def finish(self, sentences: Tensor, tokens: Tensor) -> list[list[Hypothesis]]:
        return [self._sample(i, tokens) for i in sentences.tolist()]

    def keep(self, sentences: Tensor, rows: Tensor) -> None:
        self.gens = [self.gens[i] for i in sentences.tolist()]
        self.score, self.phi, self.logp = (
            self.score[sentences],
            self.phi[sentences],
            self.logp[sentences],
        )
        self.ended, self.length = self.ended[sentences], self.length[sentences]
        self.kappa = self.kappa[sentences]

    def _sample(self, i: int, tokens: Tensor) -> list[Hypothesis]:
        """Sentence ``i``'s sampled outputs (its beam's leaves, best perturbed score first)."""
        threshold, k = float(self.kappa[i]), self.k
        out = []
        for g, sp, lp, n_tok, seq in zip(
            self.score[i].tolist(),
            self.phi[i].tolist(),
            self.logp[i].tolist(),
            self.length[i].tolist(),
            tokens[i * k : (i + 1) * k].tolist(),
            strict=True,
        ):
            if g == NEG_INF:
                continue
            toks = tuple(seq[:n_tok])
            info = {"perturbed_score": g, "sample_logprob": sp, "threshold": threshold}
            finished = bool(toks) and toks[-1] == self.eos
            out.append(Hypothesis(toks, lp, g, n_tok, finished, info=info))
        return out
