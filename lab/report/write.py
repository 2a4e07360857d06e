"""Write a report's files: the pivot and runs tables as Markdown, CSV and LaTeX, and the plot.

Every option is checked against the runs before anything is written, and every file is
written atomically (``lab.io.atomic_write``), so a failed report leaves no half-written file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lab.errors import LabError
from lab.io import atomic_write, atomic_write_text
from lab.report.checks import Keys, check_keys, check_metric, check_not_empty, key_list
from lab.report.plot import default_hue, plot
from lab.report.render import Table, fmt_key
from lab.report.tables import column_groups, flat_pivot, pivot, runs_table


@dataclass(frozen=True, kw_only=True)
class ReportSpec:
    """What a report shows and how its files are named: the options of ``write_report`` and
    ``report``, defined once so that their names and defaults cannot drift apart.

    ``rows``/``cols`` key the pivot of ``metric``; with ``x``, a plot of ``metric`` against
    ``x`` gets one line per ``hue`` value (by default per model/search, and per task when
    there are several); ``mean_row`` ends the pivot with each column's mean; ``name`` prefixes
    every file.
    """

    metric: str = "bleu"
    rows: Keys = ("model",)
    cols: Keys = ("search",)
    x: str | None = None
    hue: Keys = None
    name: str = "report"
    mean_row: bool = False

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
    """Write ``<name>_pivot.{md,csv,tex}``, ``<name>_runs.{md,csv,tex}`` and, with ``x``,
    ``<name>_plot.png`` into ``out_dir``; ``options`` are the fields of ``ReportSpec``
    (``metric``, ``rows``, ``cols``, ``x``, ``hue``, ``name``, ``mean_row``). Returns the
    written paths.
    """
    return write_files(df, Path(out_dir), ReportSpec(**options))


def write_files(df: pd.DataFrame, out: Path, spec: ReportSpec) -> list[Path]:
    """The files of ``write_report``, with the options already gathered in ``spec``."""
    check_not_empty(df)
    row_keys, col_keys, hue_keys = spec.keys(df)
    metric, name = spec.metric, spec.name
    table = pivot(df, metric, row_keys, col_keys)
    fig = plot(df, metric, spec.x, hue_keys) if spec.x else None
    caption = (
        f"{metric} by {' x '.join(row_keys) or '-'} (rows) and "
        f"{' x '.join(col_keys) or '-'} (columns), mean over {len(df)} runs"
    )
    flat = flat_pivot(table, row_keys, spec.mean_row)
    written = _write_table(Table(flat, table.columns.map(fmt_key), caption), out, f"{name}_pivot")
    runs = runs_table(df, metric)
    metrics, _ = column_groups(df)
    written += _write_table(
        Table(runs, [c for c in runs.columns if c in metrics], f"all {len(df)} runs"),
        out,
        f"{name}_runs",
    )
    if fig is not None:
        png = out / f"{name}_plot.png"
        written.append(atomic_write(png, lambda f: fig.savefig(f, format="png", dpi=150)))
    return written
