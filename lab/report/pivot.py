"""The pivot of one metric: a cell per combination of row and column keys.

The pivot answers "which setting is best". A cell holds one run, or several runs that repeat
one experiment with other seeds (``lab.report.pooling``): then it shows ``mean ± std (n=N)``;
runs that differ in another setting are refused, never averaged. The CSV keeps each cell's
mean, std and n at full precision (``<column>``, ``<column>_std``, ``<column>_n``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from lab.errors import LabError
from lab.report.checks import Keys, check_keys, check_metric, check_not_empty, key_list
from lab.report.pooling import aggregate, check_pooled
from lab.report.render import fmt_cell, fmt_key, fmt_value


@dataclass(frozen=True)
class PivotStats:
    """A pivot's cells as three frames of one shape: mean, std over seeds, number of runs."""

    mean: pd.DataFrame
    std: pd.DataFrame
    n: pd.DataFrame


def _check(df: pd.DataFrame, metric: str, row_keys: list[str], col_keys: list[str]) -> None:
    check_not_empty(df)
    check_metric(df, metric)
    check_keys(df, row_keys + col_keys)
    if set(row_keys) & set(col_keys):
        raise LabError(
            f"'{sorted(set(row_keys) & set(col_keys))[0]}' is both a row and a column "
            "key; use each key on one side only."
        )


def shape_cells(
    cells: pd.Series, row_keys: list[str], col_keys: list[str], metric: str
) -> pd.DataFrame:
    """One statistic per cell (``cells``, indexed by row then column keys) as a table."""
    if not row_keys and not col_keys:
        return pd.DataFrame({metric: [cells.iloc[0]]}, index=pd.Index([metric]))
    if not col_keys:
        return cells.to_frame(metric)
    if not row_keys:
        table = cells.to_frame(metric).T
        table.columns.names = col_keys
        return table
    return cells.unstack(col_keys)


def pivot_stats(df: pd.DataFrame, metric: str, rows: Keys, cols: Keys) -> PivotStats:
    """Mean, std and n of ``metric`` per combination of ``rows`` keys (index) and ``cols``
    keys (columns); either may be empty. Raises ``LabError`` when a cell would pool runs that
    differ in a setting other than the seed. Combinations without runs are NaN.
    """
    row_keys, col_keys = key_list(rows), key_list(cols)
    _check(df, metric, row_keys, col_keys)
    check_pooled(df, row_keys + col_keys, "--rows or --cols", "--rows", row_keys)
    cells = aggregate(df, row_keys + col_keys, metric)
    mean, std, n = (shape_cells(cells[c], row_keys, col_keys, metric) for c in ("mean", "std", "n"))
    return PivotStats(mean, std, n)


def pivot(df: pd.DataFrame, metric: str, rows: Keys, cols: Keys) -> pd.DataFrame:
    """The mean of ``metric`` per cell of ``pivot_stats`` (same checks, same shape)."""
    return pivot_stats(df, metric, rows, cols).mean


def flat_pivot(table: pd.DataFrame, rows: list[str], mean_row: bool = False) -> pd.DataFrame:
    """``table`` with its row keys as leading columns and its column labels as plain text.

    With ``mean_row``, a last row ``mean`` holds each column's mean over the rows; a column
    with a missing cell gets no mean (``-``) rather than a mean over fewer rows.
    """
    flat = table.copy()
    flat.columns = [fmt_key(c) for c in flat.columns]
    flat = flat.reset_index() if rows else flat.reset_index(names="metric")
    if mean_row and rows:
        means = flat.drop(columns=rows).mean(skipna=False)
        label = {rows[0]: "mean"} | {key: None for key in rows[1:]}
        flat = pd.concat([flat.astype({rows[0]: object}), pd.DataFrame([label | dict(means)])])
    return flat.reset_index(drop=True)


def pivot_frames(
    stats: PivotStats,
    rows: list[str],
    mean_row: bool = False,
    digits: int = 2,
    marks: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(cells as text for Markdown/LaTeX, numbers for CSV, the value columns' labels).

    A cell reads ``36.20``, or ``36.20 ± 0.30 (n=3)`` over seeds, with its mark from
    ``marks`` (a frame of ``stats``' shape, e.g. ``*`` for significant) appended; the mean row
    (``mean_row``) is a plain mean of each column.
    """
    mean = flat_pivot(stats.mean, rows, mean_row)
    std, n = flat_pivot(stats.std, rows), flat_pivot(stats.n, rows)
    flags = flat_pivot(marks, rows) if marks is not None else None
    labels = [fmt_key(c) for c in stats.mean.columns]
    shown, raw = mean.astype(object), mean[[c for c in mean.columns if c not in labels]]
    for label in labels:
        cells = [
            fmt_cell(m, s, k, digits) + (str(flags.at[i, label]) if flags is not None else "")
            for i, (m, s, k) in enumerate(zip(mean[label], std[label], n[label], strict=False))
        ]
        shown[label] = cells + [fmt_value(m, digits) for m in mean[label][len(cells) :]]
        counts = n[label].astype("Int64")
        raw = raw.assign(**{label: mean[label], f"{label}_std": std[label], f"{label}_n": counts})
    return shown, raw, labels
