"""``<set>_context.md``: what a reader needs beside a section's figures, from its summaries.

One row per model, search, copy decoder, beam size and penalty of a set of runs: how many
runs, the model's parameters (``train.params``, where the summary records it), the torch
threads (where they vary within the set, else as the section says) and the decode time per
sentence: each run's ``decode_seconds`` over its ``cost_sentences``, as the median and range
over the row's runs.
Wall times on a shared 2-core machine: compare them within a table, not across sections.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lab.io import atomic_write_text
from lab.report import load_runs
from lab.report.render import Table

GROUP = ("model", "search", "model.copy", "search.beam_size", "search.penalty", "threads")
NOT_RECORDED = "not recorded"


def _params(values: pd.Series) -> str:
    known = values.dropna()
    if known.empty:
        return NOT_RECORDED
    low, high = int(known.min()), int(known.max())
    return f"{low:,}" if low == high else f"{low:,}-{high:,}"


def _ms(values: pd.Series) -> str:
    low, mid, high = values.min(), values.median(), values.max()
    return f"{mid:.1f}" if low == high else f"{mid:.1f} ({low:.1f}-{high:.1f})"


def context_table(runs_dir: Path, label: str) -> Table:
    """The context rows of the runs under ``runs_dir``, captioned as ``label``."""
    df = load_runs(runs_dir)
    df["ms"] = 1000 * df["decode_seconds"] / df["cost_sentences"]
    keys = [k for k in GROUP if k in df]
    rows = []
    for key, group in df.groupby(keys, dropna=False, sort=True):
        values = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        params = group["train.params"] if "train.params" in group else pd.Series(dtype=float)
        rows.append(
            {
                **values,
                "runs": len(group),
                "parameters": _params(params),
                "decode ms / sentence": _ms(group["ms"]),
            }
        )
    frame = pd.DataFrame(rows)
    caption = (
        f"{len(df)} runs of {label}: parameters (train.params), decode wall time per "
        "sentence (decode_seconds / cost_sentences: median (min-max) over the runs)"
    )
    return Table(frame, ("runs",), caption, counts=("runs",))


def contexts(root: Path, out: Path, sets: dict[str, str]) -> list[Path]:
    """``<out>/<file>`` for each ``file -> runs dir`` of ``sets`` (relative to ``root``)."""
    return [
        atomic_write_text(
            out / name,
            context_table(root / runs, Path(name).stem.removesuffix("_context")).markdown() + "\n",
        )
        for name, runs in sets.items()
    ]
