"""The table of all runs as a DataFrame (the pivot is ``lab.report.pivot``'s).

The runs table keeps every run and only the keys that tell the runs apart, so that it stays
readable for sweeps.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from lab.report.checks import numeric_columns
from lab.report.pooling import nan_marked
from lab.report.runs import IDENTITY, NONFINITE

_PATHLIKE = re.compile(r"(^|_)(dir|path|file|root|checkpoint|ckpt)s?$")


def column_groups(df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(metric columns, other non-identity columns), from ``df.attrs`` when present."""
    known = df.attrs.get("columns", {}).get("metric")
    rest = [c for c in df.columns if c not in ("run_dir", NONFINITE, *IDENTITY)]
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


def run_names(df: pd.DataFrame) -> list[str]:
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
    numeric = [
        c
        for c in metrics
        if pd.api.types.is_numeric_dtype(df[c]) and (df[c].notna() | nan_marked(df, c)).any()
    ]
    text = [c for c in metrics if c not in numeric and _varies(df[c])]
    ordered = sorted(numeric, key=lambda c: c != metric) + text
    table = df[[*IDENTITY, *keys, *ordered]].copy()
    for column in ordered:  # NaN in results.json reads NaN; a metric a run lacks reads '-'
        nan = table[column].isna() & nan_marked(df, column)
        if nan.any():
            table[column] = table[column].astype(object).where(~nan, "NaN")
    table.insert(0, "run", run_names(df))
    try:
        table = table.sort_values([*IDENTITY, *keys, "run"], na_position="last", kind="stable")
    except TypeError:
        table = table.sort_values([*IDENTITY, "run"], kind="stable")
    return table.reset_index(drop=True)
