"""Greedy search: the arg-max token at every step, batched, finished sentences dropped.

A sentence ends at EOS, at its length limit, or when the processors leave it no legal token
(every step log-prob -inf): then its output is the prefix so far, unfinished.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from lab.models.base import DecoderModel
from lab.registry import SEARCHES
from lab.search.contracts import Processor
from lab.search.driver import Move, Step, decode
from lab.search.limits import Limits
from lab.search.prefix import ForcedPrefix
from lab.search.processors.chain import Processors
from lab.search.types import Constraints, Hypothesis, SearchOutput


class GreedyStepper:
    """One row per sentence: the best processed token; sums of model and processed log-probs."""

    def __init__(self, processors: Sequence[Processor], n: int, eos: int, device: Any) -> None:
        self.processors, self.eos = processors, eos
        self.raw = torch.zeros(n, device=device)  # (n,) model log-prob
        self.score = torch.zeros(n, device=device)  # (n,) processed log-prob
        self.stuck = torch.zeros(n, dtype=torch.bool, device=device)  # (n,) no legal token

    def advance(self, step: Step) -> Move:
        best, tok = step.processed.max(dim=-1)  # (n,), (n,)
        self.stuck = best.isneginf()  # no legal token: stop before this step, unfinished
        self.raw += step.log_probs.gather(1, tok[:, None]).squeeze(1).masked_fill(self.stuck, 0.0)
        self.score += best.masked_fill(self.stuck, 0.0)
        done = tok.eq(self.eos) | (step.limit <= step.t) | self.stuck  # (n,)
        return Move(tok, done)

    def finish(self, sentences: Tensor, tokens: Tensor) -> list[list[Hypothesis]]:
        out = []
        for seq, lp, sc, no_token in zip(
            tokens[sentences].tolist(),
            self.raw[sentences].tolist(),
            self.score[sentences].tolist(),
            self.stuck[sentences].tolist(),
            strict=True,
        ):
            seq = seq[:-1] if no_token else seq
            finished = bool(seq) and seq[-1] == self.eos
            out.append([Hypothesis(tuple(seq), lp, sc, len(seq), finished)])
        return out

    def keep(self, sentences: Tensor, rows: Tensor) -> None:
        self.raw, self.score = self.raw[sentences], self.score[sentences]
        self.stuck = self.stuck[sentences]


@SEARCHES.register("greedy")
class Greedy:
    """Greedy search: pick the most probable token at every step (after a forced prefix)."""

    inputs = ("constraints",)

    def __init__(
        self,
        max_len_a: float = 1.5,
        max_len_b: int = 10,
        min_len: int = 0,
        processors: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        self.limits = Limits(max_len_a, max_len_b, min_len)
        self.processors = Processors(processors, self.limits.min_len)
        self.constraint_kinds = ("prefix", *self.processors.constraint_kinds)

    def __call__(
        self,
        model: DecoderModel,
        src: Tensor,
        src_lengths: Tensor,
        constraints: Sequence[Constraints | None] | None = None,
    ) -> SearchOutput:
        procs = self.processors.for_call(model, constraints)
        prefix = ForcedPrefix.of(constraints, src.device)

        def start(limit: Tensor) -> GreedyStepper:
            return GreedyStepper(procs, src.size(0), model.eos_id, src.device)

        with torch.inference_mode():
            return decode(model, src, src_lengths, self.limits, 1, start, prefix)
