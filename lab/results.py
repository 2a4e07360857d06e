"""Run results, the lab's database: the files in each run's own directory, written and read.

``predictions.jsonl`` first, ``results.json`` last, each atomically: a directory without a
``results.json`` whose status is ``completed`` is a run that did not finish (status ``failed``
or ``interrupted`` says why it stopped). Both files are strict JSON (no NaN or infinity): a
number that is not finite is an error, never a result.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lab.io import atomic_write_text

RESULTS = "results.json"
PREDICTIONS = "predictions.jsonl"
LOCK = ".lock"  # held by the run writing the directory
JOB = "job.json"  # a sweep job's outcome: {"sweep": id, "status": ..., "error": ...}
SWEEP_ENV = "LAB_SWEEP_ID"  # set by lab.callbacks.SweepSummary for the jobs of one sweep


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a run; the run directory records status ``interrupted``.

    A ``KeyboardInterrupt``, so that no ``except Exception`` on the way up swallows it. Its
    text is the one line the console gets and ``results.json`` keeps as ``error`` (training
    names the step it stopped at and the step its resumable state holds); ``exit_status`` is
    the shell's convention for a process ended by a signal, 128 + its number (130, 143).
    """

    def __init__(self, signum: int, message: str = "interrupted; rerun the same command") -> None:
        super().__init__(message)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum

    @classmethod
    def of(cls, e: KeyboardInterrupt) -> Interrupted:
        """``e`` as an ``Interrupted``: a plain ``KeyboardInterrupt`` is Python's SIGINT."""
        return e if isinstance(e, Interrupted) else cls(signal.SIGINT)


def write_json(path: Path, obj: Any) -> None:
    text = json.dumps(obj, indent=2, ensure_ascii=False, default=str, allow_nan=False)
    atomic_write_text(path, text + "\n")


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in rows)
    atomic_write_text(path, text)


def load_results(run_dir: Path) -> dict[str, Any]:
    """The parsed ``results.json`` of ``run_dir`` whatever its status; raises OSError/ValueError."""
    data = json.loads((Path(run_dir) / RESULTS).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{RESULTS} holds {type(data).__name__}, not an object")
    return data


def read_results(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``results.json`` if it is there and completed, else None."""
    try:
        res = load_results(run_dir)
    except (OSError, ValueError):
        return None
    return res if res.get("status") == "completed" else None


def read_predictions(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of the run's ``predictions.jsonl``, in order. A line that is not JSON raises
    ``json.JSONDecodeError`` whose line and column are the file's, not the line's own."""
    text = (Path(run_dir) / PREDICTIONS).read_text(encoding="utf-8")
    rows, start = [], 0
    for line in text.splitlines(keepends=True):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise json.JSONDecodeError(e.msg, text, start + e.pos) from None
        start += len(line)
    return rows


def sweep_outcomes(sweep_dir: Path, sweep: str) -> list[tuple[Path, dict[str, Any]]]:
    """The ``job.json`` outcomes that the jobs of sweep ``sweep`` left under ``sweep_dir``."""
    found = []
    for path in sorted(Path(sweep_dir).rglob(JOB)):
        try:
            job = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(job, dict) and job.get("sweep") == sweep:
            found.append((path.parent, job))
    return found


@contextmanager
def signals_handled(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM call ``handler``; the previous handlers are
    restored after it. A signal ignored when the process started (``nohup``, a background job
    of a script) stays ignored, and only the main thread can set handlers: elsewhere nothing
    changes."""
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            current = signal.getsignal(signum)
            if current is not signal.SIG_IGN:
                signal.signal(signum, handler)
                previous[signum] = signal.SIG_DFL if current is None else current
    try:
        yield
    finally:
        for signum, restored in previous.items():
            signal.signal(signum, restored)
