"""Read W&B offline run files (``run-<id>.wandb``) back into plain Python data.

Offline runs store everything that was logged in one append-only binary file; reading it back
locally lets us check a run, compare runs or build reports without an account or a network.
Two layers: :mod:`lab.wandb_reader.records` decodes the file's record framing (and tells when a
run has finished writing), :mod:`lab.wandb_reader.runs` finds a run's file and assembles the
run (config, history, summary, tables) from its records. Every public name is importable from
here.
"""

from __future__ import annotations

from lab.wandb_reader.records import (
    BLOCK_SIZE,
    CHUNK_HEADER_SIZE,
    FIRST,
    FULL,
    HEADER_SIZE,
    IDENT,
    LAST,
    MAGIC,
    MIDDLE,
    VERSION,
    RunFileError,
    is_finished,
    iter_records,
    wait_until_finished,
)
from lab.wandb_reader.runs import find_run_file, read_run

__all__ = [
    "BLOCK_SIZE",
    "CHUNK_HEADER_SIZE",
    "FIRST",
    "FULL",
    "HEADER_SIZE",
    "IDENT",
    "LAST",
    "MAGIC",
    "MIDDLE",
    "VERSION",
    "RunFileError",
    "find_run_file",
    "is_finished",
    "iter_records",
    "read_run",
    "wait_until_finished",
]
