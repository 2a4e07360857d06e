"""Read W&B offline runs (``run-<id>.wandb``) back into plain Python data.

Offline runs store everything that was logged in one append-only transaction log; reading it
back locally lets us check a run, compare runs or build reports without an account or a
network. wandb itself reads the file (``wandb leet inspect --json``, in
:mod:`lab.wandb_reader.records`); :mod:`lab.wandb_reader.runs` finds a run's file and
assembles the run (config, history, summary, metric definitions, artifacts, tables) from its
records. Every public name is importable from here.
"""

from __future__ import annotations

from lab.wandb_reader.records import RunFileError, iter_records
from lab.wandb_reader.runs import find_run_file, read_run

__all__ = ["RunFileError", "find_run_file", "iter_records", "read_run"]
