"""A run's files in its directory, written so that a completed run is never lost to a rerun.

``predictions.jsonl`` and ``results.json`` are first written beside their final names
(``*.next``), then renamed into place, predictions first and results last: until the new run
completes, the directory holds the old one whole. A forced rerun over a completed run composes
its Hydra config into ``.hydra.next`` (``lab.app.hydra_subdir``), which replaces ``.hydra``
only when the run completes and is removed when it fails.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from lab.results import PREDICTIONS, RESULTS, write_json, write_jsonl

NEXT = ".next"
HYDRA, HYDRA_NEXT = ".hydra", ".hydra.next"


def write_run(run_dir: Path, predictions: list[dict[str, Any]], results: dict[str, Any]) -> None:
    """Replace the run's predictions and results by these (both staged, results last)."""
    staged_preds = run_dir / (PREDICTIONS + NEXT)
    staged_results = run_dir / (RESULTS + NEXT)
    write_jsonl(staged_preds, predictions)
    write_json(staged_results, results)
    os.replace(staged_preds, run_dir / PREDICTIONS)
    os.replace(staged_results, run_dir / RESULTS)
    promote_staged_config(run_dir)


def promote_staged_config(run_dir: Path) -> None:
    """``.hydra.next`` (the config of a forced rerun, now completed) becomes ``.hydra``."""
    staged = run_dir / HYDRA_NEXT
    if not staged.is_dir():
        return
    old = run_dir / HYDRA
    if old.is_dir():
        shutil.rmtree(old)
    os.replace(staged, old)


def discard_staged_files(run_dir: Path) -> None:
    """Remove what a failed forced rerun staged: the completed run stays as it was."""
    shutil.rmtree(run_dir / HYDRA_NEXT, ignore_errors=True)
    for name in (PREDICTIONS, RESULTS):
        (run_dir / (name + NEXT)).unlink(missing_ok=True)
