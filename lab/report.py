"""Collect finished runs into one table and write pivot tables, a runs table and a plot.

A run directory holds ``results.json`` (``status``, ``task``, ``model``, ``search``, the
resolved ``config``, the ``metrics`` and ``n_examples``/``checkpoint``/...) and
``predictions.jsonl``. Only runs whose ``status`` is ``"completed"`` are used; every other run
directory found (no ``results.json``, another status, unreadable JSON) is skipped with a
``SkippedRunWarning`` naming it.

DataFrame columns (one row per run), by where the value comes from:

* ``run_dir``, ``task``, ``model``, ``search``: the run directory and the plugin names;
* metrics by their plain key: ``bleu``, ``bleu_signature``, ``chrf``, ``em``, ``len_ratio``...;
* other top-level fields of ``results.json`` by their key, nested ones dotted:
  ``n_examples``, ``checkpoint``, ``cost.steps``...;
* every leaf of the resolved config by its dotted path from the config root:
  ``search.beam_size``, ``model.d_model``, ``task.name``, ``seed``. Lists become JSON text.

A name already taken by an earlier group is prefixed with its source (``results.`` for
top-level fields, ``config.`` for config leaves). ``rows``/``cols``/``x``/``hue`` name any of
these columns; ``metric`` names any numeric column (usually a metric, but ``cost.steps`` works).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tabulate import tabulate

from lab.errors import LabError

RESULTS_FILE = "results.json"
PREDICTIONS_FILE = "predictions.jsonl"
IDENTITY = ("task", "model", "search")
_RESERVED = frozenset({"status", "config", "metrics", *IDENTITY})
_PATHLIKE = re.compile(r"(^|_)(dir|path|file|root|checkpoint|ckpt)s?$")
_MISSING = "-"

Keys = str | Sequence[str] | None


class SkippedRunWarning(UserWarning):
    """A run directory left out of the report (unfinished, failed or unreadable)."""


def _skip(run_dir: Path, why: str) -> None:
    warnings.warn(f"skipping run {run_dir}: {why}", SkippedRunWarning, stacklevel=3)


# ---------------------------------------------------------------------------------- finding


def _as_paths(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    if isinstance(paths, str | os.PathLike):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _scan(root: Path) -> tuple[list[Path], list[Path]]:
    """Directories under ``root`` with ``results.json``, and run directories without one.

    A directory without results counts as a run when it holds ``predictions.jsonl`` or a
    ``.hydra`` folder. Hidden directories are not searched.
    """
    runs: list[Path] = []
    unfinished: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        has_hydra = ".hydra" in dirnames
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if RESULTS_FILE in filenames:
            runs.append(Path(dirpath))
        elif PREDICTIONS_FILE in filenames or has_hydra:
            unfinished.append(Path(dirpath))
    return runs, unfinished


def find_runs(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Run directories (holding ``results.json``) under ``paths``, in order, without repeats.

    Each path may be a run directory, a sweep directory (searched recursively) or a
    ``results.json`` file. Run directories without ``results.json`` are reported with a
    ``SkippedRunWarning``, as is a path that holds no run at all.
    """
    found: dict[Path, None] = {}
    for path in _as_paths(paths):
        if not path.exists():
            raise LabError(
                f"no such run or sweep directory: {path}; pass a directory that "
                f"`lab run` wrote (it holds {RESULTS_FILE})."
            )
        if path.is_file():
            if path.name != RESULTS_FILE:
                raise LabError(f"{path} is a file; pass a run or sweep directory instead.")
            found.setdefault(path.parent, None)
            continue
        runs, unfinished = _scan(path)
        for run_dir in unfinished:
            _skip(run_dir, f"no {RESULTS_FILE} (the run did not finish)")
        if not runs and not unfinished:
            _skip(path, f"no {RESULTS_FILE} anywhere below it")
        for run_dir in runs:
            found.setdefault(run_dir, None)
    return list(found)


# ---------------------------------------------------------------------------------- loading


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of nested mappings as ``{dotted.path: value}``; lists become JSON text."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list | tuple):
        value = json.dumps(value, default=str)
    return {prefix: value}


