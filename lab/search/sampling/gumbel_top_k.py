"""One step of stochastic beam search (``lab.search.sampling.stochastic_beam``): children's
perturbed scores drawn from a truncated Gumbel below their parent's, the k largest kept. Only
each row's k+1 best children can make the beam's k kept and its threshold, so only they are
drawn, in order (``lab.search.sampling.children``), not a Gumbel per vocabulary entry.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lab.search.contracts import Processor
from lab.search.driver import Move, Step
from lab.search.rng import gumbel, uniform
from lab.search.sampling.children import ordered_children
from lab.search.types import NEG_INF, Hypothesis


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
        k, n = self.k, step.processed.size(0) // self.k
        m = k + 1  # children per row that can matter: the k kept and the threshold
        top = step.processed.amax(-1, keepdim=True)  # (n*k, 1)
        stuck = top.isneginf().view(n, k)  # (n, k) no child has probability
        shift = top.masked_fill(top.isneginf(), 0.0)  # (n*k, 1) the largest weight is 1
        log_w = (step.processed - shift) / self.temperature  # (n*k, V) float32
        growing = self.score.isfinite() & ~self.ended & ~stuck  # (n, k)
        parent = self.score.masked_fill(~growing, NEG_INF).view(n * k)  # (n*k,)
        noise = uniform(self.gens, k, 2 * m - 1, step.processed.device)  # (n*k, 2m-1)
        leaves = self.score.masked_fill(~self.ended, NEG_INF)  # (n, k) ended outputs compete
        toks, child_g, log_total = ordered_children(
            log_w.exp(), parent, self.phi.view(-1), noise, leaves
        )
        picked = (step.processed.gather(1, toks).double() - shift.double()) / self.temperature
        cand_phi = (picked - log_total[:, None]).view(n, k * m)  # (n, k*m) step sampling lp
        cand_lp = step.log_probs.gather(1, toks).double().view(n, k * m)  # (n, k*m)
        top, idx = torch.cat([child_g.view(n, k * m), leaves], dim=1).topk(k + 1, dim=1)
        self.kappa = torch.maximum(self.kappa, top[:, k])  # the best subtree dropped so far
        self.score, idx = top[:, :k], idx[:, :k]  # (n, k)
        child = idx < k * m  # (n, k) a new prefix (else: a leaf kept)
        slot = torch.where(child, idx // m, idx - k * m)  # (n, k) the row it came from
        cidx = idx.clamp_max(k * m - 1)  # (n, k) index into the candidates
        token = torch.where(child, toks.view(n, k * m).gather(1, cidx), self.pad)  # (n, k)
        step_lp = cand_lp.gather(1, cidx)  # (n, k)
        child_step_phi = cand_phi.gather(1, cidx)  # (n, k)
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
