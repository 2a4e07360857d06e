"""Sweep helpers: per-job timing, the best trial of an Optuna sweep, launcher throughput.

Hydra callbacks, added to a run or sweep without changing any run's config:

* :class:`JobTimer` writes ``<run dir>/job_timing.json`` (launcher, process id, torch threads,
  start and end of the job inside its process);
  ``lab run -m ... +hydra.callbacks.timer._target_=lab.sweeps.JobTimer``.
* :class:`BestTrial` prints the best trial of a sweep once it has ended (its settings, value
  and run directory); ``experiments/optuna_search.yaml`` enables it.
* :class:`OutputDirCheck` stops a run whose output directory cannot be written with one
  ``error:`` line, before Hydra tries to create it;
  ``++hydra.callbacks.check_dirs._target_=lab.sweeps.OutputDirCheck``.

And a command line::

    python -m lab.sweeps best SWEEP_DIR [--minimize]    # best run of a sweep, and the others
    python -m lab.sweeps throughput --out reports/throughput

``throughput`` times one decode sweep (8 runs over a cached checkpoint) under each launcher
(basic, joblib with 2 jobs, submitit_local) and writes ``throughput.md``/``throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from lab.errors import LabError
from lab.results import RESULTS, read_results, write_json

TIMING_FILE = "job_timing.json"
OPTUNA_FILE = "optimization_results.yaml"


# ---------------------------------------------------------------------------------- callbacks


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
        import torch

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


def unwritable(directory: str | os.PathLike[str]) -> str | None:
    """Why ``directory`` cannot be created or written, or None when it can (creates nothing)."""
    path = Path(directory).absolute()
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is a file, not a directory"
            if not os.access(parent, os.W_OK | os.X_OK):
                return f"{parent} is not writable"
            return None
    return None  # pragma: no cover - the root directory always exists


class OutputDirCheck(Callback):
    """Stop with one ``error:`` line when the run or sweep directory cannot be written.

    Hydra creates that directory (and writes ``.hydra/`` into it) before any lab code runs, and
    a failure there ends in a traceback. This check runs before, creates nothing (the name may
    hold ``${now:...}``, resolved again by Hydra) and exits with status 2.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(str(config.hydra.run.dir), "run directory", "hydra.run.dir")

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


# ---------------------------------------------------------------------------------- best run


@dataclass
class Trial:
    """One completed run of a sweep: its objective and its resolved config, flattened."""

    run_dir: Path
    objective: float
    config: dict[str, Any]


@dataclass
class Best:
    """The best completed run of a sweep, the sweeper's own record, and all trials."""

    sweep_dir: Path
    best: Trial
    trials: list[Trial]
    sweeper: dict[str, Any] = field(default_factory=dict)
    metric: str = "objective"


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: json.dumps(value) if isinstance(value, list) else value}


def sweep_trials(sweep_dir: Path) -> list[Trial]:
    """The completed runs under ``sweep_dir`` (any depth) with their objective.

    The settings come from ``results.json``, not ``.hydra/``: Hydra rewrites ``.hydra/`` of a
    directory even when the lab then refuses to run another config there.
    """
    trials = []
    for path in sorted(Path(sweep_dir).rglob(RESULTS)):
        if any(part.startswith(".") for part in path.relative_to(sweep_dir).parts):
            continue
        res = read_results(path.parent)
        if res is None or not isinstance(res.get("objective"), int | float):
            continue
        trials.append(Trial(path.parent, float(res["objective"]), _flat(res.get("config", {}))))
    return trials


