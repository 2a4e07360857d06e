"""Running ``lab`` as a real process in a test: the tiny run's overrides, a hermetic
environment (W&B offline, no network, every file under a temporary directory), the subprocess
helper and its check. The fixtures built on them (``root``, ``cache``, ``trained``) are in
``tests/conftest.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

# A Transformer small enough to train in seconds; 10 test sentences decoded.
TINY_RUN = {
    "model.d_model": "32",
    "model.d_ff": "64",
    "model.n_heads": "2",
    "model.enc_layers": "1",
    "model.dec_layers": "1",
    "train.max_steps": "30",
    "train.max_epochs": "0",
    "task.n_train": "500",
    "task.n_valid": "50",
    "task.n_test": "20",
    "task.tokenizer.vocab_size": "200",
    "eval.limit": "10",
    "logger": "none",
    "threads": "1",  # torch's default (one per core) crawls on a machine shared with other jobs
}

# metrics that measure the machine, not the search: they differ between identical runs
TIMING_METRICS = {"decode_seconds", "sent_per_s", "tok_per_s"}

# variables of the calling shell that would change what a ``lab`` process does
FOREIGN_ENV = ("WANDB_", "LAB_", "RAY_", "SLURM_")


def tiny(**changes: object) -> list[str]:
    """The tiny config as overrides. ``changes`` use ``__`` for dots
    (``train__max_steps=150``); a value of None drops that override (the config's default)."""
    cfg = dict(TINY_RUN)
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = str(value)
    return [f"{k}={v}" for k, v in cfg.items()]


def lab_env(root: Path, cache: Path, **extra: str) -> dict[str, str]:
    """An environment that keeps every file a run writes under ``root``: checkpoints in
    ``cache``, W&B offline and quiet, no downloads; ``extra`` adds or replaces variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV)}
    env.update(
        LAB_CACHE_DIR=str(cache),
        LAB_DATA_DIR=str(root / "data"),
        LAB_OFFLINE="1",
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        XDG_CACHE_HOME=str(root / "xdg-cache"),
        MPLCONFIGDIR=str(root / "mpl"),
    )
    env.update(extra)
    return env


def lab(
    args: list[str],
    root: Path,
    cache: Path,
    *,
    python: str = sys.executable,
    timeout: float = 600,
    **extra: str,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m lab.cli ARGS`` in ``root`` (environment: ``lab_env``) and wait for it."""
    return subprocess.run(
        [python, "-m", "lab.cli", *args],
        cwd=root,
        env=lab_env(root, cache, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """``proc``, after failing the test with its output's tail if it did not exit 0."""
    tail = f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, f"rc={proc.returncode}\n{tail}"
    return proc


def lab_here(args: list[str], capsys: Any) -> tuple[int, str, str]:
    """``lab ARGS`` in this process (``capsys``: pytest's fixture): (exit status, stdout,
    stderr)."""
    from lab.cli import main as cli_main

    status = 0
    try:
        cli_main(args)
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    return status, *capsys.readouterr()
