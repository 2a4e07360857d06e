"""Paired bootstrap intervals on the differences between two models' search-error rates.

Two ``lab analyze`` directories that analyzed the same test sentences (one model against
another: without label smoothing against with it, the GRU against the Transformer, the
ensemble against each seed, LM fusion against none) are paired by sentence id and beam
size. Each verdict (``lab.analyze.flags``) is a 0/1 value per sentence, so a rate is a mean,
and its difference gets the test every search comparison of the reports gets
(``lab.report.bootstrap.paired_test``: sacreBLEU's resamples, 95% percentile interval of
the paired difference), over the sentences where both verdicts are known. The interval is
over sentences: it says whether the two *models* differ on this test set, not whether
another training seed would.

Written to ``<section>/rate_intervals.{md,csv}`` for each section of ``COMPARISONS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from lab.analyze import RATES, flags
from lab.io import atomic_write_text
from lab.report.bootstrap import paired_test
from lab.report.qa_stats import MeanMetric
from lab.report.render import Table


class Comparison(NamedTuple):
    """``system`` against ``baseline``: two analysis directories under the reports root."""

    label: str
    system: str
    baseline: str


SE, MM = "search_errors", "multimodel/search_errors"
COMPARISONS: dict[str, tuple[Comparison, ...]] = {
    SE: (
        Comparison("label smoothing 0 - 0.1", f"{SE}/ls0", SE),
        Comparison("GRU - Transformer", f"{SE}/gru", SE),
    ),
    MM: (
        *(Comparison(f"ensemble - seed {s}", f"{MM}/ensemble", f"{MM}/seed{s}") for s in range(3)),
        Comparison("fusion w 0.2 - 0.0 (fused score)", f"{MM}/fusion_w0.2", f"{MM}/fusion_w0.0"),
    ),
}
SHARE = MeanMetric("accuracy", {})  # a rate is the mean of a 0/1 verdict, scored as a share


def verdicts(src: Path) -> pd.DataFrame:
    """One row per sentence and beam size of an analysis: ``id``, ``beam_size`` and each
    verdict of ``RATES`` (1.0, 0.0, or NaN where the row cannot tell)."""
    sentences = pd.read_csv(src / "analysis_sentences.csv")
    beams = pd.read_csv(src / "analysis_rates.csv").set_index("run")["beam_size"]
    rows = sentences.astype(object).where(sentences.notna(), None).to_dict("records")
    found = pd.DataFrame([flags(r) for r in rows], columns=list(RATES), dtype=float)
    return pd.concat(
        [sentences[["id"]], sentences["run"].map(beams).rename("beam_size"), found], axis=1
    )


def compare(system: pd.DataFrame, baseline: pd.DataFrame) -> list[dict[str, object]]:
    """Per beam size both ran and per rate: n, both rates and the difference (points, system
    minus baseline) with its 95% interval, over the sentences both can tell."""
    pairs = system.merge(baseline, on=["beam_size", "id"], suffixes=("", "_base"))
    out = []
    for beam, group in pairs.groupby("beam_size", sort=True):
        for rate in RATES:
            both = group[[rate, f"{rate}_base"]].dropna()
            if both.empty:
                continue
            ones = np.ones(len(both))
            sys_stats = np.stack([both[rate].to_numpy(), ones], 1)  # (n, 2): value, count
            base_stats = np.stack([both[f"{rate}_base"].to_numpy(), ones], 1)
            base, tested = paired_test(base_stats, [sys_stats], SHARE)
            out.append(
                {"beam": int(beam), "rate": rate, "n": len(both), "baseline_pct": base.score,
                 "system_pct": tested.score, "delta": tested.delta, "delta_low": tested.delta_low,
                 "delta_high": tested.delta_high, "p": tested.p}
            )  # fmt: skip
    return out


def table(root: Path, comparisons: tuple[Comparison, ...]) -> pd.DataFrame:
    """Every comparison's rows, labelled."""
    rows = []
    for c in comparisons:
        found = compare(verdicts(root / c.system), verdicts(root / c.baseline))
        rows += [{"comparison": c.label, **r} for r in found]
    return pd.DataFrame(rows)


def rate_intervals(root: Path, out: Path) -> list[Path]:
    """``rate_intervals.{md,csv}`` of each section, from the committed per-sentence files."""
    written = []
    for section, comparisons in COMPARISONS.items():
        df = table(root, comparisons)
        caption = (
            "search-error rates of one model against another on the same sentences (%): the "
            "difference, system - baseline, in points with its paired bootstrap 95% interval "
            "over the sentences both can tell (one trained model each: not over seeds)"
        )
        cols = ["baseline_pct", "system_pct", "delta", "delta_low", "delta_high"]
        shown = df.drop(columns="p")  # the CSV keeps the p-values
        t = Table(shown, cols, caption, raw=df, counts=("beam", "n"))
        target = out / section / "rate_intervals"
        target.parent.mkdir(parents=True, exist_ok=True)
        written += [
            atomic_write_text(target.with_suffix(".md"), t.markdown() + "\n"),
            atomic_write_text(target.with_suffix(".csv"), t.csv()),
        ]
    return written
