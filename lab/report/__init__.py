"""Collect finished runs into one table and write pivot tables, a runs table and a plot.

A run directory holds ``results.json`` (``status``, ``task``, ``model``, ``search``, the
resolved ``config``, the ``metrics`` and ``n_examples``/``checkpoint``/...) and
``predictions.jsonl``; only completed runs are reported, the others are skipped with a
``SkippedRunWarning`` naming them, and a run found twice counts once (a ``ReportNote`` names
it). ``rows``/``cols``/``x``/``hue`` name any column of the runs frame (see
``lab.report.runs`` for the columns); ``metric`` names any numeric column (usually a metric,
but ``cost.steps`` works). A pivot cell or plot point pools only runs that differ in their
seed (mean ± std, n); runs that differ in another setting are refused, never averaged.

One job per module: ``runs`` finds and loads run directories (``duplicates`` drops repeats),
``checks`` validates the requested keys, ``settings`` tells which columns are settings,
``pooling`` decides what may share a cell, ``pivot`` and ``tables`` build the pivot and runs
tables, ``baseline`` and ``significance`` run paired bootstrap tests from ``predictions``
(``sentence_stats`` and ``qa_stats``: the per-example statistics ``bootstrap`` resamples),
``render`` formats tables as Markdown/LaTeX, ``plot`` draws the figure, ``write`` writes the
files and ``export`` writes a run's texts for the sacreBLEU command line. ``html`` writes the
same report as one self-contained page (``lab report --html``), with a two-run drill-down built
from ``sentences``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lab.report.baseline import Baseline
from lab.report.checks import Keys, check_keys, check_metric, no_runs_error
from lab.report.export import export_run
from lab.report.notes import ReportNote
from lab.report.pivot import PivotStats, pivot, pivot_stats
from lab.report.render import latex_escape
from lab.report.runs import IDENTITY, PathsLike, SkippedRunWarning, as_paths, find_runs, load_runs
from lab.report.significance import paired_tests
from lab.report.tables import runs_table
from lab.report.write import ReportSpec, default_out, write_files, write_report

__all__ = [
    "IDENTITY",
    "Baseline",
    "Keys",
    "PivotStats",
    "ReportNote",
    "ReportSpec",
    "SkippedRunWarning",
    "check_keys",
    "check_metric",
    "default_out",
    "export_run",
    "find_runs",
    "latex_escape",
    "load_runs",
    "paired_tests",
    "pivot",
    "pivot_stats",
    "report",
    "runs_table",
    "write_report",
]


def report(
    paths: PathsLike, out: str | os.PathLike[str] | None = None, **options: Any
) -> list[Path]:
    """Load the completed runs under ``paths`` and write the report files into ``out``
    (default: ``default_out(paths)``, i.e. ``<first path>/report``).

    ``options`` are the fields of ``ReportSpec``, as for ``write_report``; a wrong one fails
    before any run is read.
    """
    spec = ReportSpec(**options)
    df = load_runs(paths)
    if df.empty:
        shown = ", ".join(str(p) for p in as_paths(paths))
        raise no_runs_error(f" under {shown}")
    return write_files(df, Path(out) if out is not None else default_out(paths), spec)
