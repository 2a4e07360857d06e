"""Find run directories and load their completed results into one DataFrame, a row per run.

Only runs whose ``results.json`` has ``status`` ``"completed"`` are loaded; every other run
directory found (no ``results.json``, another status, unreadable JSON) is skipped with a
``SkippedRunWarning`` naming it, so a half-finished sweep still reports what it has. A run that
repeats another one (same settings, seed, split and checkpoint: the same sweep made twice) is
dropped with a ``ReportNote`` (``lab.report.duplicates``), so that it is not counted twice.

DataFrame columns (one row per run), by where the value comes from:

* ``run_dir``, ``task``, ``model``, ``search``: the run directory and the plugin names;
* metrics by their plain key: ``bleu``, ``bleu_signature``, ``chrf``, ``em``, ``len_ratio``...;
* other top-level fields of ``results.json`` by their key, nested ones dotted:
  ``n_examples``, ``checkpoint``, ``cost.steps``...;
* every leaf of the resolved config by its dotted path from the config root:
  ``search.beam_size``, ``model.d_model``, ``task.name``, ``seed``. Lists become JSON text;
* ``_nonfinite``: the names of the run's metrics that are NaN or infinite, comma-separated.
  In the metric's column such a value is NaN, as a missing one is; this column tells them
  apart, so that a table shows ``NaN`` for the one and ``-`` for the other.

A name already taken by an earlier group is prefixed with its source (``results.`` for
top-level fields, ``config.`` for config leaves).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from lab.errors import LabError
from lab.io import flatten
from lab.report.duplicates import drop_duplicates
from lab.results import PREDICTIONS, RESULTS, load_results

IDENTITY = ("task", "model", "search")
NONFINITE = "_nonfinite"  # the column naming each run's NaN or infinite metrics
_RESERVED = frozenset({"status", "config", "metrics", *IDENTITY})

PathsLike = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]


class SkippedRunWarning(UserWarning):
    """A run directory left out of the report (unfinished, failed or unreadable)."""


def _skip(run_dir: Path, why: str) -> None:
    """Warn that ``run_dir`` is left out; the warning points at the caller of our caller."""
    warnings.warn(f"skipping run {run_dir}: {why}", SkippedRunWarning, stacklevel=3)


def as_paths(paths: PathsLike) -> list[Path]:
    """``paths`` (one path or several) as a list of ``Path``."""
    if isinstance(paths, str | os.PathLike):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _scan(root: Path) -> tuple[list[Path], list[Path]]:
    """Directories under ``root`` with ``results.json``, and run directories without one.

    A directory without results counts as a run when it holds ``predictions.jsonl`` or a
    ``.hydra`` folder. Hidden directories are not searched; symlinked ones are (runs are
    often collected that way), each real directory once, so a link cycle ends.
    """
    runs: list[Path] = []
    unfinished: list[Path] = []
    seen: set[str] = set()  # real paths walked: a symlink back up the tree is walked once
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        has_hydra = ".hydra" in dirnames
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if RESULTS in filenames:
            runs.append(Path(dirpath))
        elif PREDICTIONS in filenames or has_hydra:
            unfinished.append(Path(dirpath))
    return runs, unfinished


def find_runs(paths: PathsLike) -> list[Path]:
    """Run directories (holding ``results.json``) under ``paths``, in order, without repeats.

    Each path may be a run directory, a sweep directory (searched recursively) or a
    ``results.json`` file. Run directories without ``results.json`` are reported with a
    ``SkippedRunWarning``, as is a path that holds no run at all.
    """
    found: dict[Path, None] = {}
    for path in as_paths(paths):
        if not path.exists():
            raise LabError(
                f"no such run or sweep directory: {path}; pass a directory that "
                f"`lab run` wrote (it holds {RESULTS})."
            )
        if path.is_file():
            if path.name != RESULTS:
                raise LabError(f"{path} is a file; pass a run or sweep directory instead.")
            found.setdefault(path.parent, None)
            continue
        runs, unfinished = _scan(path)
        for run_dir in unfinished:
            _skip(run_dir, f"no {RESULTS} (the run did not finish)")
        if not runs and not unfinished:
            _skip(path, f"no {RESULTS} anywhere below it")
        for run_dir in runs:
            found.setdefault(run_dir, None)
    return list(found)


def read_completed(run_dir: Path) -> dict[str, Any] | None:
    """The run's results if completed, else None after a warning saying why not.

    ``lab.results.read_results`` would say None too, but not why; the report names the reason.
    """
    try:
        data = load_results(run_dir)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        _skip(run_dir, f"cannot read {RESULTS} ({exc})")
        return None
    except ValueError:  # parsed, but not an object
        _skip(run_dir, f"{RESULTS} is not a JSON object")
        return None
    status = data.get("status")
    if status != "completed":
        _skip(run_dir, f"status is {status!r}, not 'completed'")
        return None
    metrics = data.get("metrics") if isinstance(data.get("metrics"), Mapping) else {}
    for key in nonfinite_metrics(data):
        value = metrics[key]
        warnings.warn(
            f"run {run_dir}: {key} is {'NaN' if math.isnan(value) else value} in {RESULTS} "
            "(the lab never writes one: edited by hand or by another tool?); tables show it "
            "as NaN",
            SkippedRunWarning,
            stacklevel=2,
        )
    return data


def nonfinite_metrics(data: Mapping[str, Any]) -> list[str]:
    """The names of the metrics in ``data`` (a ``results.json``) that are NaN or infinite."""
    metrics = data.get("metrics") if isinstance(data.get("metrics"), Mapping) else {}
    return [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]


def _identity(data: Mapping[str, Any], key: str) -> Any:
    """A plugin name from ``results.json``, else from ``config.<key>.name``."""
    if isinstance(data.get(key), str):
        return data[key]
    section = (data.get("config") or {}).get(key)
    if isinstance(section, Mapping):
        return section.get("name")
    return section


def _run_row(run_dir: Path, data: Mapping[str, Any], kinds: dict[str, dict[str, None]]) -> dict:
    """One DataFrame row; records each column's group in ``kinds`` (first come, first kept)."""
    row: dict[str, Any] = {"run_dir": str(run_dir)}
    row.update({key: _identity(data, key) for key in IDENTITY})
    row[NONFINITE] = ",".join(sorted(nonfinite_metrics(data)))
    extras = {k: v for k, v in data.items() if k not in _RESERVED}
    groups = (
        ("metric", "", dict(data.get("metrics") or {})),
        ("info", "results.", flatten(extras)),
        ("config", "config.", flatten(data.get("config") or {})),
    )
    for kind, prefix, values in groups:
        for key, value in values.items():
            column = key
            if column in row or any(column in kinds[k] for k in kinds if k != kind):
                column = prefix + key
            row[column] = value
            kinds[kind].setdefault(column, None)
    return row


