"""Hydra callbacks, added to a run or sweep without changing any run's config.

* :class:`JobTimer` writes ``<run dir>/job_timing.json`` (launcher, process id, torch threads,
  start and end of the job inside its process);
  ``lab run -m ... +hydra.callbacks.timer._target_=lab.callbacks.JobTimer``.
* :class:`BestTrial` prints the best trial of a sweep once it has ended (its settings, value
  and run directory); ``experiments/optuna_search.yaml`` enables it.
* :class:`SweepSummary` ends a sweep with one line counting completed and failed jobs (each
  failure with its run directory and error), and a non-zero exit status when one failed;
  ``conf/config.yaml`` enables it.
* :class:`OutputDirCheck` stops a run whose output directory cannot be written with one
  ``error:`` line, before Hydra tries to create it; ``conf/config.yaml`` enables it.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from lab.best import best_run, format_best
from lab.errors import LabError
from lab.io import unwritable
from lab.results import SWEEP_ENV, read_results, sweep_outcomes, write_json

TIMING_FILE = "job_timing.json"


class JobTimer(Callback):
    """Record where and how long each job ran, in ``<run dir>/job_timing.json``.

    ``start``/``end`` are wall-clock times (seconds since the epoch) taken just before and
    after the job's own code, in the process that ran it; with the launch time of the sweep
    they split a sweep's wall time into start-up, per-job work and waiting. ``torch_threads``
    is read after the job, so it shows the thread count the job actually used.
    """

    def __init__(self) -> None:
        self._start = 0.0

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._start = time.time()

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        hc = config.hydra
        record = {
            "launcher": str(hc.runtime.choices.get("hydra/launcher", "basic")),
            "job_num": int(hc.job.get("num", 0) or 0),
            "pid": os.getpid(),
            "torch_threads": torch.get_num_threads(),
            "start": self._start,
            "end": time.time(),
            "status": str(getattr(job_return.status, "name", job_return.status)),
        }
        write_json(Path(hc.runtime.output_dir) / TIMING_FILE, record)


class OutputDirCheck(Callback):
    """Stop with one ``error:`` line when the run or sweep directory cannot be written.

    Hydra creates that directory (and writes ``.hydra/`` into it) before any lab code runs, and
    a failure there ends in a traceback. This check runs before, creates nothing (the name may
    hold ``${now:...}``, resolved again by Hydra) and exits with status 2.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = str(config.hydra.run.dir)
        if not config.get("force") and read_results(Path(run_dir)) is not None:
            return  # completed: a rerun only reads it (a read-only archive is fine)
        self._check(run_dir, "run directory", "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(str(config.hydra.sweep.dir), "sweep directory", "hydra.sweep.dir")

    @staticmethod
    def _check(directory: str, what: str, key: str) -> None:
        why = unwritable(directory)
        if why is not None:
            print(
                f"error: cannot write the {what} {directory} ({why}); "
                f"set {key}=<a writable directory>.",
                file=sys.stderr,
                flush=True,
            )
            raise SystemExit(2)


class BestTrial(Callback):
    """At the end of a sweep, print its best run (settings, value, directory)."""

    def __init__(self, minimize: bool = False) -> None:
        self.minimize = minimize

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        try:
            print(format_best(best_run(sweep_dir, self.minimize)), flush=True)
        except LabError as e:
            print(f"warning: {e}", file=sys.stderr, flush=True)


class SweepSummary(Callback):
    """Count a sweep's job outcomes (``<run dir>/job.json``) once it has ended.

    Each sweep gets an id, passed to its jobs in ``LAB_SWEEP_ID`` (every launcher's workers
    inherit the environment), so that outcomes left by earlier sweeps of the same directory
    are not counted. Prints ``sweep: 3 completed, 1 failed: <dir>: <error>``; exits with
    status 1 when any job failed, after every job has run.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        os.environ[SWEEP_ENV] = f"{os.getpid()}-{time.time_ns()}"

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = os.environ.pop(SWEEP_ENV, None)
        if sweep is None:
            return
        outcomes = sweep_outcomes(Path(config.hydra.sweep.dir), sweep)
        failed = [(d, job) for d, job in outcomes if job.get("status") != "completed"]
        line = f"sweep: {len(outcomes) - len(failed)} completed, {len(failed)} failed"
        if failed:
            line += ": " + "; ".join(f"{d}: {job.get('error', '?')}" for d, job in failed)
        print(line, file=sys.stderr if failed else sys.stdout, flush=True)
        if failed:
            raise SystemExit(1)
