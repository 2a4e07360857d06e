"""Paired bootstrap resampling of BLEU and chrF against a baseline run, from predictions.

sacreBLEU's own test (``sacrebleu.significance.PairedTest``, what ``sacrebleu --paired-bs``
runs) takes hypotheses and references as in-memory lists, so it is used as it is: 1000
resamples of the test set, the same resamples for every system of a group, seed 12345
(sacreBLEU's default; the environment variable ``SACREBLEU_SEED`` changes it, and the
signatures in the table's caption record it). BLEU and chrF are sacreBLEU's defaults, as the
lab's own ``bleu`` and ``chrf`` metrics compute them. Every run is aligned with its baseline by
example id (``lab.report.predictions``).

Per run: the score, its 95% confidence interval over the resamples (sacreBLEU's: the resampled
mean ± half the distance between the 2.5th and 97.5th percentiles) and, for the runs compared
with a baseline, the p-value of their difference; ``*`` marks p < 0.05. One correction: for a
difference of exactly zero (identical outputs) sacreBLEU counts no resampled difference as
larger and says p = 1/1001; the report says p = 1, since no difference is no evidence of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest

from lab.metrics.translation import periods_set_apart, ref_streams
from lab.report.baseline import Baseline, baseline_groups
from lab.report.notes import note
from lab.report.pooling import groups
from lab.report.predictions import align, read_run
from lab.report.render import Table, fmt_value
from lab.report.tables import run_names

SAMPLES = 1000
TOKENIZED_PERIODS = 100  # sacreBLEU's threshold for its "forgot to detokenize" warning
ALPHA = 0.05
MARK = "*"
METRICS = {"bleu": BLEU, "chrf": CHRF}  # report column -> sacreBLEU metric (default settings)


@dataclass(frozen=True)
class PairedTests:
    """The tests of one report: a row per run (``frame``) and sacreBLEU's signatures."""

    frame: pd.DataFrame
    keys: list[str]
    baseline: Baseline
    signatures: dict[str, str]


def _test_group(base_run: Path, runs: Sequence[Path]) -> tuple[list[dict], dict[str, str]]:
    """Scores, CIs and p-values of ``base_run`` then ``runs``, and the metrics' signatures."""
    base = read_run(base_run)
    systems = [(str(base_run), [p.hyp for p in base])]
    systems += [(str(run), align(read_run(run), base, run, base_run)) for run in runs]
    refs = ref_streams([list(p.refs) for p in base])
    if not periods_set_apart([list(p.refs) for p in base]):
        tokenized_periods([name for name, hyps in systems if _tokenized(hyps)])
    # sacreBLEU's own check would log its three lines once per system scored
    metrics = {
        name: metric(force=True) if metric is BLEU else metric() for name, metric in METRICS.items()
    }
    signatures, scores = PairedTest(systems, metrics, refs, test_type="bs", n_samples=SAMPLES)()
    named = dict(zip(METRICS, [key for key in scores if key != "System"], strict=True))
    rows: list[dict[str, Any]] = [{} for _ in systems]
    for name, key in named.items():
        base_score = scores[key][0].score
        for i, res in enumerate(scores[key]):
            p = None if i == 0 else 1.0 if res.score == base_score else res.p_value
            rows[i] |= {
                name: res.score,
                f"{name}_ci_low": res.mean - res.ci,
                f"{name}_ci_high": res.mean + res.ci,
                f"{name}_p": p,
            }
    return rows, {name: str(signatures[key]) for name, key in named.items()}


def _tokenized(hyps: Sequence[str]) -> bool:
    """sacreBLEU's "forgot to detokenize" test: 100 or more outputs end in `` .``."""
    return sum(h.endswith(" .") for h in hyps) >= TOKENIZED_PERIODS


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
    caption = "\n".join(
        [
            f"paired bootstrap resampling against --baseline {tests.baseline} in each group "
            f"(sacreBLEU PairedTest, {SAMPLES} resamples): score, 95% CI over the resamples, "
            f"{MARK} p < {ALPHA} (p-values in the CSV)",
            *(f"{name}: {sig}" for name, sig in tests.signatures.items()),
        ]
    )
    values = [c for c in shown.columns if c not in (*tests.keys, "run")]
    return Table(shown, values, caption, raw=frame)
