"""The report's two tables as DataFrames: the pivot of one metric, and the table of all runs.

The pivot answers "which setting is best" (a mean per combination of keys); the runs table
keeps every run and only the keys that tell the runs apart, so it stays readable for sweeps.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from lab.errors import LabError
from lab.report.checks import (
    Keys,
    check_keys,
    check_metric,
    check_not_empty,
    key_list,
    numeric_columns,
)
from lab.report.render import fmt_key
from lab.report.runs import IDENTITY

_PATHLIKE = re.compile(r"(^|_)(dir|path|file|root|checkpoint|ckpt)s?$")


def _group_mean(frame: pd.DataFrame, keys: list[str], value: str) -> pd.Series:
    try:
        return frame.groupby(keys, dropna=False, sort=True)[value].mean()
    except TypeError:  # values of mixed types in a key column cannot be sorted
        return frame.groupby(keys, dropna=False, sort=False)[value].mean()


def pivot(df: pd.DataFrame, metric: str, rows: Keys, cols: Keys) -> pd.DataFrame:
    """Mean of ``metric`` per combination of ``rows`` keys (index) and ``cols`` keys (columns).

    ``rows``/``cols`` are a column name or a list of them (either may be empty); runs with the
    same keys are averaged; combinations without runs are NaN.
    """
    check_not_empty(df)
    row_keys, col_keys = key_list(rows), key_list(cols)
    check_metric(df, metric)
    check_keys(df, row_keys + col_keys)
    if set(row_keys) & set(col_keys):
        raise LabError(
            f"'{sorted(set(row_keys) & set(col_keys))[0]}' is both a row and a column "
            "key; use each key on one side only."
        )
    if not row_keys and not col_keys:
        return pd.DataFrame({metric: [df[metric].mean()]}, index=pd.Index([metric]))
    means = _group_mean(df, row_keys + col_keys, metric)
    if not col_keys:
        return means.to_frame(metric)
    if not row_keys:
        table = means.to_frame(metric).T
        table.columns.names = col_keys
        return table
    return means.unstack(col_keys)


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


def column_groups(df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(metric columns, other non-identity columns), from ``df.attrs`` when present."""
    known = df.attrs.get("columns", {}).get("metric")
    rest = [c for c in df.columns if c not in ("run_dir", *IDENTITY)]
    if known is None:
        known = numeric_columns(df)
    metrics = [c for c in rest if c in known]
    return metrics, [c for c in rest if c not in metrics]


def _varies(series: pd.Series) -> bool:
    return series.astype(str).nunique(dropna=False) > 1


def _redundant(df: pd.DataFrame, column: str) -> bool:
    """True for a path-like key, or one that repeats a plugin name (``model.name``)."""
    if _PATHLIKE.search(column.rsplit(".", 1)[-1]):
        return True
    return any(df[column].astype(str).equals(df[key].astype(str)) for key in IDENTITY)


def _run_names(df: pd.DataFrame) -> list[str]:
    """Run directories relative to their common parent."""
    dirs = [Path(d) for d in df["run_dir"]]
    if len(dirs) == 1:
        return [dirs[0].name]
    common = Path(os.path.commonpath([str(d) for d in dirs]))
    return [str(d.relative_to(common)) or d.name for d in dirs]


def runs_table(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """All runs: name, task/model/search, the config keys that vary, then the metrics.

    Keys constant across runs, path-like keys and copies of the plugin names are dropped;
    numeric metrics are kept (``metric`` first), text metrics (signatures) only if they vary.
    """
    metrics, others = column_groups(df)
    keys = [c for c in others if _varies(df[c]) and not _redundant(df, c)]
    numeric = [c for c in metrics if pd.api.types.is_numeric_dtype(df[c]) and df[c].notna().any()]
    text = [c for c in metrics if c not in numeric and _varies(df[c])]
    ordered = sorted(numeric, key=lambda c: c != metric) + text
    table = df[[*IDENTITY, *keys, *ordered]].copy()
    table.insert(0, "run", _run_names(df))
    try:
        table = table.sort_values([*IDENTITY, *keys, "run"], na_position="last", kind="stable")
    except TypeError:
        table = table.sort_values([*IDENTITY, "run"], kind="stable")
    return table.reset_index(drop=True)
