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
model's. Everything else is ``lab.search.beam``: candidates, pool of finished hypotheses, stop
rule and logits processors, one set per group (a group stops by its own stop rule; the
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
from lab.search.base import (
    Cost,
    Hypothesis,
    SearchOutput,
    check_positive,
    drop_sentences,
    max_lengths,  # noqa: I001 - one name a line keeps the list short
)
from lab.search.beam import BeamSearch
from lab.search.candidates import top_candidates
from lab.search.penalties import NoPenalty
from lab.search.pool import NEG_INF, Pool
from lab.search.processors import Processors, apply
from lab.search.stop import StopView


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

    def _search(self, model: DecoderModel, src: Tensor, src_lengths: Tensor) -> SearchOutput:
        procs, k, n, dev = self.processors.for_model(model), self.k, src.size(0), src.device
        groups, m = self.groups, self.k // self.groups  # G groups of m beams: rows (n, G, m)
        cost = Cost(sentences=n, model_calls=1)
        results: list[list[Hypothesis]] = [[] for _ in range(n)]
        limit = max_lengths(src_lengths, self.max_len_a, self.max_len_b, model)  # (B,)
        state = model.init_state(model.encode(src, src_lengths), k)
        alive = torch.arange(n, device=dev)  # (n,) original sentence ids
        pools = [Pool(n, m, int(limit.max()), model.pad_id, dev) for _ in range(groups)]
        prev = torch.full((n * k,), model.bos_id, device=dev)  # (n*K,)
        tokens = prev.new_zeros(n * k, 0)  # (n*K, t) generated so far
        run_score = torch.full((n, groups, m), NEG_INF, device=dev)  # (n, G, m) penalized sum
        run_score[:, :, 0] = 0.0  # a group's beams start identical: expand only its first
        run_logp = torch.zeros(n, groups, m, device=dev)  # (n, G, m) model log-prob sum
        stopped = torch.zeros(n, groups, dtype=torch.bool, device=dev)  # (n, G)
        t = 0
        while alive.numel():
            t += 1
            log_probs, state = model.step(prev, state)  # (n*K, V)
            cost.count_step(n * k)
            vocab = log_probs.size(1)
            proc = apply(procs, log_probs, tokens, t).view(n, groups, m, vocab)
            log_probs = log_probs.view(n, groups, m, vocab)
            prefixes = tokens.view(n, groups, m, t - 1)
            at_limit = limit[alive].le(t)  # (n,)
            chosen = torch.zeros(n, vocab, device=dev)  # (n, V) tokens groups < g continue with
            new_score, new_logp, new_tok, new_rows = [], [], [], []
            for g in range(groups):
                penalized = proc[:, g]  # (n, m, V)
                if g and self.strength:
                    penalized = penalized - self.strength * chosen[:, None, :]
                penalized = penalized.reshape(n * m, vocab)
                mine = prefixes[:, g].reshape(n * m, t - 1)  # (n*m, t-1)
                c = top_candidates(
                    run_score[:, g],
                    run_logp[:, g],
                    log_probs[:, g].reshape(n * m, vocab),
                    penalized,
                    model.eos_id,
                )
                pool = pools[g]
                pool.add_stuck(run_score[:, g], run_logp[:, g], penalized, mine, t, self.penalty)
                pool.add_step(c, mine, at_limit, t, self.penalty)
                live_s, live_tok = c.of_live(c.score), c.of_live(c.token)  # (n, m)
                view = StopView.of(pool, live_s[:, 0], t, limit[alive], self.penalty)
                stopped[:, g] |= self.stop_rule(view) | at_limit | live_s[:, 0].isinf()
                chosen.scatter_add_(1, live_tok, live_s.isfinite().float())
                new_score.append(live_s.masked_fill(stopped[:, g, None], NEG_INF))
                new_logp.append(c.of_live(c.raw))
                new_tok.append(live_tok)
                new_rows.append(c.of_live(c.beam) + g * m)  # (n, m) row within the sentence
            rows = torch.arange(n, device=dev)[:, None, None] * k + torch.stack(new_rows, 1)
            rows = rows.view(-1)  # (n*K,) sentence-major, then group, then beam
            state = model.reorder(state, rows)
            live_tok = torch.stack(new_tok, dim=1).view(-1, 1)  # (n*K, 1)
            tokens = torch.cat([tokens.index_select(0, rows), live_tok], dim=1)
            prev = live_tok.view(-1)
            run_score, run_logp = torch.stack(new_score, 1), torch.stack(new_logp, 1)
            done = stopped.all(dim=1)  # (n,)
            if done.any():
                for i in done.nonzero().squeeze(1).tolist():
                    results[int(alive[i])] = self._merged(pools, i, model.eos_id)
                for pool in pools:
                    pool.keep((~done).nonzero().squeeze(1))
                state, per_sentence, (prev, tokens) = drop_sentences(
                    done, k, state, [alive, run_score, run_logp, stopped], [prev, tokens]
                )
                alive, run_score, run_logp, stopped = per_sentence
                n = alive.numel()
        return SearchOutput(results, cost)

    def _merged(self, pools: list[Pool], i: int, eos: int) -> list[Hypothesis]:
        """Sentence ``i``'s n-best over every group's pool, best score first (ties: group
        order), each hypothesis tagged with its group."""
        hyps = [
            dataclasses.replace(h, info={"group": g})
            for g, pool in enumerate(pools)
            for h in pool.hypotheses(i, pool.k, eos)
        ]
        return sorted(hyps, key=lambda h: -h.score)[: self.nbest]


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
