"""The records of a W&B run file (``run-<id>.wandb``), as read by wandb itself.

Offline runs store everything that was logged in one append-only transaction log. wandb reads
it back with ``wandb leet inspect --json``, which prints one JSON object per record (the
record's protobuf in JSON form, with its ``type``); this module runs that command and turns
what it reports into Python values and one-line errors. With ``wait``, it follows the file
(``--follow``) until the run's exit record is written: ``run.finish()`` can return a moment
before W&B's service has written the run's last records.

No record framing is parsed here: the file format stays wandb's business.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lab.errors import LabError

INSPECT = ("leet", "inspect", "--json")
DAMAGED = "skipped corrupt data"  # what ``wandb leet inspect`` says of a damaged file


class RunFileError(LabError):
    """A ``.wandb`` file that is missing, not a W&B run file, or damaged."""


def iter_records(path: str | Path, *, wait: float = 0.0) -> Iterator[dict[str, Any]]:
    """Yield every record of the run file at ``path``, in write order, as a dict with
    ``num``, ``type`` and the record under its type (``{"type": "history", "history": ...}``).

    A record cut short at the end of the file (a run still writing, or killed mid-write) ends
    the records quietly. With ``wait`` > 0, waits until the file holds the run's exit record,
    or until it has gone ``wait`` seconds without a write. A file that is not a run file, or
    that is damaged, raises ``RunFileError``.
    """
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"no W&B run file at {path}; pass a run-<id>.wandb file or a run dir")
    args = [sys.executable, "-m", "wandb", *INSPECT]
    if wait > 0:
        args += ["--follow", "--idle-timeout", f"{max(1, round(wait))}s"]
    env = {**os.environ, "WANDB_ERROR_REPORTING": "false"}
    proc = subprocess.run(
        [*args, str(path)], capture_output=True, text=True, env=env, timeout=wait + 120
    )
    if proc.returncode != 0:
        raise RunFileError(f"{path} could not be read: {_reason(proc)}")
    if DAMAGED in proc.stderr:
        raise RunFileError(f"{path} is damaged: {_reason(proc)}")
    for line in proc.stdout.splitlines():
        if line.strip():
            yield json.loads(line)


def _reason(proc: subprocess.CompletedProcess[str]) -> str:
    """The last line wandb wrote to stderr, or a hint when this wandb cannot read run files."""
    lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    if any("No such command" in line for line in lines):
        return (
            "this wandb release has no `wandb leet inspect`; install a newer one "
            "(pip install -U wandb)"
        )
    reason = lines[-1] if lines else f"wandb exited with status {proc.returncode}"
    return reason.removeprefix("Error: ").removeprefix("wandb leet inspect: ")