def _read_results(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((run_dir / RESULTS_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        _skip(run_dir, f"cannot read {RESULTS_FILE} ({exc})")
        return None
    if not isinstance(data, dict):
        _skip(run_dir, f"{RESULTS_FILE} is not a JSON object")
        return None
    status = data.get("status")
    if status != "completed":
        _skip(run_dir, f"status is {status!r}, not 'completed'")
        return None
    return data


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
    extras = {k: v for k, v in data.items() if k not in _RESERVED}
    groups = (
        ("metric", "", dict(data.get("metrics") or {})),
        ("info", "results.", _flatten(extras)),
        ("config", "config.", _flatten(data.get("config") or {})),
    )
    for kind, prefix, values in groups:
        for key, value in values.items():
            column = key
            if column in row or any(column in kinds[k] for k in kinds if k != kind):
                column = prefix + key
            row[column] = value
            kinds[kind].setdefault(column, None)
    return row


def load_runs(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """One row per completed run under ``paths`` (see the module docstring for the columns).

    The column groups are kept in ``df.attrs["columns"]`` (``metric``/``info``/``config``).
    No completed run gives an empty frame with the identity columns.
    """
    rows: list[dict[str, Any]] = []
    kinds: dict[str, dict[str, None]] = {"metric": {}, "info": {}, "config": {}}
    for run_dir in find_runs(paths):
        data = _read_results(run_dir)
        if data is not None:
            rows.append(_run_row(run_dir, data, kinds))
    columns = ["run_dir", *IDENTITY, *(c for group in kinds.values() for c in group)]
    df = pd.DataFrame(rows, columns=columns)
    for column in kinds["metric"]:
        df[column] = _maybe_numeric(df[column])
    df.attrs["columns"] = {kind: list(group) for kind, group in kinds.items()}
    return df


def _maybe_numeric(series: pd.Series) -> pd.Series:
    """``series`` as numbers when every present value is one, else unchanged."""
    converted = pd.to_numeric(series, errors="coerce")
    return converted if converted.notna().sum() == series.notna().sum() else series


# ------------------------------------------------------------------------------- validation


def _keys(keys: Keys) -> list[str]:
    if keys is None:
        return []
    if isinstance(keys, str):
        return [keys]
    return list(keys)


def _suggest(name: str, choices: Sequence[str]) -> str:
    suffix = [c for c in choices if c.endswith("." + name)]
    close = suffix[:1] or difflib.get_close_matches(name, list(choices), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def _numeric_columns(df: pd.DataFrame) -> list[str]:
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
    choices = _numeric_columns(df)
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


def _check_not_empty(df: pd.DataFrame) -> None:
    if df.empty:
        raise LabError(
            "no completed runs to report; pass run or sweep directories that hold "
            f"a {RESULTS_FILE} with status 'completed'."
        )


# ---------------------------------------------------------------------------------- pivoting


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
    _check_not_empty(df)
    row_keys, col_keys = _keys(rows), _keys(cols)
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


# -------------------------------------------------------------------------------- formatting


def _fmt_key(value: Any) -> str:
    """A key value as text: integral floats without '.0', missing as '-'."""
    if isinstance(value, tuple):
        return " / ".join(_fmt_key(v) for v in value)
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return _MISSING
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _fmt_value(value: Any, digits: int = 2) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _fmt_key(value)
    if pd.isna(value):
        return _MISSING
    return f"{value:.{digits}f}"


def _flat_pivot(table: pd.DataFrame, rows: list[str], mean_row: bool = False) -> pd.DataFrame:
    """``table`` with its row keys as leading columns and its column labels as plain text.

    With ``mean_row``, a last row ``mean`` holds each column's mean over the rows; a column
    with a missing cell gets no mean (``-``) rather than a mean over fewer rows.
    """
    flat = table.copy()
    flat.columns = [_fmt_key(c) for c in flat.columns]
    flat = flat.reset_index() if rows else flat.reset_index(names="metric")
    if mean_row and rows:
        means = flat.drop(columns=rows).mean(skipna=False)
        label = {rows[0]: "mean"} | {key: None for key in rows[1:]}
        flat = pd.concat([flat.astype({rows[0]: object}), pd.DataFrame([label | dict(means)])])
    return flat.reset_index(drop=True)


class _Table:
    """A table ready to write: headers, raw rows for CSV, and which columns hold values."""

    def __init__(self, frame: pd.DataFrame, value_columns: Iterable[str], caption: str) -> None:
        self.frame = frame
        self.values = set(value_columns)
        self.caption = caption

    def cells(self) -> list[list[str]]:
        fmts = [_fmt_value if c in self.values else _fmt_key for c in self.frame.columns]
        return [
            [f(v) for f, v in zip(fmts, row, strict=True)]
            for row in self.frame.itertuples(index=False)
        ]

    def align(self) -> list[str]:
        return ["right" if self._is_number(c) else "left" for c in self.frame.columns]

    def _is_number(self, column: str) -> bool:
        series = self.frame[column]
        return column in self.values or (
            pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        )

    def markdown(self) -> str:
        body = tabulate(
            self.cells(),
            headers=list(self.frame.columns),
            tablefmt="pipe",
            colalign=self.align(),
            disable_numparse=True,
        )
        return f"{self.caption}\n\n{body}\n"

    def latex(self) -> str:
        spec = "".join("r" if a == "right" else "l" for a in self.align())
        line = " & ".join
        lines = [
            f"% {self.caption} (needs \\usepackage{{booktabs}})",
            f"\\begin{{tabular}}{{{spec}}}",
            "\\toprule",
            line(latex_escape(str(c)) for c in self.frame.columns) + r" \\",
            "\\midrule",
            *(line(latex_escape(c) for c in row) + r" \\" for row in self.cells()),
            "\\bottomrule",
            "\\end{tabular}",
        ]
        return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


# ------------------------------------------------------------------------------- runs table


def _column_groups(df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(metric columns, other non-identity columns), from ``df.attrs`` when present."""
    known = df.attrs.get("columns", {}).get("metric")
    rest = [c for c in df.columns if c not in ("run_dir", *IDENTITY)]
    if known is None:
        known = _numeric_columns(df)
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
    metrics, others = _column_groups(df)
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


# ---------------------------------------------------------------------------------- plotting


def _default_hue(df: pd.DataFrame) -> list[str]:
    hue = ["model", "search"]
    return ["task", *hue] if df["task"].nunique() > 1 else hue


def _plot(df: pd.DataFrame, metric: str, x: str, hue: list[str]) -> Figure:
    xs = pd.to_numeric(df[x], errors="coerce")
    if xs.isna().all():
        numeric = [
            c
            for c in _numeric_columns(df)
            if c not in df.attrs.get("columns", {}).get("metric", [])
        ]
        raise LabError(
            f"x key '{x}' is not numeric; choose a numeric key such as: "
            f"{', '.join(numeric) or 'search.beam_size'}."
        )
    frame = df[hue].copy()
    frame["__x"], frame["__y"] = xs, df[metric]
    frame = frame.dropna(subset=["__x", "__y"])
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    groups = frame.groupby(hue, dropna=False, sort=True) if hue else [((metric,), frame)]
    for label, group in groups:
        line = group.groupby("__x")["__y"].mean().sort_index()
        ax.plot(line.index, line.to_numpy(), marker="o", label=_fmt_key(label))
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    tasks = df["task"].dropna().unique()
    ax.set_title(f"{metric} vs {x}" + (f" ({tasks[0]})" if len(tasks) == 1 else ""))
    ax.grid(alpha=0.3)
    ax.legend(title=" / ".join(hue) if hue else None, fontsize="small")
    return fig


# ----------------------------------------------------------------------------------- writing


def _atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Write ``path`` through ``write(tmp)`` on a temporary sibling, then rename it into place."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _write_table(table: _Table, out_dir: Path, stem: str) -> list[Path]:
    return [
        _atomic_write(
            out_dir / f"{stem}.md", lambda p: p.write_text(table.markdown(), encoding="utf-8")
        ),
        _atomic_write(out_dir / f"{stem}.csv", lambda p: table.frame.to_csv(p, index=False)),
        _atomic_write(
            out_dir / f"{stem}.tex", lambda p: p.write_text(table.latex(), encoding="utf-8")
        ),
    ]


def write_report(
    df: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    metric: str = "bleu",
    rows: Keys = ("model",),
    cols: Keys = ("search",),
    x: str | None = None,
    hue: Keys = None,
    name: str = "report",
    mean_row: bool = False,
) -> list[Path]:
    """Write ``<name>_pivot.{md,csv,tex}``, ``<name>_runs.{md,csv,tex}`` and, with ``x``,
    ``<name>_plot.png`` (``metric`` against ``x``, one line per ``hue`` value; by default per
    model/search, and per task when there are several). ``mean_row`` ends the pivot with the
    mean of each column (say, the mean error over the bAbI tasks). Returns the written paths.
    """
    _check_not_empty(df)
    if not name or any(sep in name for sep in ("/", "\\")) or name.startswith("."):
        raise LabError(f"report name '{name}' must be a plain file name, e.g. name=report.")
    row_keys, col_keys = _keys(rows), _keys(cols)
    hue_keys = _keys(hue) if hue is not None else _default_hue(df)
    check_metric(df, metric)
    check_keys(df, row_keys + col_keys)
    check_keys(df, [x] if x else [], "x key")
    check_keys(df, hue_keys, "hue key")
    table = pivot(df, metric, row_keys, col_keys)
    fig = _plot(df, metric, x, hue_keys) if x else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    caption = (
        f"{metric} by {' x '.join(row_keys) or '-'} (rows) and "
        f"{' x '.join(col_keys) or '-'} (columns), mean over {len(df)} runs"
    )
    flat = _flat_pivot(table, row_keys, mean_row)
    written = _write_table(_Table(flat, table.columns.map(_fmt_key), caption), out, f"{name}_pivot")
    runs = runs_table(df, metric)
    metrics, _ = _column_groups(df)
    written += _write_table(
        _Table(runs, [c for c in runs.columns if c in metrics], f"all {len(df)} runs"),
        out,
        f"{name}_runs",
    )
    if fig is not None:
        written.append(
            _atomic_write(out / f"{name}_plot.png", lambda p: fig.savefig(p, format="png", dpi=150))
        )
    return written


def report(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    metric: str = "bleu",
    rows: Keys = ("model",),
    cols: Keys = ("search",),
    x: str | None = None,
    hue: Keys = None,
    name: str = "report",
    mean_row: bool = False,
) -> list[Path]:
    """Load the completed runs under ``paths`` and write the report files into ``out``."""
    df = load_runs(paths)
    if df.empty:
        shown = ", ".join(str(p) for p in _as_paths(paths))
        raise LabError(
            f"no completed runs under {shown}; pass run or sweep directories that "
            f"hold a {RESULTS_FILE} with status 'completed'."
        )
    return write_report(
        df, out, metric=metric, rows=rows, cols=cols, x=x, hue=hue, name=name, mean_row=mean_row
    )
