"""``reports/dashboard/``: its run summaries and the page, rebuilt.

``dashboard/runs/`` holds one ``results.json`` per row of the multi30k and beam_curse runs
tables (written by ``reports/dashboard/summarise_runs.py``'s row rule from the rebuilt tables),
three search_errors runs and the first sentences of four runs' predictions (both kept as
committed: their run directories are not in git). ``dashboard.html`` is ``lab report --html``
on those summaries, with the options reports/README.md quotes. ``dashboard.png`` is a Chromium
screenshot (``screenshot.py``) and is not rebuilt.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from lab.io import atomic_write_text
from lab.rebuild.derived import load_script
from lab.report.html import dashboard

OPTIONS = {
    "metrics": ("bleu", "len_ratio", "mean_logprob"),
    "cols": ("model",),
    "rows": ("experiment_name", "search", "search.penalty", "search.alpha", "search.beam_size"),
    "x": "search.beam_size",
    "hue": ("experiment_name", "model", "search", "search.penalty", "search.alpha"),
    "name": "dashboard",
}
KEPT = ("predictions.jsonl",)  # per-run files copied as they are


def summaries(root: Path, out: Path) -> list[Path]:
    """``dashboard/runs/<experiment>/<run>/results.json`` from the rebuilt runs tables, and the
    committed predictions and search_errors summaries copied beside them."""
    script = load_script(root / "dashboard" / "summarise_runs.py")
    runs = out / "dashboard" / "runs"
    written = []
    for experiment, (table, first_metric) in script.TABLES.items():
        rebuilt = out / Path(table).relative_to("reports")
        for _, row in pd.read_csv(rebuilt).iterrows():
            text = script.results_text(script._from_row(experiment, row, first_metric))
            written.append(atomic_write_text(runs / experiment / row["run"] / "results.json", text))
    source = root / "dashboard" / "runs"
    for path in sorted(source.rglob("*")):
        target = runs / path.relative_to(source)
        kept = path.name in KEPT or path.relative_to(source).parts[0] in script.EXTRA
        if path.is_file() and kept and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return written


def page(out: Path) -> list[Path]:
    """``dashboard.html`` from the rebuilt ``dashboard/runs``."""
    return [dashboard([out / "dashboard" / "runs"], out / "dashboard", **OPTIONS)]
