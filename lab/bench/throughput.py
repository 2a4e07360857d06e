"""``lab throughput``: how fast one decode sweep runs under each Hydra launcher.

The same 8-run sweep (two searches x four beam sizes over one cached checkpoint) runs under
basic, basic with one torch thread, joblib with 2 jobs and submitit_local, each as a real
``lab run -m`` process; ``throughput.json`` and ``throughput.md`` hold the table::

    lab throughput --out reports/throughput [--limit N] [--launchers a,b] [OVERRIDES]
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from lab.bench.render import render_throughput
from lab.callbacks import TIMING_FILE
from lab.errors import LabError
from lab.io import atomic_write_text
from lab.results import RESULTS, read_results, write_json

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
TIMER = "+hydra.callbacks.timer._target_=lab.callbacks.JobTimer"


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
    """Run the sweep under launcher ``name`` decoding ``limit`` sentences per run; its timing."""
    tag = "".join(c if c.isalnum() else "_" for c in name) + f"_limit{limit}"
    sweep_dir = work / tag
    args = ["run", "-m", *base, *SWEEP, *extra, f"eval.limit={limit}"]
    wall = _lab([*args, f"hydra.sweep.dir={sweep_dir}", TIMER], env, work / f"{tag}.log")
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


def _launcher_row(
    name: str, limit: int, base: list[str], work: Path, env: dict[str, str]
) -> tuple[LauncherRow, list[SweepTiming]]:
    """The sweep under launcher ``name`` twice (``limit`` and 1 sentence per run): its row."""
    full = _time_sweep(name, LAUNCHERS[name], limit, base, work, env)
    null = _time_sweep(name, LAUNCHERS[name], 1, base, work, env)
    if full.runs != 8 or null.runs != 8:
        raise LabError(f"{name}: expected 8 completed runs, got {full.runs}/{null.runs}")
    row = LauncherRow(
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
    return row, [full, null]


def _machine(load_before: tuple[float, float, float]) -> dict[str, Any]:
    """The machine the table was measured on, with its load before and after."""
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


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
    one = ["run", *base, "eval.limit=1"]
    try:
        # trains the checkpoint when it is not cached yet; one thread, which is never much
        # slower for a model this small and much faster on a machine shared with other jobs
        # (threads is not part of the checkpoint's key)
        _lab([*one, "threads=1", f"hydra.run.dir={work / 'warmup'}"], env, work / "warmup.log")
        single_wall = _lab([*one, f"hydra.run.dir={work / 'single'}"], env, work / "single.log")
        rows: list[LauncherRow] = []
        timings: list[SweepTiming] = []
        for name in launchers:
            row, sweeps = _launcher_row(name, limit, list(base), work, env)
            rows.append(row)
            timings += sweeps
        basic = next((r.wall_s for r in rows if r.launcher == "basic"), rows[0].wall_s)
        for r in rows:
            r.speedup_vs_basic = basic / r.wall_s
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
    data = {
        "command": "lab throughput --out " + str(out),
        "sweep": [*base, *SWEEP, f"eval.limit={limit}"],
        "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
        "machine": _machine(load_before),
        "note": note,
        "single_run_wall_s": single_wall,
        "rows": [asdict(r) for r in rows],
        "sweeps": [asdict(t) for t in timings],
    }
    write_json(out / "throughput.json", data)
    (out / "throughput.json").chmod(0o644)  # a table to share, not a private temp file
    atomic_write_text(out / "throughput.md", render_throughput(data))
    return data


def cmd_throughput(argv: list[str]) -> None:
    """``lab throughput [--out DIR] [--limit N] [--launchers a,b] [OVERRIDES]``: time one
    decode sweep under each launcher; print ``throughput.md``."""
    p = argparse.ArgumentParser(
        prog="lab throughput", description="Time one decode sweep under each Hydra launcher."
    )
    p.add_argument("--out", type=Path, default=Path("reports/throughput"))
    p.add_argument("--limit", type=int, default=100, help="sentences decoded per run")
    p.add_argument("--launchers", default=",".join(LAUNCHERS), help="comma-separated")
    p.add_argument("--note", default="", help="a remark printed with the table")
    p.add_argument("--keep", type=Path, default=None, help="keep the sweeps in this directory")
    p.add_argument("overrides", nargs="*", help="replace the base config (default: toy_search)")
    a = p.parse_args(argv)
    launchers = [x.strip() for x in a.launchers.split(",") if x.strip()]
    throughput(a.out, a.limit, launchers, a.overrides or TOY_MODEL, a.note, a.keep)
    print((a.out / "throughput.md").read_text(), end="")
