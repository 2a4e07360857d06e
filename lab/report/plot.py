"""Plot one metric against a numeric key, one line per hue value (say, per model/search).

A point pools the runs of one hue value at one x, under the pivot's rule
(``lab.report.pooling``): runs that differ only in their seed give the mean with an error bar
of ±1 std; runs that differ in another setting are refused (add it to the hue). The x axis is
logarithmic (base 2) for a beam size, or any positive key spanning more than a factor of 8,
with a tick at each value; both axes are labelled.

The figure is drawn on matplotlib's Agg canvas directly, without ``pyplot``: no global figure
state, no GUI backend, safe in sweeps and tests.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from lab.errors import LabError
from lab.report.checks import numeric_columns
from lab.report.pooling import aggregate, check_pooled, groups
from lab.report.render import fmt_key

LOG_SPAN = 8  # a positive x spanning more than this factor is drawn on a log axis
_SIZE_KEYS = ("beam_size",)


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


def log2_x(x: str, values: pd.Series) -> bool:
    """True when ``x`` (a key) with these values is best drawn on a base-2 log axis."""
    values = values.dropna()
    if values.empty or (values <= 0).any():
        return False
    is_size = x.rsplit(".", 1)[-1] in _SIZE_KEYS
    return is_size or bool(values.max() / values.min() > LOG_SPAN)


def _x_axis(ax: Axes, x: str, values: pd.Series) -> None:
    ax.set_xlabel(x)
    if log2_x(x, values):
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(sorted(values.dropna().unique())))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_key(float(v))))
        ax.xaxis.set_minor_locator(NullLocator())


def plot(df: pd.DataFrame, metric: str, x: str, hue: list[str]) -> Figure:
    """``metric`` against ``x``, one line per ``hue`` value; a point over several seeds is
    their mean with a ±1 std error bar. Raises ``LabError`` for a point that would pool runs
    differing in a setting other than the seed."""
    frame = df.assign(__x=_numeric_x(df, x), __y=pd.to_numeric(df[metric], errors="coerce"))
    frame = frame.dropna(subset=["__x", "__y"])
    check_pooled(frame, [*hue, x], "--hue", "--hue", hue, unit="point")
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    pooled = False
    for label, group in groups(frame, hue):
        points = aggregate(group, ["__x"], "__y").sort_index()
        pooled |= bool((points["n"] > 1).any())
        yerr = points["std"].where(points["n"] > 1, 0.0).fillna(0.0)
        ax.errorbar(
            points.index.to_numpy(dtype=float),
            points["mean"].to_numpy(),
            yerr=yerr.to_numpy() if (points["n"] > 1).any() else None,
            marker="o",
            capsize=3,
            label=fmt_key(label) if hue else metric,
        )
    _x_axis(ax, x, frame["__x"])
    ax.set_ylabel(f"{metric} (mean ± std over seeds)" if pooled else metric)
    tasks = df["task"].dropna().unique()
    ax.set_title(f"{metric} vs {x}" + (f" ({tasks[0]})" if len(tasks) == 1 else ""))
    ax.grid(alpha=0.3)
    ax.legend(title=" / ".join(hue) if hue else None, fontsize="small")
    return fig
