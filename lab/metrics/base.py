"""The metric protocol: what a registered metric computes, its result type and input checks.

Every metric takes ``hyps`` (one string per example) and ``refs`` (``refs[i]`` is the list of
all references of example i, at least one) and returns a flat ``{key: float | str}`` dict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

MetricValues = dict[str, float | str]


class Metric(Protocol):
    """What a registered metric class provides."""

    def compute(self, hyps: list[str], refs: list[list[str]]) -> MetricValues:
        """Corpus-level scores of ``hyps`` against ``refs``."""
        ...


def check_inputs(hyps: Sequence[str], refs: Sequence[Sequence[str]], metric: str) -> None:
    """Raise ``ValueError``/``TypeError`` unless ``hyps`` and ``refs`` are a usable corpus.

    Requires as many reference lists as hypotheses, a non-empty corpus, strings throughout, and
    at least one reference per example.
    """
    if len(hyps) != len(refs):
        raise ValueError(
            f"{metric}: got {len(hyps)} hypotheses but {len(refs)} reference lists; "
            "pass exactly one list of references per hypothesis."
        )
    if not hyps:
        raise ValueError(f"{metric}: the corpus is empty; pass at least one hypothesis.")
    for i, (hyp, ref) in enumerate(zip(hyps, refs, strict=True)):
        if not isinstance(hyp, str):
            raise TypeError(f"{metric}: hyps[{i}] must be a str, got {type(hyp).__name__}.")
        if isinstance(ref, str):
            raise TypeError(
                f"{metric}: refs[{i}] must be a list of reference strings, got a str; "
                "wrap a single reference as [ref]."
            )
        if len(ref) == 0:
            raise ValueError(f"{metric}: example {i} has no reference; give at least one.")
        if not all(isinstance(r, str) for r in ref):
            raise TypeError(f"{metric}: refs[{i}] must contain only strings.")
