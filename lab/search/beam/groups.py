"""One step of diverse beam search (``lab.search.beam.diverse_beam``): each group of beams in
turn, pushed away from the tokens the groups before it continue with."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from lab.search.beam.candidates import top_candidates
from lab.search.beam.finished import FinishedPool
from lab.search.beam.stop import StopView
from lab.search.contracts import Processor
from lab.search.driver import Move, Step
from lab.search.types import NEG_INF, Hypothesis

if TYPE_CHECKING:
    from lab.search.beam.diverse_beam import DiverseBeamSearch


class DiverseStepper:
    """G groups of m beams per sentence (rows ``(n, G, m)``), each with its finished pool."""

    def __init__(
        self, search: DiverseBeamSearch, procs: list[Processor], pools: list[FinishedPool], eos: int
    ) -> None:
        self.search, self.processors, self.pools, self.eos = search, procs, pools, eos
        n, g, dev = pools[0].score.size(0), search.groups, pools[0].score.device
        m = search.k // g
        self.run_score = torch.full((n, g, m), NEG_INF, device=dev)  # (n, G, m) penalized sum
        self.run_score[:, :, 0] = 0.0  # a group's beams start identical: expand only its first
        self.run_logp = torch.zeros(n, g, m, device=dev)  # (n, G, m) model log-prob sum
        self.stopped = torch.zeros(n, g, dtype=torch.bool, device=dev)  # (n, G)

    def advance(self, step: Step) -> Move:
        s, (n, groups, m), t = self.search, self.run_score.shape, step.t
        vocab = step.log_probs.size(1)
        proc = step.processed.view(n, groups, m, vocab)
        log_probs = step.log_probs.view(n, groups, m, vocab)
        prefixes = step.tokens.view(n, groups, m, t - 1)
        at_limit = step.limit.le(t)  # (n,)
        chosen = torch.zeros(n, vocab, device=proc.device)  # (n, V) tokens groups < g continue
        new_score, new_logp, new_tok, new_rows = [], [], [], []
        for g, pool in enumerate(self.pools):
            penalized = proc[:, g]  # (n, m, V)
            if g and s.strength:
                penalized = penalized - s.strength * chosen[:, None, :]
            penalized = penalized.reshape(n * m, vocab)
            mine = prefixes[:, g].reshape(n * m, t - 1)  # (n*m, t-1)
            run_score, run_logp = self.run_score[:, g], self.run_logp[:, g]  # (n, m)
            lp = log_probs[:, g].reshape(n * m, vocab)
            c = top_candidates(run_score, run_logp, lp, penalized, self.eos)
            pool.add_stuck(run_score, run_logp, penalized, mine, t, s.penalty)
            pool.add_step(c, mine, at_limit, t, s.penalty)
            live_s, live_tok = c.of_live(c.score), c.of_live(c.token)  # (n, m)
            view = StopView.of(pool, live_s[:, 0], t, step.limit, s.penalty)
            self.stopped[:, g] |= s.stop_rule(view) | at_limit | live_s[:, 0].isinf()
            chosen.scatter_add_(1, live_tok, live_s.isfinite().float())
            new_score.append(live_s.masked_fill(self.stopped[:, g, None], NEG_INF))
            new_logp.append(c.of_live(c.raw))
            new_tok.append(live_tok)
            new_rows.append(c.of_live(c.beam) + g * m)  # (n, m) row within the sentence
        rows = torch.arange(n, device=proc.device)[:, None, None] * s.k + torch.stack(new_rows, 1)
        self.run_score, self.run_logp = torch.stack(new_score, 1), torch.stack(new_logp, 1)
        token = torch.stack(new_tok, dim=1).view(-1)  # (n*K,) sentence, then group, then beam
        return Move(token, self.stopped.all(dim=1), rows=rows.view(-1))

    def finish(self, sentences: Tensor, tokens: Tensor) -> list[list[Hypothesis]]:
        return [self._merged(i) for i in sentences.tolist()]

    def keep(self, sentences: Tensor, rows: Tensor) -> None:
        for pool in self.pools:
            pool.keep(sentences)
        self.run_score, self.run_logp = self.run_score[sentences], self.run_logp[sentences]
        self.stopped = self.stopped[sentences]

    def _merged(self, i: int) -> list[Hypothesis]:
        """Sentence ``i``'s n-best over every group's pool, best score first (ties: group
        order), each hypothesis tagged with its group."""
        hyps = [
            dataclasses.replace(h, info={"group": g})
            for g, pool in enumerate(self.pools)
            for h in pool.hypotheses(i, pool.k, self.eos)
        ]
        return sorted(hyps, key=lambda h: -h.score)[: self.search.nbest]
