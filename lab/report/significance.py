"""Paired bootstrap resampling of BLEU and chrF against a baseline run.

sacreBLEU's paired bootstrap (``sacrebleu --paired-bs``), run from each run's per-sentence
sufficient statistics (``lab.report.sentence_stats``: its ``sentence_stats.json``, or its
predictions) by ``lab.report.bootstrap``, which reproduces sacreBLEU's numbers: 1000
resamples of the test set, the same resamples for every system of a group, seed 12345
(sacreBLEU's default; the environment variable ``SACREBLEU_SEED`` changes it, and the
signatures in the table's caption record it). BLEU and chrF are sacreBLEU's defaults, as the
lab's own ``bleu`` and ``chrf`` metrics compute them. Every run is aligned with its baseline by
example id.

Per run: the score, its 95% confidence interval over the resamples (sacreBLEU's: the resampled
mean ± half the distance between the 2.5th and 97.5th percentiles) and, for the runs compared
with a baseline, the p-value of their difference and the difference's own 95% CI over the same
resamples; ``*`` marks p < 0.05. One correction: for a difference of exactly zero (identical
outputs) sacreBLEU counts no resampled difference as larger and says p = 1/1001; the report
says p = 1, since no difference is no evidence of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lab.report.baseline import Baseline, baseline_groups
from lab.report.bootstrap import SAMPLES, paired_test, seed
from lab.report.notes import note
from lab.report.pooling import groups
from lab.report.render import Table, fmt_value
from lab.report.sentence_stats import aligned, metrics, read_stats
from lab.report.tables import run_names

TOKENIZED_PERIODS = 100  # sacreBLEU's threshold for its "forgot to detokenize" warning
ALPHA = 0.05
MARK = "*"
METRICS = ("bleu", "chrf")  # the report columns: sacreBLEU's defaults (sentence_stats.metrics)


@dataclass(frozen=True)
class PairedTests:
    """The tests of one report: a row per run (``frame``) and sacreBLEU's signatures."""

    frame: pd.DataFrame
    keys: list[str]
    baseline: Baseline
    signatures: dict[str, str]


def _test_group(base_run: Path, runs: Sequence[Path]) -> tuple[list[dict], dict[str, str]]:
    """Scores, CIs, p-values and paired differences of ``base_run`` then ``runs``, and the
    metrics' signatures; each run's statistics from its summary or its predictions."""
    base = read_stats(base_run)
    others = [read_stats(run) for run in runs]
    if not base["periods_set_apart"]:
        tokenized_periods(
            [
                str(r)
                for r, s in zip([base_run, *runs], [base, *others], strict=True)
                if _tokenized(s)
            ]
        )
    rows: list[dict[str, Any]] = [{} for _ in range(len(runs) + 1)]
    signatures = {}
    for name, metric in metrics(int(base["nrefs"])).items():
        systems = [aligned(s, base, name, r, base_run) for s, r in zip(others, runs, strict=True)]
        own = aligned(base, base, name, base_run, base_run)
        results = paired_test(own, systems, metric, SAMPLES)
        for row, res in zip(rows, results, strict=True):
            row |= {
                name: res.score,
                f"{name}_ci_low": res.mean - res.ci,
                f"{name}_ci_high": res.mean + res.ci,
                f"{name}_p": res.p,
                f"{name}_delta": res.delta,
                f"{name}_delta_low": res.delta_low,
                f"{name}_delta_high": res.delta_high,
            }
        signature = metric.get_signature()
        signature.update("seed", str(seed()).lower())
        signature.update("bs", SAMPLES)
        signatures[name] = str(signature)
    return rows, signatures


def _tokenized(stats: dict[str, Any]) -> bool:
    """sacreBLEU's "forgot to detokenize" test: 100 or more outputs end in `` .``."""
    return int(stats["tokenized_periods"]) >= TOKENIZED_PERIODS


