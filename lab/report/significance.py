"""Paired bootstrap resampling of BLEU and chrF (EM, F1, accuracy for QA) against a baseline.

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

The metrics tested follow the runs, read from the baseline's ``results.json`` ``metrics``: a
question-answering run that reports ``f1`` (the ``squad`` metric) is tested on ``em`` and
``f1``, one that reports ``accuracy`` and no ``bleu`` (``babi``) on ``accuracy``, a bAbI run on
all three; any other run on BLEU and chrF, as before. They are means over examples, resampled
from per-example values (``lab.report.qa_stats``) with the same resamples and rules. A group
whose runs are tested on other metrics than its baseline is an error; groups of different
kinds in one report share one table, each row with its own metrics' columns filled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lab.errors import LabError
from lab.report.baseline import Baseline, baseline_groups
from lab.report.bootstrap import SAMPLES, Scorer, paired_test, seed
from lab.report.notes import note
from lab.report.pooling import groups
from lab.report.qa_stats import QA_METRICS, MeanMetric, qa_metrics
from lab.report.render import MISSING, Table, fmt_value
from lab.report.sentence_stats import aligned, metrics, read_stats, run_results
from lab.report.tables import run_names

TOKENIZED_PERIODS = 100  # sacreBLEU's threshold for its "forgot to detokenize" warning
ALPHA = 0.05
MARK = "*"
METRICS = ("bleu", "chrf")  # a translation run's tests: sacreBLEU's defaults (sentence_stats)
TESTABLE = (*METRICS, *QA_METRICS)  # every metric a paired test may mark


@dataclass(frozen=True)
class PairedTests:
    """The tests of one report: a row per run (``frame``) and sacreBLEU's signatures."""

    frame: pd.DataFrame
    keys: list[str]
    baseline: Baseline
    signatures: dict[str, str]
    metrics: tuple[str, ...] = METRICS  # the tested metrics, in column order


def tested_metrics(run: Path) -> tuple[str, ...]:
    """The metrics ``run`` is tested on, from its ``results.json`` (see the module docstring)."""
    results = run_results(run).get("metrics")
    return qa_metrics(results if isinstance(results, dict) else {}) or METRICS


def _group_metrics(base_run: Path, runs: Sequence[Path]) -> tuple[str, ...]:
    """The metrics the group of ``base_run`` tests; ``LabError`` for a run of another kind."""
    names = tested_metrics(base_run)
    for run in runs:
        own = tested_metrics(run)
        if own != names:
            raise LabError(
                f"{run} is tested on {', '.join(own)} but its baseline {base_run} on "
                f"{', '.join(names)}; compare runs of one task (add task to --rows or --cols)."
            )
    return names


def _scorers(names: tuple[str, ...], base: dict[str, Any]) -> dict[str, Scorer]:
    """The metric of each tested name, with the references' number of the baseline's stats."""
    if names == METRICS:
        return metrics(int(base["nrefs"]))
    return {name: MeanMetric(name, base.get("qa", {})) for name in names}


def _test_group(
    base_run: Path, runs: Sequence[Path]
) -> tuple[list[dict], dict[str, str], tuple[str, ...]]:
    """Scores, CIs, p-values and paired differences of ``base_run`` then ``runs``, the
    metrics' signatures and names; each run's statistics from its summary or predictions."""
    names = _group_metrics(base_run, runs)
    base = read_stats(base_run)
    others = [read_stats(run) for run in runs]
    if names == METRICS and not base["periods_set_apart"]:
        tokenized_periods(
            [
                str(r)
                for r, s in zip([base_run, *runs], [base, *others], strict=True)
                if _tokenized(s)
            ]
        )
    rows: list[dict[str, Any]] = [{} for _ in range(len(runs) + 1)]
    signatures = {}
    for name, metric in _scorers(names, base).items():
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
    return rows, signatures, names


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
    tested: dict[str, None] = {}
    for _, base, others in baseline_groups(df, baseline, keys):
        ordered = [base, *(row for _, cell in groups(others, keys) for _, row in cell.iterrows())]
        results, group_signatures, group_metrics = _test_group(
            Path(base["run_dir"]), [Path(r["run_dir"]) for r in ordered[1:]]
        )
        tested |= dict.fromkeys(group_metrics)
        for name, text in group_signatures.items():
            known = signatures.get(name)
            if known is None or text not in known.split(" or "):  # each variant once
                signatures[name] = text if known is None else f"{known} or {text}"
        for i, (run, result) in enumerate(zip(ordered, results, strict=True)):
            identity = {k: run[k] for k in keys} | {"run": names[run["run_dir"]]}
            rows.append(identity | {"baseline": i == 0} | result)
    return PairedTests(pd.DataFrame(rows), keys, baseline, signatures, tuple(tested))


def is_significant(p: Any) -> bool:
    """True for a p-value below ``ALPHA`` (False for a baseline's missing one)."""
    return p is not None and not pd.isna(p) and p < ALPHA


def marks(tests: PairedTests, metric: str) -> pd.Series:
    """``*`` or ``""`` per tested run for ``metric`` (one of ``tests.metrics``), indexed by the
    keys."""
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
    for name in tests.metrics:
        shown[name] = [
            fmt_value(s) + (MARK if is_significant(p) else "")
            for s, p in zip(frame[name], frame[f"{name}_p"], strict=True)
        ]
        shown[f"{name} 95% CI"] = [
            MISSING if pd.isna(lo) else f"[{fmt_value(lo)}, {fmt_value(hi)}]"
            for lo, hi in zip(frame[f"{name}_ci_low"], frame[f"{name}_ci_high"], strict=True)
        ]
        shown[f"{name} difference [95% CI]"] = [
            _difference(base, d, lo, hi)
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


def _difference(base: bool, delta: float, low: float, high: float) -> str:
    """A difference with its CI as ``+d [+lo, +hi]``; blank for the baseline, ``-`` for a run
    of a group not tested on the metric."""
    if base:
        return ""
    if pd.isna(delta):
        return MISSING
    return f"{delta:+.2f} [{low:+.2f}, {high:+.2f}]"
