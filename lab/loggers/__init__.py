"""Run loggers: where an experiment's config, metrics and prediction samples get recorded.

Two loggers, chosen by name in the logger config:

* ``wandb``: a Weights & Biases run whose files live inside the experiment's run directory
  (``<run_dir>/wandb/offline-run-*`` or ``run-*``), so every run directory is self-contained
  and can be read back offline with :func:`lab.wandb_reader.read_run` or uploaded later with
  ``wandb sync``. It never needs an account: without credentials it runs offline.
* ``none``: records nothing, for quick local checks and tests.

The logger config is a dict ``{"name": "wandb" | "none", "mode": ..., "project": str,
"entity": str | None}``. Modes:

* ``auto`` (or None, the default): ``WANDB_MODE`` if that is set, else online when W&B
  credentials are present (``WANDB_API_KEY`` or a netrc entry for the W&B host, checked
  without any network access), else offline;
* ``online``: always sync to the W&B server (needs credentials and network);
* ``offline``: write locally only;
* ``disabled``: W&B calls become no-ops and nothing is written.

Mode resolution lives in :mod:`lab.loggers.mode`, the logger interface and classes in
:mod:`lab.loggers.runs`; every name is importable from here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.loggers.mode import DEFAULT_BASE_URL, MODES, resolve_mode, wandb_logged_in
from lab.loggers.runs import FINISH_WAIT_SECONDS, NoneLogger, RunLogger, WandbLogger

__all__ = [
    "DEFAULT_BASE_URL",
    "FINISH_WAIT_SECONDS",
    "LOGGERS",
    "MODES",
    "NoneLogger",
    "RunLogger",
    "WandbLogger",
    "open_logger",
    "resolve_mode",
    "wandb_logged_in",
]

LOGGERS = ("wandb", "none")

# Settings that keep ``wandb.init`` fast and quiet: no console capture, no system metrics
# sampler, no git/code/requirements snapshots, no job artifact. A setting missing from the
# installed wandb release is skipped rather than rejected.
_FAST_SETTINGS: dict[str, Any] = {
    "silent": True,
    "quiet": True,
    "console": "off",
    "disable_git": True,
    "disable_code": True,
    "save_code": False,
    "disable_job_creation": True,
    "x_disable_stats": True,
    "x_disable_meta": True,
    "x_disable_machine_info": True,
    "x_save_requirements": False,
    # Every logger owns its own run, even if another run is still open in this process.
    "reinit": "create_new",
}


def _settings_kwargs(settings_cls: type) -> dict[str, Any]:
    """The subset of ``_FAST_SETTINGS`` that the installed wandb knows."""
    fields = getattr(settings_cls, "model_fields", None)
    known = set(fields) if fields is not None else set(dir(settings_cls))
    return {key: value for key, value in _FAST_SETTINGS.items() if key in known}


def _plain(config: Any) -> dict[str, Any]:
    """A plain-dict copy of ``config`` (resolving an OmegaConf/Hydra config if given one)."""
    if config is None:
        return {}
    if type(config).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(config, resolve=True)  # type: ignore[return-value]
    return dict(config)


def open_logger(
    cfg: dict[str, Any],
    *,
    run_dir: Path,
    name: str,
    group: str | None,
    job_type: str,
    tags: list[str],
    config: dict[str, Any] | None = None,
) -> RunLogger:
    """Start a run logger as described by the logger config ``cfg``.

    ``run_dir`` is the experiment's output directory (created if needed); W&B writes its
    folder there. ``name``/``group``/``job_type``/``tags`` label the run (a sweep's runs share
    a group; job_type tells e.g. ``train`` from ``eval``). ``config`` is the experiment config
    to record with the run.
    """
    logger_name = cfg.get("name", "none")
    if logger_name not in LOGGERS:
        raise LabError(
            f"unknown logger {logger_name!r}; use one of: {', '.join(LOGGERS)} (e.g. logger=none)"
        )
    mode = resolve_mode(cfg.get("mode"))
    if logger_name == "none":
        return NoneLogger()

    os.environ.setdefault("WANDB_SILENT", "true")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)

    import wandb

    settings = wandb.Settings(**_settings_kwargs(wandb.Settings))
    run = wandb.init(
        project=cfg.get("project") or None,
        entity=cfg.get("entity") or None,
        dir=str(run_dir),
        mode=mode,
        name=name,
        group=group,
        job_type=job_type,
        tags=list(tags),
        config=_plain(config),
        settings=settings,
    )
    return WandbLogger(run, mode)
