"""Which columns of the runs frame are settings: the config keys that can change a result.

Two runs are the same experiment when their settings agree. The config keys that never change
a result (``force``, ``cache_dir``, ``data_dir``, ``logger.*``, ``threads``: the pipeline's own
``VOLATILE_KEYS``, repeated here so that a report does not import the training pipeline; a test
keeps the two equal) are not settings, nor is a key whose value is the run's own directory or
a path inside it (an output directory: where a run went, not how). The ``seed`` is a setting
that a report treats apart: runs that differ only in their seed are repeats of one experiment,
to be pooled as mean ± std.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import pandas as pd

VOLATILE_KEYS = ("force", "cache_dir", "data_dir", "logger", "threads")
SEED_KEYS = ("seed",)
CONFIG_PREFIX = "config."  # a config leaf's column when its name was taken (see lab.report.runs)


def config_key(column: str) -> str:
    """The config path behind a config column (``config.checkpoint`` -> ``checkpoint``)."""
    return column.removeprefix(CONFIG_PREFIX)


def is_volatile(column: str) -> bool:
    """True for a config column that cannot change a result (``logger.mode``, ``threads``)."""
    return config_key(column).split(".", 1)[0] in VOLATILE_KEYS


def is_seed(column: str) -> bool:
    """True for the config column of the random seed, and for a search's own ``seed``
    (``search.seed``, ``search.candidates.seed``: ``${seed}`` in their configs, saved as the
    run's seed), so that runs pooled over seeds pool the searches' random streams too."""
    key = config_key(column)
    return key in SEED_KEYS or (key.startswith("search.") and key.endswith(".seed"))


def config_columns(df: pd.DataFrame) -> list[str]:
    """The columns of ``df`` that hold config leaves (all but ``run_dir`` without attrs)."""
    known = df.attrs.get("columns", {}).get("config")
    if known is None:
        return [c for c in df.columns if c != "run_dir" and not c.startswith("_")]
    return [c for c in known if c in df.columns]


def _inside(path: object, run_dir: object) -> bool:
    if not isinstance(path, str) or not path:
        return False
    inner, outer = os.path.abspath(path), os.path.abspath(str(run_dir))
    return inner == outer or inner.startswith(outer + os.sep)


def names_run_dir(df: pd.DataFrame, column: str) -> bool:
    """True when every run's ``column`` is its own directory or a path inside it."""
    if "run_dir" not in df.columns or df.empty:
        return False
    return all(_inside(v, d) for v, d in zip(df[column], df["run_dir"], strict=True))


def setting_columns(df: pd.DataFrame, seed: bool) -> list[str]:
    """Config columns that can change a result; the seed's only when ``seed`` is true."""
    return [
        c
        for c in config_columns(df)
        if not is_volatile(c) and (seed or not is_seed(c)) and not names_run_dir(df, c)
    ]


def info_column(df: pd.DataFrame, key: str) -> str | None:
    """The column of the top-level ``results.json`` field ``key``, None when it is absent."""
    for column in (key, f"results.{key}"):
        if column in df.attrs.get("columns", {}).get("info", []):
            return column
    return None


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every value as text, so that values compare whatever their types
    (a missing value is ``nan``, equal to every other missing value)."""
    return frame.astype(str)


def differing(frame: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    """Those of ``columns`` that take more than one value among the rows of ``frame``."""
    text = as_text(frame[list(columns)])
    return [c for c in text.columns if text[c].nunique(dropna=False) > 1]