def load_runs(paths: PathsLike) -> pd.DataFrame:
    """One row per distinct completed run under ``paths`` (columns: see the module docstring).

    The column groups are kept in ``df.attrs["columns"]`` (``metric``/``info``/``config``), the
    dropped duplicates in ``df.attrs["duplicates"]``. No completed run gives an empty frame
    with the identity columns.
    """
    rows: list[dict[str, Any]] = []
    kinds: dict[str, dict[str, None]] = {"metric": {}, "info": {}, "config": {}}
    for run_dir in find_runs(paths):
        data = read_completed(run_dir)
        if data is not None:
            rows.append(_run_row(run_dir, data, kinds))
    columns = ["run_dir", *IDENTITY, NONFINITE, *(c for group in kinds.values() for c in group)]
    df = pd.DataFrame(rows, columns=columns)
    for column in kinds["metric"]:
        df[column] = _maybe_numeric(df[column])
    df.attrs["columns"] = {kind: list(group) for kind, group in kinds.items()}
    return drop_duplicates(df, IDENTITY)


def _maybe_numeric(series: pd.Series) -> pd.Series:
    """``series`` as numbers when every present value is one, else unchanged."""
    converted = pd.to_numeric(series, errors="coerce")
    return converted if converted.notna().sum() == series.notna().sum() else series
