"""Run outputs, the lab's database: atomic files in each run's own directory.

``predictions.jsonl`` first, ``results.json`` last: a directory without a completed
``results.json`` is a run that did not finish.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lab.errors import LabError

RESULTS = "results.json"
PREDICTIONS = "predictions.jsonl"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and a rename: readers never see half."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise LabError(
            f"cannot write to {path.parent}: {e.strerror}; "
            "choose a writable directory (hydra.run.dir=... or cache_dir=...)."
        ) from e
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; run outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_results(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``results.json`` if it is there and completed, else None."""
    path = Path(run_dir) / RESULTS
    try:
        res = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return res if res.get("status") == "completed" else None


def check_writable(directory: Path, what: str, key: str) -> None:
    """Fail early with one line when ``directory`` cannot be written."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe"):
            pass
    except OSError as e:
        raise LabError(
            f"the {what} {directory} is not writable ({e.strerror}); "
            f"set {key}=<a writable directory>."
        ) from e
