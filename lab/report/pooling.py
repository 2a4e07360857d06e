"""Pool the runs that share a table cell or a plot point, but only repeats over seeds.

Several runs may fall into one pivot cell (or plot point). Their mean is honest only when they
are repeats of one experiment that differ in nothing but their seed; such a cell reports the
mean, the standard deviation over the seeds and their number ``n``. Runs that differ in any
other setting are refused with one line naming those settings, which the caller must add as a
dimension of the table or plot: a report never averages different experiments silently.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd

from lab.errors import LabError
from lab.report.render import fmt_key
from lab.report.runs import IDENTITY, NONFINITE
from lab.report.settings import differing, setting_columns


def groups(df: pd.DataFrame, keys: Sequence[str]) -> Iterator[tuple[tuple[Any, ...], pd.DataFrame]]:
    """``(key values, rows)`` per distinct combination of ``keys`` (all rows when none),
    sorted when the values can be sorted, missing values included."""
    if not keys:
        yield (), df
        return
    try:
        grouped = list(df.groupby(list(keys), dropna=False, sort=True))
    except TypeError:  # values of mixed types in a key column cannot be sorted
        grouped = list(df.groupby(list(keys), dropna=False, sort=False))
    for label, rows in grouped:
        yield (label if isinstance(label, tuple) else (label,)), rows


def describe(keys: Sequence[str], values: Sequence[Any]) -> str:
    """``key=value, ...`` of one group, for messages (``all runs`` without keys)."""
    return ", ".join(f"{k}={fmt_key(v)}" for k, v in zip(keys, values, strict=True)) or "all runs"


def check_pooled(
    df: pd.DataFrame,
    keys: Sequence[str],
    alternatives: str,
    flag: str,
    flag_keys: Sequence[str],
    unit: str = "cell",
) -> None:
    """Raise ``LabError`` when the runs grouped by ``keys`` differ in a setting but the seed.

    The message names every such setting, one pooled group as an example, where keys go
    (``alternatives``: ``--rows or --cols``) and a fix: ``flag`` with its current keys
    (``flag_keys``) and the first setting found (``--rows model,search.alpha``); ``unit`` names
    what pools the runs (a table ``cell``, a plot ``point``).
    """
    candidates = [c for c in setting_columns(df, seed=False) if c not in keys]
    found: dict[str, None] = {}
    example = ""
    for values, rows in groups(df, keys):
        varying = differing(rows, candidates) if len(rows) > 1 else []
        if varying and not example:
            example = f"{describe(keys, values)}: {len(rows)} runs"
        found.update(dict.fromkeys(varying))
    if found:
        names = list(dict.fromkeys(_plain_name(df, c) for c in found))
        raise LabError(
            f"runs pooled in one {unit} differ in {', '.join(names)} (e.g. {example}); only "
            f"runs that differ in their seed are averaged: add the keys to {alternatives}, "
            f"e.g. {flag} {','.join([*flag_keys, names[0]])}."
        )


def _plain_name(df: pd.DataFrame, column: str) -> str:
    """``search`` rather than ``search.name``: a plugin's name column where one repeats it."""
    text = df[column].astype(str)
    same = [k for k in IDENTITY if k in df.columns and text.equals(df[k].astype(str))]
    return same[0] if same else column


def nan_marked(frame: pd.DataFrame, value: str) -> pd.Series:
    """Per run of ``frame``: True where its ``results.json`` holds ``value`` as NaN or infinite
    (``lab.report.runs``' ``_nonfinite`` column), False where it is absent or finite."""
    if NONFINITE not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame[NONFINITE].fillna("").map(lambda names: value in str(names).split(","))


def _cell(group: pd.DataFrame, value: str) -> dict[str, float]:
    """One cell's ``mean``, ``std`` and ``n``; NaN over its runs when one run has NaN."""
    series = pd.to_numeric(group[value], errors="coerce")
    nan = series.isna() & nan_marked(group, value)
    if nan.any():
        return {"mean": math.nan, "std": math.nan, "n": int(series.notna().sum() + nan.sum())}
    series = series.dropna()
    return {"mean": series.mean(), "std": series.std(), "n": len(series)}


def aggregate(df: pd.DataFrame, keys: Sequence[str], value: str) -> pd.DataFrame:
    """``mean``, ``std`` (over runs, n-1) and ``n`` (runs with a value) of ``value`` per
    combination of ``keys``, indexed by them; call ``check_pooled`` first.

    A cell with a run whose ``results.json`` has the value as NaN has a NaN mean and counts
    that run in ``n``: it reads ``NaN``, where a cell without runs reads ``-``."""
    rows = []
    index = []
    for values, group in groups(df, keys):
        rows.append(_cell(group, value))
        index.append(values if len(values) > 1 else values[0] if values else value)
    frame = pd.DataFrame(rows, columns=["mean", "std", "n"])
    if len(keys) > 1:
        frame.index = pd.MultiIndex.from_tuples(index, names=list(keys))
    else:
        frame.index = pd.Index(index, name=keys[0] if keys else None)
    return frame
