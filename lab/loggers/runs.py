"""The run logger interface and its two implementations, ``NoneLogger`` and ``WandbLogger``.

:class:`RunLogger` is what experiment code may call; :func:`lab.loggers.open_logger` builds
one of the two loggers from the logger config. Kept apart from ``open_logger`` so that the
interface and the loggers' behaviour can be read without W&B's start-up settings.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

FINISH_WAIT_SECONDS = 30.0

log = logging.getLogger(__name__)


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

    def __init__(self, run: Any, mode: str) -> None:
        self._run = run
        self.mode = mode
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
