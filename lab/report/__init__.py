"""Collect finished runs into one table and write pivot tables, a runs table and a plot.

A run directory holds ``results.json`` (``status``, ``task``, ``model``, ``search``, the
resolved ``config``, the ``metrics`` and ``n_examples``/``checkpoint``/...) and
``predictions.jsonl``; only completed runs are reported, the others are skipped with a
``SkippedRunWarning`` naming them. ``rows``/``cols``/``x``/``hue`` name any column of the
runs frame (see ``lab.report.runs`` for the columns); ``metric`` names any numeric column
(usually a metric, but ``cost.steps`` works).

One job per module: ``runs`` finds and loads run directories, ``checks`` validates the
requested keys, ``tables`` builds the pivot and runs tables, ``render`` formats them as
Markdown/LaTeX, ``plot`` draws the figure and ``write`` writes the files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lab.report.checks import Keys, check_keys, check_metric, no_runs_error
from lab.report.render import latex_escape
from lab.report.runs import IDENTITY, PathsLike, SkippedRunWarning, as_paths, find_runs, load_runs
from lab.report.tables import pivot, runs_table
from lab.report.write import ReportSpec, write_files, write_report

__all__ = [
    "IDENTITY",
    "Keys",
    "ReportSpec",
    "SkippedRunWarning",
    "check_keys",
    "check_metric",
    "find_runs",
    "latex_escape",
    "load_runs",
    "pivot",
    "report",
    "runs_table",
    "write_report",
]


def report(paths: PathsLike, out: str | os.PathLike[str], **options: Any) -> list[Path]:
    """Load the completed runs under ``paths`` and write the report files into ``out``.

    ``options`` are the fields of ``ReportSpec``, as for ``write_report``; a wrong one fails
    before any run is read.
    """
    spec = ReportSpec(**options)
    df = load_runs(paths)
    if df.empty:
        shown = ", ".join(str(p) for p in as_paths(paths))
        raise no_runs_error(f" under {shown}")
    return write_files(df, Path(out), spec)
