"""Length statistics, plus the input checks and result types every metric shares.

Every metric takes ``hyps`` (one string per example) and ``refs`` (``refs[i]`` is the list of
all references of example i, at least one) and returns a flat ``{key: float | str}`` dict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

from lab.registry import METRICS

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


def n_tokens(text: str) -> int:
    """Number of whitespace-separated tokens in ``text``."""
    return len(text.split())


def closest_ref_length(hyp_len: int, ref_lens: Sequence[int]) -> int:
    """The reference length closest to ``hyp_len``; ties go to the shorter one (as in BLEU)."""
    return min(ref_lens, key=lambda r: (abs(r - hyp_len), r))


@METRICS.register("length")
class LengthStats:
    """Output length: hyp/ref token ratio, share of empty outputs, mean lengths.

    Keys: ``len_ratio`` = total hypothesis tokens / total reference tokens (whitespace tokens;
    with several references per example the one closest in length to the hypothesis counts,
    ties to the shorter, as BLEU's effective reference length does; ``nan`` when all references
    are empty); ``empty_rate`` = fraction in [0, 1] of hypotheses that are empty or only
    whitespace; ``mean_hyp_len`` / ``mean_ref_len`` = mean tokens per example (the reference
    side uses the same chosen reference).
    """

    def compute(self, hyps: list[str], refs: list[list[str]]) -> MetricValues:
        check_inputs(hyps, refs, "length")
        hyp_lens = [n_tokens(h) for h in hyps]
        ref_lens = [
            closest_ref_length(h, [n_tokens(r) for r in rs])
            for h, rs in zip(hyp_lens, refs, strict=True)
        ]
        total_hyp, total_ref = sum(hyp_lens), sum(ref_lens)
        n = len(hyps)
        return {
            "len_ratio": total_hyp / total_ref if total_ref else math.nan,
            "empty_rate": sum(1 for h in hyps if not h.strip()) / n,
            "mean_hyp_len": total_hyp / n,
            "mean_ref_len": total_ref / n,
        }
