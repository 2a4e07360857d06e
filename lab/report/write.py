"""Write a report's files: the pivot, runs and paired-test tables as Markdown, CSV and LaTeX,
and the plot.

Every option is checked against the runs, and every table and figure is built, before anything
is written; every file is written atomically (``lab.io.atomic_write``), so a failed report
leaves no half-written file. Without an output directory a report goes next to the runs it
reads (``<first path>/report``), never into the repository.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from lab.errors import LabError
from lab.io import atomic_write, atomic_write_text
from lab.report.baseline import Baseline
from lab.report.checks import Keys, check_keys, check_metric, check_not_empty, key_list
from lab.report.duplicates import DUPLICATES
from lab.report.pivot import PivotStats, pivot_frames, pivot_stats, shape_cells
from lab.report.plot import default_hue, plot
from lab.report.render import Table, count_columns, is_count
from lab.report.runs import PathsLike, as_paths
from lab.report.significance import PairedTests, marks, paired_tests, tests_table
from lab.report.tables import column_groups, runs_table

REPORT_DIR = "report"


def default_out(paths: PathsLike) -> Path:
    """Where a report of ``paths`` goes by default: ``report/`` in the first run or sweep
    directory (beside a ``results.json`` given as a path)."""
    given = as_paths(paths)
    if not given:
        raise LabError("no run or sweep directory given; pass the directories to report.")
    first = given[0]
    return (first.parent if first.is_file() else first) / REPORT_DIR


@dataclass(frozen=True, kw_only=True)
class ReportSpec:
    """What a report shows and how its files are named: the options of ``write_report`` and
    ``report``, defined once so that their names and defaults cannot drift apart.

    ``rows``/``cols`` key the pivot of ``metric``; with ``x``, a plot of ``metric`` against
    ``x`` gets one line per ``hue`` value (by default per model/search, and per task when
    there are several); ``mean_row`` ends the pivot with each column's mean; ``baseline``
    (``key=value``, see ``lab.report.baseline``) adds paired bootstrap tests of BLEU and chrF
    (EM, F1, accuracy for question answering) against the baseline run of each group;
    ``name`` prefixes every file.
    """

    metric: str = "bleu"
    rows: Keys = ("model",)
    cols: Keys = ("search",)
    x: str | None = None
    hue: Keys = None
    name: str = "report"
    mean_row: bool = False
    baseline: str | None = None

    def keys(self, df: pd.DataFrame) -> tuple[list[str], list[str], list[str]]:
        """(row keys, column keys, hue keys) after checking every option against ``df``."""
        name = self.name
        if not name or any(sep in name for sep in ("/", "\\")) or name.startswith("."):
            raise LabError(f"report name '{name}' must be a plain file name, e.g. name=report.")
        row_keys, col_keys = key_list(self.rows), key_list(self.cols)
        hue_keys = key_list(self.hue) if self.hue is not None else default_hue(df)
        check_metric(df, self.metric)
        check_keys(df, row_keys + col_keys)
        check_keys(df, [self.x] if self.x else [], "x key")
        check_keys(df, hue_keys, "hue key")
        return row_keys, col_keys, hue_keys


def _write_table(table: Table, out_dir: Path, stem: str) -> list[Path]:
    """``<stem>.md``, ``<stem>.csv`` and ``<stem>.tex`` of ``table`` in ``out_dir``."""
    return [
        atomic_write_text(out_dir / f"{stem}.md", table.markdown()),
        atomic_write_text(out_dir / f"{stem}.csv", table.csv()),
        atomic_write_text(out_dir / f"{stem}.tex", table.latex()),
    ]


def write_report(df: pd.DataFrame, out_dir: str | os.PathLike[str], **options: Any) -> list[Path]:
    """Write ``<name>_pivot.{md,csv,tex}``, ``<name>_runs.{md,csv,tex}``, with ``baseline``
    ``<name>_tests.{md,csv,tex}`` and with ``x`` ``<name>_plot.png`` into ``out_dir``;
    ``options`` are the fields of ``ReportSpec``. Returns the written paths.
    """
    return write_files(df, Path(out_dir), ReportSpec(**options))


def _pivot_table(
    df: pd.DataFrame,
    spec: ReportSpec,
    stats: PivotStats,
    keys: tuple[list[str], list[str]],
    tests: PairedTests | None,
) -> Table:
    """The pivot of ``spec.metric``, its cells marked ``*`` where a paired test says so."""
    rows, cols = keys
    flags = None
    if tests is not None and spec.metric in tests.metrics:
        flags = shape_cells(marks(tests, spec.metric), rows, cols, spec.metric)
        flags = flags.reindex(index=stats.mean.index, columns=stats.mean.columns).fillna("")
    digits = 0 if is_count(df[spec.metric]) else 2
    shown, raw, labels = pivot_frames(stats, rows, spec.mean_row, digits, flags)
    caption = (
        f"{spec.metric} by {' x '.join(rows) or '-'} (rows) and {' x '.join(cols) or '-'} "
        f"(columns) over {len(df)} runs; a cell over several seeds: mean ± std (n=runs)"
    )
    if flags is not None:
        caption += f"; * p < 0.05 against --baseline {spec.baseline} (see the tests table)"
    return Table(shown, labels, caption, raw=raw)


def _runs_table(df: pd.DataFrame, metric: str) -> Table:
    """All runs, their measurements rounded (counts as integers); dropped duplicates named."""
    runs = runs_table(df, metric)
    metrics, _ = column_groups(df)
    info = df.attrs.get("columns", {}).get("info", [])
    numbers = [
        c
        for c in runs.columns
        if c in info
        and pd.api.types.is_numeric_dtype(runs[c])
        and not pd.api.types.is_bool_dtype(runs[c])
    ]
    values = [c for c in runs.columns if c in metrics or c in numbers]
    caption = f"all {len(df)} runs"
    dropped = df.attrs.get(DUPLICATES, [])
    if dropped:
        pairs = ", ".join(f"{d} (= {k})" for d, k in dropped)
        caption += f"\n{len(dropped)} duplicate run(s) dropped: {pairs}"
    return Table(runs, values, caption, counts=count_columns(runs, values))


def build_report(df: pd.DataFrame, spec: ReportSpec) -> tuple[dict[str, Table], Figure | None]:
    """The report's tables (``pivot``, ``runs``, with a baseline ``tests``) and its figure
    (with ``spec.x``), built and checked but not written."""
    check_not_empty(df)
    row_keys, col_keys, hue_keys = spec.keys(df)
    baseline = Baseline.parse(spec.baseline) if spec.baseline else None
    stats = pivot_stats(df, spec.metric, row_keys, col_keys)
    fig = plot(df, spec.metric, spec.x, hue_keys) if spec.x else None
    tests = paired_tests(df, row_keys + col_keys, baseline) if baseline else None
    tables = {
        "pivot": _pivot_table(df, spec, stats, (row_keys, col_keys), tests),
        "runs": _runs_table(df, spec.metric),
    }
    if tests is not None:
        tables["tests"] = tests_table(tests)
    return tables, fig


def write_files(df: pd.DataFrame, out: Path, spec: ReportSpec) -> list[Path]:
    """The files of ``write_report``, with the options already gathered in ``spec``."""
    tables, fig = build_report(df, spec)
    written = []
    for kind, table in tables.items():
        written += _write_table(table, out, f"{spec.name}_{kind}")
    if fig is not None:
        png = out / f"{spec.name}_plot.png"
        written.append(atomic_write(png, lambda f: fig.savefig(f, format="png", dpi=150)))
    return written
