"""Faults, with real processes and signals: a training killed midway resumes from its last saved
state; a sweep killed midway redoes only its missing runs and leaves the finished ones as they
were; two sweeps that need the same checkpoint train it once; an unwritable output or cache
directory fails with one ``error:`` line and records nothing as completed.

Every ``lab`` here is a real process on a tiny model; caches and outputs live under pytest's
temporary directory.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from lab.results import read_results
from tests.helpers.lab_process import lab, lab_env, ok, tiny


@pytest.fixture
def spawn(root: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``lab`` processes in the background (output to a log); kill leftovers after."""
    started: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], cache: Path, log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as f:
            proc = subprocess.Popen(
                [sys.executable, "-m", "lab.cli", *args],
                cwd=root,
                env=lab_env(root, cache),
                stdout=f,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for(
    what: str,
    check: Callable[[], object],
    proc: subprocess.Popen[bytes],
    log: Path,
    timeout: float = 120,
) -> object:
    """Poll ``check`` until it returns something true; fail if ``proc`` ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f"lab exited ({proc.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


def sigkill(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def completed(sweep_dir: Path) -> dict[str, dict]:
    return {
        p.name: r
        for p in sorted(sweep_dir.iterdir())
        if p.is_dir() and (r := read_results(p)) is not None
    }


def snapshot(sweep_dir: Path, runs: list[str]) -> dict[str, tuple[bytes, int]]:
    files = [sweep_dir / r / f for r in runs for f in ("results.json", "predictions.jsonl")]
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


# -------------------------------------------------------------------------------------- kills


def test_a_killed_training_resumes_from_its_last_saved_state(root, cache, spawn):
    train = tiny(train__max_steps=100, train__save_every=20, seed=1)
    args = ["run", *train, f"hydra.run.dir={root / 'killed-train'}"]
    log = root / "killed-train.log"
    proc = spawn(args, cache, log)

    def ckpt_dir() -> Path | None:
        m = re.search(r"training transformer on toy_mt -> (\S+)", log.read_text())
        return Path(m.group(1)) if m else None

    ckpt = wait_for("training to start", ckpt_dir, proc, log)
    assert isinstance(ckpt, Path) and ckpt.parent == cache / "checkpoints"  # in the module's cache
    wait_for("the first saved state", (ckpt / "state.pt").is_file, proc, log)
    sigkill(proc)
    saved = torch.load(ckpt / "state.pt", weights_only=False)["step"]
    assert 0 < saved < 100 and not (ckpt / "model.pt").exists()  # every 20 steps and epoch
    assert read_results(root / "killed-train") is None

    again = ok(lab(args, root, cache))
    m = re.search(r"resuming training at step (\d+)", again.stdout)
    assert m and int(m.group(1)) == saved, again.stdout[-2000:]
    res = read_results(root / "killed-train")
    assert res is not None and res["train"]["steps"] == 100
    assert (ckpt / "model.pt").is_file() and not (ckpt / "state.pt").exists()

    # the finished checkpoint serves a following sweep: decoding only
    sweep = ok(
        lab(
            [
                "run",
                "-m",
                *train,
                "search.beam_size=2,3",
                f"hydra.sweep.dir={root / 'after-resume'}",
            ],
            root,
            cache,
        )
    )
    assert "training" not in sweep.stdout and "resuming" not in sweep.stdout
    runs = completed(root / "after-resume")
    assert len(runs) == 2
    assert {r["checkpoint"] for r in runs.values()} == {str(ckpt / "model.pt")}


def test_a_killed_sweep_reruns_only_its_missing_runs(root, trained, spawn):
    sweep_dir = root / "killed-sweep"
    # the last two searches are slow enough to be caught midway
    args = [
        "run",
        "-m",
        *tiny(eval__limit=20),
        "search.beam_size=1,2,16,24",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    log = root / "killed-sweep.log"
    proc = spawn(args, trained, log)
    wait_for(
        "two finished runs",
        lambda: sweep_dir.is_dir() and len(completed(sweep_dir)) >= 2,
        proc,
        log,
    )
    sigkill(proc)
    done = sorted(completed(sweep_dir))
    assert 2 <= len(done) < 4, f"the sweep finished {done} before it was killed"
    before = snapshot(sweep_dir, done)

    again = ok(lab(args, root, trained))
    assert again.stdout.count("skipping") == len(done)
    for name in done:
        assert f"skipping {sweep_dir / name}:" in again.stdout
    assert "training" not in again.stdout
    assert snapshot(sweep_dir, done) == before  # byte-identical, never rewritten
    assert sorted(completed(sweep_dir)) == ["0", "1", "2", "3"]


# --------------------------------------------------------------------------------- concurrency


@pytest.fixture(scope="module")
def concurrent(root: Path, cache: Path) -> list[tuple[int, str, Path]]:
    """Two sweeps started together that need the same, not yet trained, checkpoint."""
    train = tiny(train__max_steps=100, seed=2)
    procs = []
    for i, sizes in enumerate(("1,2", "3,4")):
        sweep_dir = root / f"concurrent-{i}"
        log = root / f"concurrent-{i}.log"
        with log.open("wb") as f:
            procs.append(
                (
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "lab.cli",
                            "run",
                            "-m",
                            *train,
                            f"search.beam_size={sizes}",
                            f"hydra.sweep.dir={sweep_dir}",
                        ],
                        cwd=root,
                        env=lab_env(root, cache),
                        stdout=f,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    ),
                    log,
                    sweep_dir,
                )
            )
    out = []
    try:
        for proc, log, sweep_dir in procs:
            out.append((proc.wait(timeout=300), log.read_text(), sweep_dir))
    finally:
        for proc, _, _ in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return out


def test_concurrent_sweeps_train_a_shared_checkpoint_once(concurrent):
    checkpoints = set()
    for rc, text, sweep_dir in concurrent:
        assert rc == 0, text[-3000:]
        runs = completed(sweep_dir)
        assert len(runs) == 2, text[-3000:]
        checkpoints |= {r["checkpoint"] for r in runs.values()}
        metas = {json.dumps(r["train"], sort_keys=True) for r in runs.values()}
        assert len(metas) == 1
    assert len(checkpoints) == 1
    # the trainer's progress bar shows in exactly one of the two
    assert sum("train: 100%" in text for _, text, _ in concurrent) == 1
    assert not any("resuming" in text for _, text, _ in concurrent)


def test_only_the_job_that_trains_says_training(concurrent):
    assert sum("training transformer" in text for _, text, _ in concurrent) == 1


# ------------------------------------------------------------------------- unwritable places


def blocked_dir(base: Path, how: str) -> Path:
    """A directory path nothing can be written under.

    ``file``: a path below a regular file, which cannot be created even by root. ``chmod``: a
    read-only directory, which root writes anyway (then the test is skipped).
    """
    if how == "file":
        (base / "a-file").write_text("not a directory\n")
        return base / "a-file" / "sub"
    ro = base / "read-only"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        (ro / "probe").write_text("")
    except OSError:
        return ro / "sub"
    ro.chmod(0o700)
    pytest.skip("permissions do not stop this user (root); the 'file' case covers it")


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1, proc.stderr[-3000:]
    return err


@pytest.mark.parametrize("how", ["file", "chmod"])
def test_an_unwritable_cache_dir_fails_with_one_line(root, trained, tmp_path, how):
    cache_dir = blocked_dir(tmp_path, how)
    run_dir = tmp_path / "run"
    proc = lab(
        ["run", *tiny(), f"cache_dir={cache_dir}", f"hydra.run.dir={run_dir}"], root, trained
    )
    err = one_error_line(proc)
    assert "cache" in err and str(cache_dir) in err
    assert read_results(run_dir) is None
    assert json.loads((run_dir / "results.json").read_text())["status"] == "failed"


CHECK_DIRS = "++hydra.callbacks.check_dirs._target_=lab.callbacks.OutputDirCheck"


def unwritable_output(
    root: Path, cache: Path, base: Path, how: str, mode: str, extra: list[str]
) -> None:
    out = blocked_dir(base, how)
    if mode == "run":
        args = ["run", *tiny(), f"hydra.run.dir={out}", *extra]
    else:
        args = ["run", "-m", *tiny(), "search.beam_size=1,2", f"hydra.sweep.dir={out}", *extra]
    proc = lab(args, root, cache)
    assert not list(base.rglob("results.json"))
    err = one_error_line(proc)
    assert str(out) in err and ("hydra.run.dir" if mode == "run" else "hydra.sweep.dir") in err


@pytest.mark.parametrize("how", ["file", "chmod"])
@pytest.mark.parametrize("mode", ["run", "multirun"])
def test_the_output_dir_check_fails_with_one_line(root, trained, tmp_path, how, mode):
    unwritable_output(root, trained, tmp_path, how, mode, [CHECK_DIRS])


@pytest.mark.parametrize("mode", ["run", "multirun"])
def test_an_unwritable_output_dir_fails_with_one_line(root, trained, tmp_path, mode):
    unwritable_output(root, trained, tmp_path, "file", mode, [])
