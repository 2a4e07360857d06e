"""Diverse beam search (Vijayakumar et al., 2018): the beam of K split into G groups of K/G, each
a beam search of its own, decoded step by step in group order; a group is pushed away from the
tokens the groups before it chose at the same step by a Hamming diversity penalty.

At step t, group g ranks its extensions by running score + processed step log-prob
``- diversity_strength * count(token)``, where ``count`` is how many hypotheses of groups < g
(same sentence) continue with that token at step t. As in Hugging Face's group beam search
(``HammingDiversityLogitsProcessor``), only the hypotheses a group keeps growing count, not the
ones it finishes with EOS at that step, and a group that has stopped counts for nothing;
fairseq's ``DiverseBeamSearch`` counts all 2K/G candidates of a group instead. The penalty
enters the running score, so it is part of the reported ``score``; ``logprob`` stays the
model's. Everything else is ``beam``'s: candidates, pool of finished hypotheses, stop rule
and logits processors, one set per group (a group stops by its own stop rule; the
sentence stops when every group has). Group 0 is plain beam search of K/G, so ``num_groups=1``
is ``beam``, and ``diversity_strength=0`` repeats beam search of K/G in every group.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.registry import SEARCHES, STOP_RULES
from lab.search.beam.beam_search import BeamSearch
from lab.search.beam.candidates import top_candidates
from lab.search.beam.finished import FinishedPool
from lab.search.beam.penalties import NoPenalty
from lab.search.beam.stop import StopView
from lab.search.contracts import Processor
from lab.search.driver import Move, Step, decode
from lab.search.limits import check_positive
from lab.search.processors.chain import Processors
from lab.search.types import NEG_INF, Hypothesis, SearchOutput


class DiverseBeamSearch(BeamSearch):
    """Beam search in ``num_groups`` groups with a Hamming diversity penalty between groups.

    Returns the ``nbest`` best of all groups' finished hypotheses, merged and sorted by score;
    each carries ``info={"group": g}``. Hypotheses of different groups may be equal (with a
    weak penalty, groups can reach the same output); they are kept, as Hugging Face does.
    """

    def __init__(
        self,
        beam_size: int,
        num_groups: int,
        diversity_strength: float,
        nbest: int,
        max_len: tuple[float, int],
        stop_rule: Callable[[StopView], Tensor],
        processors: Processors,
    ) -> None:
        super().__init__(beam_size, nbest, max_len, NoPenalty(), stop_rule, processors)
        if self.k % check_positive("num_groups", num_groups):
            valid = ", ".join(str(g) for g in range(1, self.k + 1) if self.k % g == 0)
            raise LabError(
                f"search.num_groups={num_groups} must divide search.beam_size={self.k} into"
                f" equal groups; valid num_groups for beam_size={self.k}: {valid}."
            )
        self.groups = int(num_groups)
        self.strength = float(diversity_strength)
        if not (math.isfinite(self.strength) and self.strength >= 0):
            raise LabError(
                f"search.diversity_strength must be a finite number >= 0, got"
                f" {diversity_strength}; set it to 0 (no penalty: every group is beam search of"
                f" beam_size/num_groups) or more."
            )

    def __call__(self, model: DecoderModel, src: Tensor, src_lengths: Tensor) -> SearchOutput:
        procs, n, m = self.processors.for_model(model), src.size(0), self.k // self.groups

        def start(limit: Tensor) -> DiverseStepper:
            size = int(limit.max())
            pools = [FinishedPool(n, m, size, model.pad_id, src.device) for _ in range(self.groups)]
            return DiverseStepper(self, procs, pools, model.eos_id)

        with torch.inference_mode():
            return decode(model, src, src_lengths, self.limits, self.k, start)


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


@SEARCHES.register("diverse_beam")
def diverse_beam(
    beam_size: int = 10,
    num_groups: int = 10,
    diversity_strength: float = 0.5,
    nbest: int = 1,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
    min_len: int = 0,
    stop_rule: str = "first_k",
    processors: Sequence[Mapping[str, Any]] | None = None,
) -> DiverseBeamSearch:
    """Diverse beam search: num_groups groups of beam_size/num_groups, Hamming penalty."""
    stop, procs = STOP_RULES.build(stop_rule), Processors(processors, min_len)
    return DiverseBeamSearch(
        beam_size, num_groups, diversity_strength, nbest, (max_len_a, max_len_b), stop, procs
    )
