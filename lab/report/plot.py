"""Plot one metric against a numeric key, one line per hue value (say, per model/search).

The figure is drawn on matplotlib's Agg canvas directly, without ``pyplot``: no global figure
state, no GUI backend, safe in sweeps and tests.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lab.errors import LabError
from lab.report.checks import numeric_columns
from lab.report.render import fmt_key


def default_hue(df: pd.DataFrame) -> list[str]:
    """One line per model/search, and per task too when the runs span several tasks."""
    hue = ["model", "search"]
    return ["task", *hue] if df["task"].nunique() > 1 else hue


def _numeric_x(df: pd.DataFrame, x: str) -> pd.Series:
    """Column ``x`` as numbers; a ``LabError`` naming numeric keys when it holds none."""
    xs = pd.to_numeric(df[x], errors="coerce")
    if xs.isna().all():
        numeric = [
            c for c in numeric_columns(df) if c not in df.attrs.get("columns", {}).get("metric", [])
        ]
        raise LabError(
            f"x key '{x}' is not numeric; choose a numeric key such as: "
            f"{', '.join(numeric) or 'search.beam_size'}."
        )
    return xs


def plot(df: pd.DataFrame, metric: str, x: str, hue: list[str]) -> Figure:
    """``metric`` (mean over runs at each ``x``) against ``x``, one line per ``hue`` value."""
    xs = _numeric_x(df, x)
    frame = df[hue].copy()
    frame["__x"], frame["__y"] = xs, df[metric]
    frame = frame.dropna(subset=["__x", "__y"])
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    groups = frame.groupby(hue, dropna=False, sort=True) if hue else [((metric,), frame)]
    for label, group in groups:
        line = group.groupby("__x")["__y"].mean().sort_index()
        ax.plot(line.index, line.to_numpy(), marker="o", label=fmt_key(label))
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    tasks = df["task"].dropna().unique()
    ax.set_title(f"{metric} vs {x}" + (f" ({tasks[0]})" if len(tasks) == 1 else ""))
    ax.grid(alpha=0.3)
    ax.legend(title=" / ".join(hue) if hue else None, fontsize="small")
    return fig
