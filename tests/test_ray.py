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

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "model.d_model=32",
    "model.d_ff=64",
    "model.n_heads=2",
    "model.enc_layers=1",
    "model.dec_layers=1",
    "train.max_steps=30",
    "train.max_epochs=0",
    "task.n_train=500",
    "task.n_valid=50",
    "task.n_test=20",
    "task.tokenizer.vocab_size=200",
    "eval.limit=10",
    "logger=none",
]
TIMING_METRICS = {"decode_seconds", "sent_per_s", "tok_per_s"}


def ray_python() -> str:
    """An interpreter with hydra-ray-launcher: this one, or ``$LAB_RAY_PYTHON``."""
    if importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is not None:
        return sys.executable
    other = os.environ.get("LAB_RAY_PYTHON")
    if other:
        return other
    pytest.skip("hydra-ray-launcher is not installed; set LAB_RAY_PYTHON (see the module doc)")


def run(python: str, args: list[str], root: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "LAB_", "RAY_"))}
    env.update(
        LAB_CACHE_DIR=str(root / "cache"),
        LAB_DATA_DIR=str(root / "data"),
        WANDB_MODE="offline",
        HOME=str(root / "home"),  # Ray keeps a token in ~/.ray
        XDG_CACHE_HOME=str(root / "xdg-cache"),
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    (root / "home").mkdir(exist_ok=True)
    return subprocess.run(
        [python, "-m", "lab.cli", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_ray_launcher_gives_the_same_runs_as_basic(tmp_path: Path):
    python = ray_python()
    ray_tmp = tempfile.mkdtemp(prefix="r", dir="/tmp")  # Ray's socket paths must stay short
    sweep = [
        "run",
        "-m",
        *TINY,
        "search.beam_size=1,2,3",
        "+hydra.callbacks.timer._target_=lab.sweeps.JobTimer",
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
