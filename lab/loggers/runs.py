"""The run logger interface and its two implementations, ``NoneLogger`` and ``WandbLogger``.

:class:`RunLogger` is what experiment code may call; :func:`lab.loggers.open_logger` builds
one of the two loggers from the logger config. Kept apart from ``open_logger`` so that the
interface and the loggers' behaviour can be read without W&B's start-up settings.

How a W&B run is laid out, as W&B's own charts and tables expect it:

* rows logged with a ``step`` are training curves: the step is logged as ``train/step`` and
  every ``train/*`` and ``valid/*`` metric is charted against it (``define_metric``); the
  summary keeps the lowest validation loss and perplexity (the trainer keeps the weights of
  the best validation, so that is the model that decodes);
* decode metrics are one number per run and go straight into the run summary, which is what
  W&B's runs table, parallel coordinates and scatter plots read; text metrics such as the
  sacreBLEU signatures go there too, next to the scores they qualify;
* tables keep numbers as numbers, so a table column can be sorted and plotted;
* the decoded checkpoint is a ``model`` artifact (:mod:`lab.loggers.checkpoints`): the
  output of the run that trained it, an input of every run that decodes with it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from lab.loggers.checkpoints import checkpoint_artifact

STEP_METRIC = "train/step"
STEP_CHARTED = ("train/*", "valid/*")  # metrics charted against STEP_METRIC
LOWEST_IS_BEST = ("valid/loss", "valid/ppl")  # summarized by their minimum
TRAIN_JOB = "train"  # the job type of a run that trains the checkpoint it decodes


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
        """Record one row of metrics; ``step`` is the training step, when there is one."""
        ...

    def summary(self, metrics: dict[str, Any]) -> None:
        """Store final metrics in the run summary (what run tables and comparisons show):
        numbers and text (such as metric signatures); other values are left out."""
        ...

    def log_table(
        self, name: str, columns: list[str], rows: list[list[Any]], step: int | None = None
    ) -> None:
        """Record a table, e.g. a sample of inputs, references and predictions."""
        ...

    def checkpoint(self, path: Path, model: str) -> None:
        """Record the model checkpoint file at ``path`` (of architecture ``model``) as the
        run's output when the run trained it, else as its input; nothing if not a file."""
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

    def checkpoint(self, path: Path, model: str) -> None:
        """Ignore the checkpoint."""

    def finish(self, exit_code: int = 0) -> None:
        """Nothing to close."""


class WandbLogger(_ContextLogger):
    """A logger backed by one W&B run (see :func:`open_logger`)."""

    def __init__(self, run: Any, mode: str, job_type: str | None = None) -> None:
        self._run = run
        self.mode = mode
        self.job_type = job_type
        self._finished = False
        run.define_metric(STEP_METRIC)
        for pattern in STEP_CHARTED:
            run.define_metric(pattern, step_metric=STEP_METRIC)
        for name in LOWEST_IS_BEST:
            run.define_metric(name, step_metric=STEP_METRIC, summary="min")

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
        """Record one row of metrics; a ``step`` is logged as ``train/step``, the x axis of
        the training curves (W&B's own ``_step`` just counts rows)."""
        row = dict(metrics)
        if step is not None:
            row[STEP_METRIC] = step
        self._run.log(row)

    def summary(self, metrics: dict[str, Any]) -> None:
        """Merge the numbers and text of ``metrics`` into the run summary."""
        kept = {k: v for k, v in metrics.items() if isinstance(v, int | float | str)}
        self._run.summary.update(kept)

    def log_table(
        self, name: str, columns: list[str], rows: list[list[Any]], step: int | None = None
    ) -> None:
        """Record ``rows`` as a ``wandb.Table`` under ``name``: a column of numbers stays
        numeric (sortable, plottable), any other column becomes text."""
        import wandb

        table = wandb.Table(columns=list(columns), data=table_cells(len(columns), rows))
        row: dict[str, Any] = {name: table}
        if step is not None:
            row[STEP_METRIC] = step
        self._run.log(row)

    def checkpoint(self, path: Path, model: str) -> None:
        """Log the checkpoint as a ``model`` artifact: the output of a ``train`` run, the
        input (``use_artifact``) of any other, so W&B's lineage links the two.

        Offline, W&B refuses ``use_artifact``; the run then writes the record that
        ``use_artifact`` writes online for a new artifact (logged, then used after commit),
        which ``wandb sync`` replays into the same lineage. That goes through wandb's private
        ``Run._log_artifact`` (what ``use_artifact`` itself calls), the one private call here.
        """
        path = Path(path)
        if self.mode == "disabled" or not path.is_file():
            return
        artifact = checkpoint_artifact(path, model)
        if self.job_type == TRAIN_JOB:
            self._run.log_artifact(artifact)
        elif self.mode == "online":
            self._run.use_artifact(artifact)
        else:
            self._run._log_artifact(artifact, use_after_commit=True)

    def finish(self, exit_code: int = 0) -> None:
        """Finish the run once, recording ``exit_code``.

        W&B's service may write the run file's last records a moment after this returns;
        :func:`lab.wandb_reader.read_run` waits for them.
        """
        if self._finished:
            return
        self._finished = True
        self._run.finish(exit_code=exit_code)

    @property
    def run_file(self) -> Path | None:
        """The run's ``run-<id>.wandb`` file (read it with ``lab.wandb_reader``), or None."""
        offline_dir = self.offline_dir
        return None if offline_dir is None else offline_dir / f"run-{self._run.id}.wandb"


def table_cells(width: int, rows: list[list[Any]]) -> list[list[Any]]:
    """``rows`` with each column made one type: numbers when every value of the column is an
    int or float (or None; an infinite or NaN float becomes None, which JSON cannot hold),
    else text (lists and dicts as JSON)."""
    rows = [list(row) for row in rows]
    for row in rows:
        if len(row) != width:
            raise ValueError(f"table row has {len(row)} cells, the table has {width} columns")
    for j in range(width):
        numeric = all(_numeric(row[j]) or row[j] is None for row in rows)
        for row in rows:
            row[j] = _number(row[j]) if numeric else _text(row[j])
    return rows


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: int | float | None) -> int | float | None:
    return value if value is None or math.isfinite(value) else None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)
