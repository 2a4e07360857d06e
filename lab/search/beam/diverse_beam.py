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

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.registry import SEARCHES, STOP_RULES
from lab.search.beam.beam_search import Batch, BeamSearch
from lab.search.beam.finished import FinishedPool
from lab.search.beam.groups import DiverseStepper
from lab.search.beam.penalties import NoPenalty
from lab.search.beam.stop import StopView
from lab.search.driver import decode
from lab.search.limits import check_positive
from lab.search.prefix import ForcedPrefix
from lab.search.processors.chain import Processors
from lab.search.types import SearchOutput


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

    def __call__(
        self, model: DecoderModel, src: Tensor, src_lengths: Tensor, constraints: Batch = None
    ) -> SearchOutput:
        procs = self.processors.for_call(model, constraints)
        n, m = src.size(0), self.k // self.groups
        prefix = ForcedPrefix.of(constraints, src.device)  # every group starts with it

        def start(limit: Tensor) -> DiverseStepper:
            size = int(limit.max())
            pools = [FinishedPool(n, m, size, model.pad_id, src.device) for _ in range(self.groups)]
            return DiverseStepper(self, procs, pools, model.eos_id)

        with torch.inference_mode():
            return decode(model, src, src_lengths, self.limits, self.k, start, prefix)


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
