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
"""

from __future__ import annotations

import logging
import netrc
import os
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable
from urllib.parse import urlsplit

from lab.errors import LabError

LOGGERS = ("wandb", "none")
MODES = ("auto", "online", "offline", "disabled")

DEFAULT_BASE_URL = "https://api.wandb.ai"
FINISH_WAIT_SECONDS = 30.0

log = logging.getLogger(__name__)

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


@runtime_checkable
class RunLogger(Protocol):
    """What experiment code may call on a run logger.

    Use it as a context manager so the run is always finished: ``with open_logger(...) as lg``
    finishes with exit code 0, or 1 when an exception escapes the block (the exception still
    propagates).
    """

    @property
    def id(self) -> str | None:
        """The run id, or None when nothing is recorded."""
        ...

    @property
    def url(self) -> str | None:
        """The run's web page, for online runs only."""
        ...

    @property
    def offline_dir(self) -> Path | None:
        """The local W&B run folder (``.../wandb/offline-run-*``), or None."""
        ...

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Record one row of metrics, at ``step`` if given (steps must not decrease)."""
        ...

    def summary(self, metrics: dict[str, Any]) -> None:
        """Store final metrics in the run summary (what run tables and comparisons show)."""
        ...

    def log_table(
        self, name: str, columns: list[str], rows: list[list[Any]], step: int | None = None
    ) -> None:
        """Record a table, e.g. a sample of inputs, references and predictions."""
        ...

    def finish(self, exit_code: int = 0) -> None:
        """Close the run; a non-zero ``exit_code`` marks it failed. Safe to call twice."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class _ContextLogger:
    """Context-manager behaviour shared by the loggers."""

    def finish(self, exit_code: int = 0) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish(exit_code=0 if exc_type is None else 1)


class NoneLogger(_ContextLogger):
    """A logger that records nothing and writes no files."""

    id: str | None = None
    url: str | None = None
    offline_dir: Path | None = None
    mode = "none"

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Ignore the metrics."""

    def summary(self, metrics: dict[str, Any]) -> None:
        """Ignore the metrics."""

    def log_table(
        self, name: str, columns: list[str], rows: list[list[Any]], step: int | None = None
    ) -> None:
        """Ignore the table."""

    def finish(self, exit_code: int = 0) -> None:
        """Nothing to close."""


class WandbLogger(_ContextLogger):
    """A logger backed by one W&B run (see :func:`open_logger`)."""

    def __init__(self, run: Any, mode: str, init_seconds: float) -> None:
        self._run = run
        self.mode = mode
        self.init_seconds = init_seconds
        self._finished = False

    @property
    def run(self) -> Any:
        """The underlying ``wandb`` run, for anything this interface does not cover."""
        return self._run

    @property
    def id(self) -> str | None:
        """The W&B run id (also the ``<id>`` in ``run-<id>.wandb``)."""
        return None if self.mode == "disabled" else self._run.id

    @property
    def url(self) -> str | None:
        """The run page on the W&B server; None offline or disabled."""
        return self._run.url if self.mode == "online" else None

    @property
    def offline_dir(self) -> Path | None:
        """The local run folder holding ``run-<id>.wandb`` and ``files/``; None if disabled."""
        if self.mode == "disabled":
            return None
        return Path(self._run.dir).parent

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Record one row of metrics in the run history."""
        self._run.log(dict(metrics), step=step)

    def summary(self, metrics: dict[str, Any]) -> None:
        """Merge ``metrics`` into the run summary."""
        self._run.summary.update(dict(metrics))

    def log_table(
        self, name: str, columns: list[str], rows: list[list[Any]], step: int | None = None
    ) -> None:
        """Record ``rows`` as a ``wandb.Table`` under ``name``."""
        import wandb

        table = wandb.Table(columns=list(columns), data=[list(row) for row in rows])
        self._run.log({name: table}, step=step)

    def finish(self, exit_code: int = 0) -> None:
        """Finish the run once, recording ``exit_code``."""
        if self._finished:
            return
        self._finished = True
        self._run.finish(exit_code=exit_code)
        # wandb's background process may still be flushing the run file; wait so that the
        # run directory is complete (readable, copyable) once finish() returns.
        run_file = self.run_file
        if run_file is not None and run_file.is_file():
            from lab.wandb_reader import wait_until_finished

            if not wait_until_finished(run_file, timeout=FINISH_WAIT_SECONDS):
                log.warning("W&B run file %s was not complete after finishing", run_file)

    @property
    def run_file(self) -> Path | None:
        """The run's ``run-<id>.wandb`` file (read it with ``lab.wandb_reader``), or None."""
        offline_dir = self.offline_dir
        return None if offline_dir is None else offline_dir / f"run-{self._run.id}.wandb"


def wandb_logged_in() -> bool:
    """Whether W&B credentials are available locally (no network access).

    True when ``WANDB_API_KEY`` is set or the netrc file (``$NETRC``, ``~/.netrc`` or
    ``~/_netrc``) has a password for the W&B host (``WANDB_BASE_URL``, default api.wandb.ai).
    """
    if os.environ.get("WANDB_API_KEY", "").strip():
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL).netloc
    if not host:
        return False
    candidates = (
        [Path(os.environ["NETRC"]).expanduser()]
        if os.environ.get("NETRC")
        else [Path("~/.netrc").expanduser(), Path("~/_netrc").expanduser()]
    )
    for path in candidates:
        if not path.is_file():
            continue
        try:
            creds = netrc.netrc(str(path)).authenticators(host)
        except (netrc.NetrcParseError, OSError):
            return False
        return bool(creds and creds[2])
    return False


def resolve_mode(mode: str | None) -> str:
    """Turn the configured mode into ``online``, ``offline`` or ``disabled``."""
    if mode is None:
        mode = "auto"
    if not isinstance(mode, str) or mode not in MODES:
        raise LabError(
            f"unknown logger mode {mode!r}; use one of: {', '.join(MODES)} "
            "(e.g. logger.mode=offline)"
        )
    if mode != "auto":
        return mode
    env_mode = {"dryrun": "offline", "run": "online"}.get(
        os.environ.get("WANDB_MODE", ""), os.environ.get("WANDB_MODE", "")
    )
    if env_mode in ("online", "offline", "disabled"):
        return env_mode
    return "online" if wandb_logged_in() else "offline"


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
    start = time.perf_counter()
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
    return WandbLogger(run, mode, time.perf_counter() - start)
