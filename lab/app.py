"""The Hydra application behind ``lab run``: compose the config, run one job of a sweep.

In a sweep, a job's failure (a ``LabError`` or a bug) is the job's, not the sweep's: the job
prints its error, leaves ``results.json`` with status ``failed`` and its outcome in
``<run dir>/job.json``, and the sweep goes on; ``lab.callbacks.SweepSummary`` ends the sweep
with a summary line and a non-zero exit status when any job failed.

SIGINT (Ctrl-C) or SIGTERM (``kill``, a scheduler's preemption) stops the job with one line
that says what to do (``interrupted at step N; saved at step N; rerun the same command to
resume``), leaves ``results.json`` with status ``interrupted`` and exits with status 130 or 143;
a sweep on the basic launcher stops there too, and its rerun redoes that job.
"""

from __future__ import annotations

import math
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import hydra
from filelock import FileLock, Timeout
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_original_cwd, to_absolute_path
from omegaconf import DictConfig, OmegaConf

from lab.errors import LabError
from lab.results import (
    JOB,
    LOCK,
    SWEEP_ENV,
    Interrupted,
    read_results,
    signals_handled,
    write_json,
)
from lab.run_files import HYDRA, HYDRA_NEXT


def config_dir() -> Path:
    """The directory of the lab's Hydra configs (``config.yaml``, the groups, ``experiment/``).

    In an installed wheel it is ``lab/conf`` (pyproject.toml maps the top-level ``conf/`` into
    the package); in a source checkout, editable installs included, it is that top-level
    ``conf/`` itself, the one place the configs are edited. A real directory rather than
    ``pkg://lab.conf``, because an editable install does not map ``lab.conf``. The packaged
    copy is returned when neither has a ``config.yaml``, so that the error names the place an
    install should have them.
    """
    package = Path(__file__).resolve().parent
    packaged, checkout = package / "conf", package.parent
    in_checkout = (checkout / "pyproject.toml").is_file() and (checkout / "conf").is_dir()
    if in_checkout and not (packaged / "config.yaml").is_file():
        return checkout / "conf"
    return packaged


CONF_DIR = config_dir()


def hydra_subdir(output_dir: str, force: bool) -> str | None:
    """Where Hydra writes a job's composed config: ``.hydra``, or nowhere for a run that is
    already completed (it will be skipped) or still being written by another run, so that a
    later run never rewrites the config files of another. A forced rerun over a completed run
    writes ``.hydra.next``, which replaces ``.hydra`` only if it completes (``lab.run_files``).
    """
    run_dir = Path(output_dir)
    completed = read_results(run_dir) is not None
    if not force and completed:
        return None
    if (run_dir / LOCK).exists():
        lock = FileLock(str(run_dir / LOCK))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return None
        lock.release()
    return HYDRA_NEXT if completed else HYDRA


OmegaConf.register_new_resolver("lab_hydra_subdir", hydra_subdir, replace=True)


def _sweep_group() -> str | None:
    """The W&B group of a multirun job: its sweep directory's name."""
    hc = HydraConfig.get()
    return Path(hc.sweep.dir).name if str(hc.mode) == "RunMode.MULTIRUN" else None


PATH_KEYS = ("data_dir", "cache_dir", "checkpoint")


def launch_relative_paths(cfg: DictConfig) -> None:
    """With ``hydra.job.chdir=true`` a job runs inside its run directory; a relative
    ``data_dir``, ``cache_dir`` or ``checkpoint`` still names a path under the directory that
    ``lab run`` was started in (Hydra's ``to_absolute_path``). Without it nothing changes."""
    if Path.cwd() == Path(get_original_cwd()):
        return
    for key in PATH_KEYS:
        value = cfg.get(key)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            cfg[key] = to_absolute_path(value)


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM raise ``Interrupted`` in it.

    Python's own SIGTERM ends the process on the spot, leaving a run directory with no
    ``results.json``; an exception unwinds instead, so the run records status ``interrupted``,
    a training saves its state (``lab.trainer``) and locks are released. A signal that was
    ignored when the process started (``nohup``, a background job of a script) stays ignored,
    and only the main thread can set handlers: elsewhere nothing changes.
    """
    with signals_handled(_raise_interrupted):
        yield


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    import lab  # noqa: F401  (registers the plugins)
    from lab.pipeline import run

    launch_relative_paths(cfg)
    group = cfg.logger.get("group") or cfg.get("experiment_name") or _sweep_group()
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    sweep = os.environ.get(SWEEP_ENV) if str(HydraConfig.get().mode) == "RunMode.MULTIRUN" else None
    try:
        with signals_interrupt():
            value = run(cfg, run_dir, group)
    except KeyboardInterrupt as e:  # one line, never a traceback; the shell's exit status
        stop = Interrupted.of(e)
        print(stop, file=sys.stderr, flush=True)
        raise SystemExit(stop.exit_status) from None
    except Exception as e:  # noqa: BLE001 - a sweep records every job's failure and goes on
        message = str(e) if isinstance(e, LabError) else f"{type(e).__name__}: {e}"
        if sweep is None:  # a single run: one line for a user error, the traceback for a bug
            if isinstance(e, LabError):
                print(f"error: {message}", file=sys.stderr, flush=True)
                raise SystemExit(2) from None
            raise
        if not isinstance(e, LabError):
            traceback.print_exc()
        print(f"error: {message}", file=sys.stderr, flush=True)
        write_json(run_dir / JOB, {"sweep": sweep, "status": "failed", "error": message})
        return math.nan  # a sweeper sees a failed trial, never a score
    if sweep is not None:
        write_json(run_dir / JOB, {"sweep": sweep, "status": "completed"})
    return value
