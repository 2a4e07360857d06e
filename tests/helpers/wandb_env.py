"""W&B in tests: the offline logger config, and an environment that keeps W&B offline, silent,
inside a temporary directory and away from any credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

WANDB_CFG = {"name": "wandb", "mode": "offline", "project": "decoding-lab-test", "entity": None}


def isolate_wandb(mp: pytest.MonkeyPatch, root: Path) -> None:
    """Keep W&B offline, silent and inside ``root``; make sure no credentials are found."""
    for var in ("WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_MODE", "WANDB_ENTITY"):
        mp.delenv(var, raising=False)
    mp.setenv("NETRC", str(root / "no-netrc"))
    mp.setenv("WANDB_MODE", "offline")
    mp.setenv("WANDB_SILENT", "true")
    for var, sub in (
        ("WANDB_DIR", "wandb-dir"),
        ("WANDB_CACHE_DIR", "cache"),
        ("WANDB_DATA_DIR", "data"),
        ("WANDB_CONFIG_DIR", "config"),
        ("WANDB_ARTIFACT_DIR", "artifacts"),
    ):
        mp.setenv(var, str(root / sub))
