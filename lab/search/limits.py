"""Output length limits, validated once where a search is built, shared by every search.

``Limits(max_len_a, max_len_b, min_len)``: an output of a source of ``|src|`` tokens has at
most ``floor(a*|src| + b)`` tokens (EOS included, at least 1, at most the model's positions)
and at least ``min_len`` (EOS is banned before it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lab.errors import LabError
from lab.models.base import DecoderModel


def check_positive(name: str, value: int, minimum: int = 1) -> int:
    """``value`` as an int, refused with a one-line fix below ``minimum``."""
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


def max_lengths(src_lengths: Tensor, a: float, b: int, model: DecoderModel) -> Tensor:
    """Per-sentence output limit ``floor(a*|src| + b)`` tokens (EOS included), at least 1."""
    lim = torch.floor(src_lengths.double() * a + b).long().clamp_min(1)  # (B,)
    if model.max_positions is not None:
        lim = lim.clamp_max(model.max_positions)
    return lim


@dataclass(frozen=True)
class Limits:
    """How long an output may and must be; refused when built if no output could end."""

    max_len_a: float = 1.5
    max_len_b: int = 10
    min_len: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_len_a", float(self.max_len_a))
        object.__setattr__(self, "max_len_b", check_positive("max_len_b", self.max_len_b, 0))
        min_len = check_min_len(self.min_len, self.max_len_a, self.max_len_b)
        object.__setattr__(self, "min_len", min_len)

    def per_sentence(self, src_lengths: Tensor, model: DecoderModel) -> Tensor:
        """Each sentence's output limit ``(B,)`` (``max_lengths``)."""
        return max_lengths(src_lengths, self.max_len_a, self.max_len_b, model)
