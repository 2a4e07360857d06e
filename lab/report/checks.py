"""Check the keys and metric a report asks for against the loaded runs, before any work.

A wrong name fails with one ``LabError`` line that lists the valid choices and suggests the
closest one (``beam_size`` -> ``search.beam_size``), instead of a pandas ``KeyError``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

import pandas as pd

from lab.errors import LabError
from lab.results import RESULTS

Keys = str | Sequence[str] | None


def key_list(keys: Keys) -> list[str]:
    """``keys`` (none, one column name or several) as a list."""
    if keys is None:
        return []
    if isinstance(keys, str):
        return [keys]
    return list(keys)


def _suggest(name: str, choices: Sequence[str]) -> str:
    suffix = [c for c in choices if c.endswith("." + name)]
    close = suffix[:1] or difflib.get_close_matches(name, list(choices), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def numeric_columns(df: pd.DataFrame) -> list[str]:
    """Numeric columns, metrics first."""
    metrics = df.attrs.get("columns", {}).get("metric", [])
    numeric = [
        c
        for c in df.columns
        if c != "run_dir"
        and pd.api.types.is_numeric_dtype(df[c])
        and not pd.api.types.is_bool_dtype(df[c])
    ]
    return [c for c in metrics if c in numeric] + [c for c in numeric if c not in metrics]


def check_metric(df: pd.DataFrame, metric: str) -> None:
    """Raise ``LabError`` unless ``metric`` is a numeric column of ``df``."""
    choices = numeric_columns(df)
    if metric in choices:
        return
    if metric in df.columns:
        raise LabError(f"metric '{metric}' is not numeric; choose one of: {', '.join(choices)}.")
    raise LabError(
        f"unknown metric '{metric}'.{_suggest(metric, choices)} "
        f"Valid choices: {', '.join(choices)}."
    )


def check_keys(df: pd.DataFrame, keys: Iterable[str], what: str = "key") -> None:
    """Raise ``LabError`` for the first of ``keys`` that is not a column of ``df``."""
    choices = [c for c in df.columns if c != "run_dir"]
    for key in keys:
        if key not in df.columns:
            raise LabError(
                f"unknown {what} '{key}'.{_suggest(key, choices)} "
                f"Valid choices: {', '.join(choices)}."
            )


def no_runs_error(where: str = "") -> LabError:
    """The error for a report without completed runs; ``where`` names the paths searched."""
    return LabError(
        f"no completed runs{where}; pass run or sweep directories that "
        f"hold a {RESULTS} with status 'completed'."
    )


def check_not_empty(df: pd.DataFrame) -> None:
    """Raise ``LabError`` when ``df`` holds no run."""
    if df.empty:
        raise no_runs_error(" to report")
