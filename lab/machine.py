"""Where a run reads and writes (data and cache directories) and what it computes on (torch
device and thread count): the settings that change no number but the thread count."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from omegaconf import DictConfig


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "decoding-lab"


def resolve_dirs(cfg: DictConfig) -> tuple[Path, Path]:
    cache = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_dir()
    data = Path(cfg.data_dir).expanduser() if cfg.data_dir else cache / "data"
    return data, cache


def setup_torch(cfg: DictConfig) -> torch.device:
    """Set the torch thread count (``threads``, else ``default_threads()``, under every
    launcher) and pick the device."""
    torch.set_num_threads(int(cfg.threads) or default_threads())
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def default_threads() -> int:
    """The torch threads of a job that does not set ``threads``: SLURM's CPUs for the task
    where SLURM allocated them, else one.

    torch's own default (one thread per core) spins threads on every core whether or not
    they are free: on 2 cores busy with other work (load 3-6), a training step of the
    quickstart model took 0.5-1.3 s with 1 thread and 1.7-8.3 s with 2 (the default
    Transformer: 3.7 s and 7.6 s), and decoding was ~50x slower in ``reports/throughput/``.
    A count read from the load would be no better: the thread count is part of the
    checkpoint cache key (``lab.model_cache``), so it must not change with what else the
    machine is doing.
    """
    return int(os.environ.get("SLURM_CPUS_PER_TASK") or 1)
