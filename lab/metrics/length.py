"""Output length statistics: hypothesis/reference length ratio and the share of empty outputs."""

from __future__ import annotations

from collections.abc import Sequence

from lab.metrics.base import MetricValues, check_inputs
from lab.registry import METRICS


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
    ties to the shorter, as BLEU's effective reference length does; ``None`` when all
    references are empty); ``empty_rate`` = fraction in [0, 1] of hypotheses that are empty or only
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
            "len_ratio": total_hyp / total_ref if total_ref else None,
            "empty_rate": sum(1 for h in hyps if not h.strip()) / n,
            "mean_hyp_len": total_hyp / n,
            "mean_ref_len": total_ref / n,
        }
