"""What every search returns, and the small helpers the searches share."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import Tensor

from lab.errors import LabError
from lab.models.base import DecoderModel, State


@dataclass(frozen=True)
class Hypothesis:
    """One output sequence.

    ``tokens`` are the generated ids without BOS, ending with EOS when ``finished``;
    ``logprob`` is their total natural-log probability under the model (EOS included, before
    any logits processor), so it equals ``model.score`` of ``tokens``; ``length`` is
    ``len(tokens)``; ``score`` is what the search ranked by (after the length penalty).
    ``proved_optimal`` is set by searches that can prove their answer (exact, best-first):
    True when no other output of the model ranks higher, False when a budget ran out first;
    None for searches that make no such claim. ``info`` holds what a search adds per
    hypothesis (a sample's sampling log-prob, a stochastic beam's perturbed score, MBR's
    expected utility): numbers keyed by name, written beside it in ``predictions.jsonl``.
    """

    tokens: tuple[int, ...]
    logprob: float
    score: float
    length: int
    finished: bool
    proved_optimal: bool | None = None
    info: dict[str, float] | None = None


@dataclass
class Cost:
    """What a search call spent: decoder steps, model calls, hypotheses expanded.

    Searches that choose among generated outputs (MBR) also count what the choice cost:
    ``utility_calls`` (pairs scored by a utility), and split their wall time into
    ``generation_seconds`` (running the inner searches) and ``selection_seconds`` (scoring and
    ranking); every other search leaves these at 0.
    """

    steps: int = 0  # decoding iterations (one step() call each)
    model_calls: int = 0  # encode + step calls
    expanded: int = 0  # hypothesis rows scored by step() over all iterations
    sentences: int = 0
    utility_calls: int = 0  # (hypothesis, reference) pairs scored by an MBR utility
    generation_seconds: float = 0.0  # wall time generating candidates / pseudo-references
    selection_seconds: float = 0.0  # wall time scoring and ranking them

    def count_step(self, rows: int) -> None:
        """One decoding iteration: one ``step`` call over ``rows`` hypothesis rows."""
        self.steps, self.model_calls, self.expanded = (
            self.steps + 1,
            self.model_calls + 1,
            self.expanded + rows,
        )

    def add(self, other: Cost) -> None:
        """Add ``other``'s counters and seconds to these (every field is a sum)."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int | float]:
        """The fields by name (the evaluator reports them as ``cost_<name>``); the selection
        fields only where a search spent something on selection, so that other runs do not
        report a generation time of 0."""
        selection = self.utility_calls or self.generation_seconds or self.selection_seconds
        core = ("steps", "model_calls", "expanded", "sentences")
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in core or selection}


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
            f"search.{name} must be >= {minimum}, got {value}; set search.{name}={minimum} or more."
        )
    return int(value)


def check_min_len(min_len: int, max_len_a: float, max_len_b: int) -> int:
    """Refuse a ``min_len`` no output can reach: above a fixed limit (``max_len_a == 0``).

    A limit that depends on the source is known per sentence only: where it is below
    ``min_len``, EOS stays banned up to the limit and that sentence's output is cut there
    unfinished (``finished=False``), with the log-prob of the tokens it has.
    """
    fixed = max(int(max_len_b), 1)  # max_lengths() never goes below 1
    if float(max_len_a) == 0 and int(min_len) > fixed:
        raise LabError(
            f"search.min_len={min_len} exceeds the output limit search.max_len_b={max_len_b}"
            f" (max_len_a=0), so no output could end; lower search.min_len to {fixed} or raise"
            f" search.max_len_b to {min_len}."
        )
    return int(min_len)


def sentence_rows(sentences: Tensor, k: int) -> Tensor:
    """The hypothesis rows ``(n'*K,)`` of ``sentences`` ``(n',)`` in a ``(n*K)``-row batch."""
    return (sentences[:, None] * k + torch.arange(k, device=sentences.device)).reshape(-1)


def drop_sentences(
    done: Tensor, k: int, state: State, per_sentence: list[Tensor], per_row: list[Tensor]
) -> tuple[State, list[Tensor], list[Tensor]]:
    """Batch pruning, shared by every search: remove the sentences where ``done`` ``(n,)`` is
    True from the decoder state, from the tensors with one entry per sentence (dim 0 = n) and
    from those with one row per hypothesis (dim 0 = n*K). Finished sentences then cost nothing.
    """
    keep = (~done).nonzero().squeeze(1)  # (n',)
    rows = sentence_rows(keep, k)  # (n'*K,)
    if keep.numel():
        state = state.select_sentences(keep)
    return state, [t[keep] for t in per_sentence], [t[rows] for t in per_row]
