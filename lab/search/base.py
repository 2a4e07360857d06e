"""What every search returns, and the small helpers the searches share."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from lab.errors import LabError
from lab.models.base import DecoderModel


@dataclass(frozen=True)
class Hypothesis:
    """One output sequence.

    ``tokens`` are the generated ids without BOS, ending with EOS when ``finished``;
    ``logprob`` is their total natural-log probability under the model (EOS included, before
    any logits processor), so it equals ``model.score`` of ``tokens``; ``length`` is
    ``len(tokens)``; ``score`` is what the search ranked by (after the length penalty).
    ``proved_optimal`` is set by searches that can prove their answer (exact, best-first):
    True when no other output of the model ranks higher, False when a budget ran out first;
    None for searches that make no such claim.
    """

    tokens: tuple[int, ...]
    logprob: float
    score: float
    length: int
    finished: bool
    proved_optimal: bool | None = None


@dataclass
class Cost:
    """What a search call spent: decoder steps, model calls, hypotheses expanded."""

    steps: int = 0  # decoding iterations (one step() call each)
    model_calls: int = 0  # encode + step calls
    expanded: int = 0  # hypothesis rows scored by step() over all iterations
    sentences: int = 0

    def add(self, other: Cost) -> None:
        for k in ("steps", "model_calls", "expanded", "sentences"):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def as_dict(self) -> dict[str, int]:
        return {
            "steps": self.steps,
            "model_calls": self.model_calls,
            "expanded": self.expanded,
            "sentences": self.sentences,
        }


@dataclass
class SearchOutput:
    """``nbest[i]`` is the n-best list of sentence i (best first); ``cost`` its counters."""

    nbest: list[list[Hypothesis]]
    cost: Cost = field(default_factory=Cost)

    def best(self) -> list[Hypothesis]:
        return [hyps[0] for hyps in self.nbest]


def max_lengths(src_lengths: Tensor, a: float, b: int, model: DecoderModel) -> Tensor:
    """Per-sentence output limit ``floor(a*|src| + b)`` tokens (EOS included), at least 1."""
    lim = torch.floor(src_lengths.double() * a + b).long().clamp_min(1)  # (B,)
    if model.max_positions is not None:
        lim = lim.clamp_max(model.max_positions)
    return lim


def check_positive(name: str, value: int, minimum: int = 1) -> int:
    if int(value) < minimum:
        raise LabError(
            f"search.{name} must be >= {minimum}, got {value}; set search.{name}=1 or more."
        )
    return int(value)