def best_run(sweep_dir: Path, minimize: bool = False) -> Best:
    """The best completed run of ``sweep_dir`` (largest objective unless ``minimize``).

    The sweeper's own summary (Optuna's ``optimization_results.yaml``) is attached when there.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise LabError(
            f"no such sweep directory: {sweep_dir}; pass the hydra.sweep.dir of a sweep."
        )
    trials = sweep_trials(sweep_dir)
    if not trials:
        raise LabError(f"no completed run under {sweep_dir}; run the sweep first.")
    order = sorted(trials, key=lambda t: t.objective, reverse=not minimize)
    sweeper: dict[str, Any] = {}
    if (sweep_dir / OPTUNA_FILE).is_file():
        loaded = OmegaConf.to_container(OmegaConf.load(sweep_dir / OPTUNA_FILE))
        sweeper = loaded if isinstance(loaded, dict) else {}
    metric = "objective"
    objective = order[0].config.get("eval.objective")
    if objective:
        split = (read_results(order[0].run_dir) or {}).get("split", "?")
        metric = f"{objective} on {split}"
    return Best(sweep_dir, order[0], order, sweeper, metric)


def _varying(trials: Sequence[Trial]) -> list[str]:
    """The config keys whose value differs between ``trials``: the swept settings."""
    keys = sorted({k for t in trials for k in t.config} - {"force"})
    return [k for k in keys if len({repr(t.config.get(k)) for t in trials}) > 1]


def format_best(b: Best, top: int = 10) -> str:
    """``b`` as text: the best settings and run directory, then the top ``top`` trials."""
    varying = _varying(b.trials)

    def settings(t: Trial) -> str:
        return " ".join(f"{k}={t.config.get(k)}" for k in varying) or "-"

    lines = [
        f"best run of {b.sweep_dir} ({len(b.trials)} completed): "
        f"{b.metric} = {b.best.objective:.4g}",
        f"  settings: {settings(b.best)}",
        f"  run directory: {b.best.run_dir}",
    ]
    if b.sweeper.get("best_params") is not None:
        params = " ".join(f"{k}={v}" for k, v in b.sweeper["best_params"].items())
        value = b.sweeper.get("best_value")
        lines.append(f"  sweeper's record ({OPTUNA_FILE}): {params} -> {value}")
    lines.append(f"  top {min(top, len(b.trials))}:")
    for t in b.trials[:top]:
        lines.append(f"    {t.objective:10.4g}  {t.run_dir.name:<14} {settings(t)}")
    return "\n".join(lines)


# -------------------------------------------------------------------------------- throughput

TOY_MODEL = [
    "+experiment=toy_search",
    "logger.mode=offline",
]
SWEEP = ["search=beam,beam_lp", "search.beam_size=1,2,4,8"]
LAUNCHERS: dict[str, list[str]] = {
    "basic": [],
    "basic-1thread": ["threads=1"],
    "joblib-2jobs": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "submitit_local": ["hydra/launcher=submitit_local"],
}


@dataclass
class SweepTiming:
    """Wall time of one sweep command and what its runs report about themselves."""

    launcher: str
    limit: int
    runs: int
    wall_s: float
    run_seconds: float  # sum of results.json "seconds" (each job's own code, W&B finish excluded)
    decode_seconds: float  # sum of the search's own time
    torch_threads: list[int]


@dataclass
class LauncherRow:
    """One line of the throughput table."""

    launcher: str
    runs: int
    wall_s: float
    decode_s: float
    in_run_overhead_s: float  # per run: results.json seconds - decode seconds
    null_wall_s: float  # the same sweep decoding 1 sentence per run
    fixed_cost_per_run_s: float  # null_wall_s / runs
    speedup_vs_basic: float
    torch_threads: list[int]


def _lab(args: Sequence[str], env: dict[str, str], log: Path) -> float:
    """Run ``lab`` with ``args``; the wall time. Raises ``LabError`` when it fails."""
    started = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.run(
            [sys.executable, "-m", "lab.cli", *args], env=env, stdout=f, stderr=subprocess.STDOUT
        )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise LabError(f"`lab {' '.join(args)}` failed ({proc.returncode}): {' | '.join(tail)}")
    return wall


def _time_sweep(
    name: str, extra: list[str], limit: int, base: list[str], work: Path, env: dict[str, str]
) -> SweepTiming:
    tag = "".join(c if c.isalnum() else "_" for c in name) + f"_limit{limit}"
    sweep_dir = work / tag
    args = [
        "run",
        "-m",
        *base,
        *SWEEP,
        *extra,
        f"eval.limit={limit}",
        f"hydra.sweep.dir={sweep_dir}",
        "+hydra.callbacks.timer._target_=lab.sweeps.JobTimer",
    ]
    wall = _lab(args, env, work / f"{tag}.log")
    results = [read_results(p.parent) for p in sweep_dir.rglob(RESULTS)]
    done = [r for r in results if r is not None]
    threads = sorted(
        {json.loads(p.read_text())["torch_threads"] for p in sweep_dir.rglob(TIMING_FILE)}
    )
    return SweepTiming(
        launcher=name,
        limit=limit,
        runs=len(done),
        wall_s=wall,
        run_seconds=sum(float(r["seconds"]) for r in done),
        decode_seconds=sum(float(r["metrics"].get("decode_seconds", 0.0)) for r in done),
        torch_threads=threads,
    )


def throughput(
    out: Path,
    limit: int = 100,
    launchers: Sequence[str] = tuple(LAUNCHERS),
    base: Sequence[str] = tuple(TOY_MODEL),
    note: str = "",
    keep: Path | None = None,
) -> dict[str, Any]:
    """Time the same 8-run decode sweep under each launcher; write the table into ``out``.

    The checkpoint is trained first (or found in the cache) by a single run, so every sweep
    only decodes. Each launcher runs the sweep twice: with ``eval.limit=limit`` (the
    measurement) and with ``eval.limit=1`` (almost no decoding: its wall time divided by the
    number of runs is the fixed cost of one run through that launcher: process start-up,
    config composition, W&B init and finish, model loading).
    """
    unknown = [x for x in launchers if x not in LAUNCHERS]
    if unknown:
        raise LabError(f"unknown launcher {unknown[0]!r}; choose from: {', '.join(LAUNCHERS)}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="lab-throughput-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": "1"}
    env.setdefault("WANDB_MODE", "offline")
    load_before = os.getloadavg()
    started = time.time()
    try:
        # trains the checkpoint when it is not cached yet; one thread, which is never much
        # slower for a model this small and much faster on a machine shared with other jobs
        # (threads is not part of the checkpoint's key)
        _lab(
            ["run", *base, "eval.limit=1", "threads=1", f"hydra.run.dir={work / 'warmup'}"],
            env,
            work / "warmup.log",
        )
        single_wall = _lab(
            ["run", *base, "eval.limit=1", f"hydra.run.dir={work / 'single'}"],
            env,
            work / "single.log",
        )
        rows: list[LauncherRow] = []
        timings: list[SweepTiming] = []
        for name in launchers:
            full = _time_sweep(name, LAUNCHERS[name], limit, list(base), work, env)
            null = _time_sweep(name, LAUNCHERS[name], 1, list(base), work, env)
            timings += [full, null]
            if full.runs != 8 or null.runs != 8:
                raise LabError(f"{name}: expected 8 completed runs, got {full.runs}/{null.runs}")
            rows.append(
                LauncherRow(
                    launcher=name,
                    runs=full.runs,
                    wall_s=full.wall_s,
                    decode_s=full.decode_seconds,
                    in_run_overhead_s=(full.run_seconds - full.decode_seconds) / full.runs,
                    null_wall_s=null.wall_s,
                    fixed_cost_per_run_s=null.wall_s / null.runs,
                    speedup_vs_basic=0.0,
                    torch_threads=full.torch_threads,
                )
            )
        basic = next((r.wall_s for r in rows if r.launcher == "basic"), rows[0].wall_s)
        for r in rows:
            r.speedup_vs_basic = basic / r.wall_s
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
    import torch

    data = {
        "command": "python -m lab.sweeps throughput --out " + str(out),
        "sweep": [*base, *SWEEP, f"eval.limit={limit}"],
        "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "note": note,
        "single_run_wall_s": single_wall,
        "rows": [asdict(r) for r in rows],
        "sweeps": [asdict(t) for t in timings],
    }
    write_json(out / "throughput.json", data)
    (out / "throughput.json").chmod(0o644)  # a table to share, not a private temp file
    (out / "throughput.md").write_text(_markdown(data), encoding="utf-8")
    return data


def _markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [
        "# Launcher throughput",
        "",
        f"The same sweep under each launcher: `{' '.join(data['sweep'])}` "
        "(8 decode-only runs over one cached checkpoint).",
        "",
        f"Measured {data['date']} with `{data['command']}` on {m['cpus']} CPUs "
        f"({m['platform']}, Python {m['python']}, torch {m['torch']}); load average "
        f"{m['load_average_before'][0]} before, {m['load_average_after'][0]} after.",
    ]
    if data.get("note"):
        lines += ["", f"**Note:** {data['note']}"]
    lines += [
        "",
        "| launcher | runs | wall (s) | decoding (s, summed) | in-run overhead (s/run) "
        "| wall, 1 sentence/run (s) | fixed cost (s/run) | speed-up vs basic | torch threads |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in data["rows"]:
        lines.append(
            f"| {r['launcher']} | {r['runs']} | {r['wall_s']:.1f} | {r['decode_s']:.1f} "
            f"| {r['in_run_overhead_s']:.2f} | {r['null_wall_s']:.1f} "
            f"| {r['fixed_cost_per_run_s']:.2f} | {r['speedup_vs_basic']:.2f} "
            f"| {','.join(str(t) for t in r['torch_threads'])} |"
        )
    lines += [
        "",
        f"A single `lab run` (1 sentence, cached checkpoint) takes {data['single_run_wall_s']:.1f}"
        " s from command to exit.",
        "",
        "* wall: the sweep command, start to exit.",
        "* decoding: the searches' own time (`metrics.decode_seconds`), summed over the runs.",
        "* in-run overhead: per run, `results.json` seconds minus decoding: task, tokenizer, "
        "checkpoint and W&B start inside the job.",
        "* fixed cost: the same sweep decoding one sentence per run, wall / runs: everything a "
        "run costs besides decoding (process start-up, imports, config composition, W&B init and "
        "finish, model loading), amortized over the launcher's parallelism.",
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m lab.sweeps", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pb = sub.add_parser("best", help="the best run of a sweep (e.g. an Optuna search)")
    pb.add_argument("sweep_dir", type=Path)
    pb.add_argument("--minimize", action="store_true", help="smaller objective is better")
    pb.add_argument("--top", type=int, default=10)
    pt = sub.add_parser("throughput", help="time one decode sweep under each launcher")
    pt.add_argument("--out", type=Path, default=Path("reports/throughput"))
    pt.add_argument("--limit", type=int, default=100, help="sentences decoded per run")
    pt.add_argument("--launchers", default=",".join(LAUNCHERS), help="comma-separated")
    pt.add_argument("--note", default="", help="a remark printed with the table")
    pt.add_argument("--keep", type=Path, default=None, help="keep the sweeps in this directory")
    pt.add_argument("overrides", nargs="*", help="replace the base config (default: toy_search)")
    a = p.parse_args(argv)
    try:
        if a.cmd == "best":
            print(format_best(best_run(a.sweep_dir, a.minimize), a.top))
        else:
            data = throughput(
                a.out,
                a.limit,
                [x.strip() for x in a.launchers.split(",") if x.strip()],
                a.overrides or TOY_MODEL,
                a.note,
                a.keep,
            )
            print((a.out / "throughput.md").read_text(), end="")
            del data
    except LabError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
