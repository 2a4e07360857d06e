"""The Ray launcher (hydra-ray-launcher) on a local Ray cluster gives the same run directories
as the basic launcher.

Slow, and it needs the plugin: it is not a dependency of the lab, because hydra-ray-launcher
1.2.2 pins ``cloudpickle<3`` while joblib (the joblib launcher) needs ``cloudpickle>=3``. Run it
with an interpreter that has both the plugin and the lab's dependencies, e.g. a separate venv::

    python -m venv /tmp/rayvenv
    echo "$PWD/.venv/lib/python3.11/site-packages" > \\
        /tmp/rayvenv/lib/python3.11/site-packages/zz-lab.pth
    /tmp/rayvenv/bin/pip install hydra-ray-launcher
    LAB_RAY_PYTHON=/tmp/rayvenv/bin/python python -m pytest -m slow tests/test_ray.py
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers.lab_process import TIMING_METRICS, lab, tiny

REPO = Path(__file__).resolve().parents[1]
TINY_ARGS = tiny(threads=None)  # threads=0, the default: the launcher gives each job one thread


def ray_python() -> str:
    """An interpreter with hydra-ray-launcher: this one, or ``$LAB_RAY_PYTHON``."""
    if importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is not None:
        return sys.executable
    other = os.environ.get("LAB_RAY_PYTHON")
    if other:
        return other
    pytest.skip("hydra-ray-launcher is not installed; set LAB_RAY_PYTHON (see the module doc)")


def run(python: str, args: list[str], root: Path) -> subprocess.CompletedProcess[str]:
    """``lab ARGS`` under ``python``, which finds this checkout's lab on its PYTHONPATH."""
    (root / "home").mkdir(exist_ok=True)
    return lab(
        args,
        root,
        root / "cache",
        python=python,
        HOME=str(root / "home"),  # Ray keeps a token in ~/.ray
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        ),
    )


@pytest.mark.slow
def test_ray_launcher_gives_the_same_runs_as_basic(tmp_path: Path):
    python = ray_python()
    ray_tmp = tempfile.mkdtemp(prefix="r", dir="/tmp")  # Ray's socket paths must stay short
    sweep = [
        "run",
        "-m",
        *TINY_ARGS,
        "search.beam_size=1,2,3",
        "+hydra.callbacks.timer._target_=lab.callbacks.JobTimer",
    ]
    try:
        basic = run(
            python, [*sweep, "threads=1", f"hydra.sweep.dir={tmp_path / 'basic'}"], tmp_path
        )
        assert basic.returncode == 0, basic.stderr[-3000:]
        ray = run(
            python,
            [
                *sweep,
                "hydra/launcher=ray",
                f"hydra.sweep.dir={tmp_path / 'ray'}",
                f"++hydra.launcher.ray.init._temp_dir={ray_tmp}",
                "++hydra.launcher.ray.init.num_cpus=2",
                "++hydra.launcher.ray.init.include_dashboard=false",
            ],
            tmp_path,
        )
        assert ray.returncode == 0, ray.stderr[-3000:]
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    for run_name in ("0", "1", "2"):
        a = json.loads((tmp_path / "basic" / run_name / "results.json").read_text())
        b = json.loads((tmp_path / "ray" / run_name / "results.json").read_text())
        assert a["status"] == b["status"] == "completed"
        assert {k: v for k, v in a["metrics"].items() if k not in TIMING_METRICS} == {
            k: v for k, v in b["metrics"].items() if k not in TIMING_METRICS
        }
        assert (tmp_path / "basic" / run_name / "predictions.jsonl").read_bytes() == (
            tmp_path / "ray" / run_name / "predictions.jsonl"
        ).read_bytes()
        timing = json.loads((tmp_path / "ray" / run_name / "job_timing.json").read_text())
        assert timing["launcher"] == "ray" and timing["torch_threads"] == 1
