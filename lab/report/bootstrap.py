"""Paired bootstrap resampling from per-sentence sufficient statistics.

sacreBLEU's ``PairedTest`` (``--paired-bs``) rescores hypotheses; this module does the same
test from the sufficient statistics of each sentence (``lab.report.sentence_stats``), so that
a test needs no text and can be rerun from a run's small committed summary. It reproduces
sacreBLEU's test number for number: the same resamples (NumPy's ``default_rng(seed)``,
``choice(n, (samples, n))``, seed 12345 unless ``SACREBLEU_SEED`` says otherwise), the same
float32 sums, the score of each resample from sacreBLEU's own metric, its CI (``estimate_ci``:
the resampled mean ± half the distance between the 2.5th and 97.5th percentiles) and its
p-value (how often a resampled |difference|, centred, exceeds the observed one).

It adds what a comparison of two searches needs and sacreBLEU does not print: the CI of the
paired *difference* (system - baseline) over the same resamples, by the same percentile rule.
A difference whose interval excludes 0 is the claim; a bar (say +0.5 BLEU) is met when the
interval's lower end clears it.

The test takes any metric scored from summed per-sentence statistics, so the means of
question answering (EM, F1, accuracy: ``lab.report.qa_stats.MeanMetric``) get the same
resamples and rules. Integer counts are summed as sacreBLEU sums them (float32, exact below
2**24); real-valued statistics (F1's) in float64.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from sacrebleu.metrics.base import Metric
from sacrebleu.significance import estimate_ci

from lab.report.qa_stats import MeanMetric

SAMPLES = 1000
Scorer = Metric | MeanMetric  # what scores a row of summed statistics (``.score``)


def seed() -> int | None:
    """sacreBLEU's seed: ``SACREBLEU_SEED`` (``none`` for entropy from the OS), else 12345."""
    text = os.environ.get("SACREBLEU_SEED", "12345")
    return None if text.lower() == "none" else int(text)


def resample_counts(n: int, samples: int = SAMPLES) -> np.ndarray:
    """How often each of ``n`` sentences is drawn in each resample: (samples, n), sacreBLEU's
    resamples (the same generator, seed and call)."""
    idxs = np.random.default_rng(seed()).choice(n, size=(samples, n), replace=True)
    return np.stack([np.bincount(row, minlength=n) for row in idxs])  # (samples, n)


def resampled_scores(stats: np.ndarray, metric: Scorer, counts: np.ndarray) -> np.ndarray:
    """The corpus score of every resample: (samples,). ``stats`` is (n, k) per sentence."""
    sums = counts.astype(np.float64) @ stats.astype(np.float64)  # (S, k)
    if np.issubdtype(stats.dtype, np.integer):
        # integer sums, exact in float64 and (below 2**24) in the float32 sacreBLEU scores from
        sums = sums.astype(np.float32)  # (S, k)
    return np.array([metric._compute_score_from_stats(row).score for row in sums])


@dataclass(frozen=True)
class Paired:
    """One system against its baseline for one metric: its score, sacreBLEU's resampled mean
    and CI half-width, the p-value (None for the baseline itself), and the difference with its
    95% CI."""

    score: float
    mean: float
    ci: float
    p: float | None
    delta: float
    delta_low: float
    delta_high: float


def percentile_ci(values: np.ndarray) -> tuple[float, float]:
    """The 95% interval of ``values`` by ``estimate_ci``'s rule (1/40 from each end)."""
    ordered = np.sort(values)
    low = len(ordered) // 40
    return float(ordered[low]), float(ordered[len(ordered) - low - 1])


def paired_test(
    base: np.ndarray, systems: list[np.ndarray], metric: Scorer, samples: int = SAMPLES
) -> list[Paired]:
    """The baseline (first) and each of ``systems`` against it, for ``metric``.

    A system with the baseline's very score gets p = 1 (sacreBLEU says 1/(samples+1): no
    resampled difference exceeds zero, yet no difference is no evidence of one)."""
    counts = resample_counts(len(base), samples)
    base_score = metric._compute_score_from_stats(base.sum(0)).score
    base_scores = resampled_scores(base, metric, counts)
    out = []
    for i, stats in enumerate([base, *systems]):
        score = metric._compute_score_from_stats(stats.sum(0)).score
        scores = base_scores if i == 0 else resampled_scores(stats, metric, counts)
        mean, half = estimate_ci(scores)
        diffs = scores - base_scores
        low, high = percentile_ci(diffs)
        p = None if i == 0 else 1.0 if score == base_score else _p_value(diffs, score - base_score)
        out.append(Paired(score, float(mean), float(half), p, score - base_score, low, high))
    return out


def _p_value(diffs: np.ndarray, observed: float) -> float:
    """sacreBLEU's (and multeval's) p-value of the observed |difference|."""
    spread = np.abs(diffs)
    centred = spread - spread.mean()
    return float((np.sum(centred > abs(observed)) + 1) / (len(diffs) + 1))
