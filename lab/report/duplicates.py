"""Drop duplicate runs: one experiment found twice must count once, not as two repeats.

The same sweep made with two launchers (or copied to a second directory) leaves two run
directories with the same settings, seed, split and checkpoint; averaging them would shrink
the reported spread and inflate ``n``. The first one found is kept; the others are dropped
with one ``ReportNote`` naming each and the run it repeats, and are listed in
``df.attrs["duplicates"]`` as ``(dropped, kept)`` run directories for the report's captions.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from lab.report.notes import note
from lab.report.settings import as_text, info_column, setting_columns

DUPLICATES = "duplicates"  # the df.attrs key of the dropped runs


def duplicate_key_columns(df: pd.DataFrame, identity: Sequence[str]) -> list[str]:
    """The columns that make a run: plugin names, settings with the seed, split, checkpoint."""
    extra = [info_column(df, key) for key in ("split", "checkpoint")]
    columns = [*identity, *setting_columns(df, seed=True), *(c for c in extra if c)]
    return list(dict.fromkeys(c for c in columns if c in df.columns))


def drop_duplicates(df: pd.DataFrame, identity: Sequence[str]) -> pd.DataFrame:
    """``df`` without the runs that repeat an earlier row's key columns (see the module)."""
    attrs = dict(df.attrs)
    if df.empty:
        return _with_dropped(df.copy(), attrs, [])
    text = as_text(df[duplicate_key_columns(df, identity)])
    first: dict[tuple[str, ...], str] = {}
    dropped: list[tuple[str, str]] = []
    keep = []
    for run_dir, key in zip(df["run_dir"], text.itertuples(index=False, name=None), strict=True):
        kept = first.setdefault(key, run_dir)
        keep.append(kept == run_dir)
        if kept != run_dir:
            dropped.append((run_dir, kept))
    if dropped:
        pairs = ", ".join(f"{d} (= {k})" for d, k in dropped)
        note(
            f"dropped {len(dropped)} duplicate run(s), same settings, seed, split and "
            f"checkpoint as a run kept: {pairs}"
        )
    return _with_dropped(df[keep].reset_index(drop=True), attrs, dropped)


def _with_dropped(df: pd.DataFrame, attrs: dict, dropped: list[tuple[str, str]]) -> pd.DataFrame:
    df.attrs.update(attrs)
    df.attrs[DUPLICATES] = dropped
    return df
