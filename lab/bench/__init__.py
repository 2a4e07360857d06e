"""``lab bench``: how fast the lab's searches are, against the model's own forward passes and
against Hugging Face ``generate``; and ``lab throughput`` (``lab.bench.throughput``): how fast a
sweep runs under each Hydra launcher.

Every bench figure is a ratio of two wall times measured in the same run, on the same inputs (a
fixed batch of random sentences, fixed seed), interleaved repeat by repeat so that a change in
machine load hits both sides, and reduced to medians. Where a figure needs equal work on both
sides the outputs are forced to a fixed length (EOS is banned until the last step, the length
limit ends every sentence there). Models have random weights of a realistic size: the figures
measure search and model code, not translation quality.

The figures, their targets and what each measures are listed in ``lab.bench.figures``; they are
measured by ``speed`` (lab-internal), ``searches`` (every other search against its baseline),
``hf_speed`` (lab vs ``generate``, needs the optional
transformers), ``ct2_speed`` (lab vs CTranslate2, needs the optional ctranslate2) and
``memory`` (peak memory, one fresh subprocess per figure), and written as ``bench.json`` and
``bench.md`` (``render``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from lab.bench import ct2_speed, hf_speed
from lab.bench.common import MODES, Settings, environment
from lab.bench.figures import check_targets, section_keys
from lab.bench.render import render_md
from lab.bench.searches import bench_searches
from lab.bench.speed import bench_lab
from lab.errors import LabError
from lab.io import atomic_write_text
from lab.results import write_json

OUT = "reports/bench"
# the checkout holding ``lab``, put on the memory child's path (the lab need not be installed)
ROOT = Path(__file__).resolve().parent.parent.parent


def bench_memory(s: Settings, threads: int) -> dict[str, Any]:
    """Peak memory of the mode's two beam widths, each in a fresh ``lab.bench.memory``."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path)
    mem_beams = ",".join(str(b) for b in s.mem_beams)
    out: dict[str, Any] = {}
    for beam in s.mem_beams:
        args = ["--mode", s.mode, "--beam", str(beam), "--threads", str(threads)]
        proc = subprocess.run(
            [sys.executable, "-m", "lab.bench.memory", *args, "--mem-beams", mem_beams],
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
        )
        if proc.returncode:
            err = proc.stderr.strip()[-300:]
            raise LabError(f"the memory measurement subprocess failed: {err}")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        out[f"peak_mem_beam{beam}_mb"] = res["added_mb"]
        out["mem_method"] = res["method"]
    return out


def run_bench(s: Settings, threads: int, workdir: Path) -> dict[str, Any]:
    """Every figure of mode ``s`` with ``threads`` torch threads (restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run_bench(s, threads, workdir)
    finally:
        torch.set_num_threads(before)


def _run_bench(s: Settings, threads: int, workdir: Path) -> dict[str, Any]:
    res: dict[str, Any] = {"mode": s.mode, "settings": asdict(s), "notes": []}
    res["environment"] = environment(threads)
    times: dict[str, float] = {}
    sections: dict[str, float] = {}  # wall time of each part of the bench, to keep modes in budget
    start = time.perf_counter()
    lab_res = bench_lab(s)
    sections["lab"] = time.perf_counter() - start
    start = time.perf_counter()
    search_res = bench_searches(s)
    times.update(search_res.pop("times_s"))
    res.update(search_res)
    sections["searches"] = time.perf_counter() - start
    times.update(lab_res.pop("times_s"))
    res.update(lab_res)
    start = time.perf_counter()
    if hf_speed.available():
        hf_res = hf_speed.bench_hf(s, workdir)
        times.update(hf_res.pop("times_s"))
        res.update(hf_res)
    else:
        res["notes"].append("transformers is not installed: the lab_vs_hf figures are skipped.")
        res.update(dict.fromkeys(section_keys("hf")))
    sections["hf"] = time.perf_counter() - start
    start = time.perf_counter()
    if ct2_speed.available():
        ct2_res = ct2_speed.bench_ct2(s, workdir, threads)
        times.update(ct2_res.pop("times_s"))
        res.update(ct2_res)
    else:
        res["notes"].append("ctranslate2 is not installed: the lab_vs_ct2 figures are skipped.")
        res.update(dict.fromkeys(section_keys("ct2")))
    sections["ct2"] = time.perf_counter() - start
    start = time.perf_counter()
    res.update(bench_memory(s, threads))
    sections["memory"] = time.perf_counter() - start
    res["times_s"] = times
    res["section_s"] = sections
    res["targets"] = check_targets(res)
    return res


def cmd_bench(argv: list[str]) -> None:
    """``lab bench [--quick|--tiny] [--out DIR] [--threads N] [--device cpu|cuda]``: write
    ``bench.json`` and ``bench.md`` (with ``--device``: ``device_bench.json`` and ``.md``, see
    ``lab.bench.device``)."""
    p = argparse.ArgumentParser(
        prog="lab bench",
        description="Speed of the lab's searches against the model's forward passes and "
        "Hugging Face generate (random models, fixed inputs).",
    )
    p.add_argument("--quick", action="store_true", help="smaller lengths and repeats (~1 min)")
    p.add_argument("--tiny", action="store_true", help="tiny shapes, seconds (for tests)")
    p.add_argument("--out", default=OUT, help="output directory (reports/bench/)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: stable timings on a shared machine)",
    )
    p.add_argument(
        "--device",
        default=None,
        help="cpu or cuda: the searches on this device in each precision against CTranslate2 "
        "and generate (device_bench.json/md; default out: reports/bench/<device>)",
    )
    a = p.parse_args(argv)
    s = MODES["tiny" if a.tiny else "quick" if a.quick else "full"]
    threads = a.threads
    if threads < 1:
        raise LabError(f"--threads must be >= 1, got {threads}.")
    if a.device is not None:
        from lab.bench.device import check_device, run_device_bench

        device = check_device(a.device)
        out = Path(a.out) if a.out != OUT else Path(OUT) / device.type
        run_device_bench(s, device, threads, out)
        print(out / "device_bench.json")
        print(out / "device_bench.md")
        return
    out = Path(a.out)
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        res = run_bench(s, threads, Path(tmp))
    write_json(out / "bench.json", res)
    atomic_write_text(out / "bench.md", render_md(res))
    print(out / "bench.json")
    print(out / "bench.md")
