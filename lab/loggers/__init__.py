"""Run loggers: where an experiment's config, metrics and prediction samples get recorded.

Two loggers, chosen by name in the logger config:

* ``wandb``: a Weights & Biases run whose files live inside the experiment's run directory
  (``<run_dir>/wandb/offline-run-*`` or ``run-*``), so every run directory is self-contained
  and can be read back offline with :func:`lab.wandb_reader.read_run` or uploaded later with
  ``wandb sync``. It never needs an account: without credentials it runs offline.
* ``none``: records nothing, for quick local checks and tests.

The logger config is a dict ``{"name": "wandb" | "none", "mode": ..., "project": str,
"entity": str | None, "save_code": bool, "git": bool, "system_stats": bool}``. Modes:

* ``auto`` (or None, the default): ``WANDB_MODE`` if that is set, else online when W&B
  credentials are present (``WANDB_API_KEY`` or a netrc entry for the W&B host, checked
  without any network access), else offline;
* ``online``: always sync to the W&B server (needs credentials and network);
* ``offline``: write locally only;
* ``disabled``: W&B calls become no-ops and nothing is written.

A run is named after the Hydra overrides that made it (:mod:`lab.loggers.naming`), and says
once, in one line on the console, where W&B writes it and in which mode.

Mode resolution lives in :mod:`lab.loggers.mode`, W&B's start-up settings in
:mod:`lab.loggers.settings`, the logger interface and classes in :mod:`lab.loggers.runs`;
every name is importable from here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.loggers.mode import DEFAULT_BASE_URL, MODES, resolve_mode, wandb_logged_in
from lab.loggers.naming import hydra_swept_overrides, hydra_task_overrides, run_name
from lab.loggers.runs import STEP_METRIC, TRAIN_JOB, NoneLogger, RunLogger, WandbLogger
from lab.loggers.settings import SWITCHES, wandb_settings

__all__ = [
    "DEFAULT_BASE_URL",
    "LOGGERS",
    "MODES",
    "STEP_METRIC",
    "SWITCHES",
    "TRAIN_JOB",
    "NoneLogger",
    "RunLogger",
    "WandbLogger",
    "open_logger",
    "resolve_mode",
    "run_name",
    "wandb_logged_in",
    "where_line",
]

LOGGERS = ("wandb", "none")


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
    folder there. ``group``/``job_type``/``tags`` label the run: a sweep's runs share a group
    (the experiment's name, else the sweep folder's), and the job type is ``train`` for a run
    that trains the model it decodes, ``decode`` for one that only decodes. Inside a Hydra job
    the run is named after the job's overrides, ``name`` being the name of a run without any
    (:func:`lab.loggers.naming.run_name`). ``config`` is the experiment config to record.
    """
    logger_name = cfg.get("name", "none")
    if logger_name not in LOGGERS:
        raise LabError(
            f"unknown logger {logger_name!r}; use one of: {', '.join(LOGGERS)} (e.g. logger=none)"
        )
    mode = resolve_mode(cfg.get("mode"))
    if logger_name == "none":
        return NoneLogger()

    settings = wandb_settings(cfg)
    os.environ.setdefault("WANDB_SILENT", "true")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)

    import wandb

    run = wandb.init(
        project=cfg.get("project") or None,
        entity=cfg.get("entity") or None,
        dir=str(run_dir),
        mode=mode,
        name=run_name(hydra_task_overrides(), name, hydra_swept_overrides()),
        group=group,
        job_type=job_type,
        tags=list(tags),
        config=_plain(config),
        settings=settings,
    )
    logger = WandbLogger(run, mode, job_type)
    print(where_line(logger), flush=True)
    return logger


def where_line(logger: WandbLogger) -> str:
    """One console line: the run's mode and where W&B writes it (and how to upload it)."""
    if logger.mode == "disabled":
        return "wandb: disabled; this run is not recorded"
    folder = logger.offline_dir
    if logger.mode == "online":
        return f"wandb: online run {logger.url} (local files in {folder})"
    return f"wandb: offline run in {folder}; sync with: wandb sync {folder}"