def tokenized_periods(runs: Sequence[str]) -> None:
    """One note for the runs whose outputs look tokenized against references that are not."""
    if runs:
        note(
            f"{len(runs)} run(s) have {TOKENIZED_PERIODS} or more outputs ending in a "
            "tokenized period (' .') where the references attach it (sacreBLEU: 'It looks like "
            "you forgot to detokenize your test data'), which lowers their BLEU; detokenize "
            f"their outputs: {', '.join(runs)}"
        )


def paired_tests(df: pd.DataFrame, keys: Sequence[str], baseline: Baseline) -> PairedTests:
    """Test every run against its group's baseline run (``lab.report.baseline``); ``keys`` are
    the pivot's row and column keys. Raises ``LabError`` for runs that cannot be compared."""
    keys = list(keys)
    names = dict(zip(df["run_dir"], run_names(df), strict=True))
    rows: list[dict[str, Any]] = []
    signatures: dict[str, str] = {}
    for _, base, others in baseline_groups(df, baseline, keys):
        ordered = [base, *(row for _, cell in groups(others, keys) for _, row in cell.iterrows())]
        results, signatures = _test_group(
            Path(base["run_dir"]), [Path(r["run_dir"]) for r in ordered[1:]]
        )
        for i, (run, result) in enumerate(zip(ordered, results, strict=True)):
            identity = {k: run[k] for k in keys} | {"run": names[run["run_dir"]]}
            rows.append(identity | {"baseline": i == 0} | result)
    return PairedTests(pd.DataFrame(rows), keys, baseline, signatures)


def is_significant(p: Any) -> bool:
    """True for a p-value below ``ALPHA`` (False for a baseline's missing one)."""
    return p is not None and not pd.isna(p) and p < ALPHA


def marks(tests: PairedTests, metric: str) -> pd.Series:
    """``*`` or ``""`` per tested run for ``metric`` (``bleu``/``chrf``), indexed by the keys."""
    frame = tests.frame
    flags = [MARK if is_significant(p) else "" for p in frame[f"{metric}_p"]]
    index = pd.MultiIndex.from_frame(frame[tests.keys]) if len(tests.keys) > 1 else None
    if index is None:
        index = pd.Index(frame[tests.keys[0]]) if tests.keys else pd.Index([metric])
    return pd.Series(flags, index=index)


def tests_table(tests: PairedTests) -> Table:
    """The tests as a table: scores with ``*`` and CIs for Markdown/LaTeX, p-values in CSV."""
    frame = tests.frame
    shown = frame[[*tests.keys, "run"]].copy()
    shown["run"] = [
        f"{r} (baseline)" if b else r for r, b in zip(frame["run"], frame["baseline"], strict=True)
    ]
    for name in METRICS:
        shown[name] = [
            fmt_value(s) + (MARK if is_significant(p) else "")
            for s, p in zip(frame[name], frame[f"{name}_p"], strict=True)
        ]
        shown[f"{name} 95% CI"] = [
            f"[{fmt_value(lo)}, {fmt_value(hi)}]"
            for lo, hi in zip(frame[f"{name}_ci_low"], frame[f"{name}_ci_high"], strict=True)
        ]
        shown[f"{name} difference [95% CI]"] = [
            "" if base else f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]"
            for base, d, lo, hi in zip(
                frame["baseline"],
                frame[f"{name}_delta"],
                frame[f"{name}_delta_low"],
                frame[f"{name}_delta_high"],
                strict=True,
            )
        ]
    caption = "\n".join(
        [
            f"paired bootstrap resampling against --baseline {tests.baseline} in each group "
            f"(sacreBLEU's paired bootstrap, {SAMPLES} resamples): score, 95% CI over the "
            f"resamples, {MARK} p < {ALPHA} (p-values in the CSV), and the difference from the "
            "baseline with its 95% CI over the same resamples",
            *(f"{name}: {sig}" for name, sig in tests.signatures.items()),
        ]
    )
    values = [c for c in shown.columns if c not in (*tests.keys, "run")]
    return Table(shown, values, caption, raw=frame)
