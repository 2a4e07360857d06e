"""What a user can rely on when things go wrong: a checkpoint never runs code, a failing sweep
job fails alone, no wrong number is recorded as completed, one run directory has one writer,
and the checkpoint cache tells trainings apart by everything that changes their weights.

Every ``lab`` here is a real process on the tiny model (``tests.helpers.lab_process``).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from filelock import FileLock

from lab.errors import LabError
from lab.io import atomic_write
from lab.results import read_results
from lab.train import TrainSettings
from lab.trainer import Trainer
from tests.helpers.lab_process import lab, lab_env, ok, tiny


def one_error_line(proc: subprocess.CompletedProcess[str], message: str) -> str:
    """The single ``error:`` line of a failed ``lab`` process, which must contain ``message``."""
    assert proc.returncode != 0, proc.stdout[-2000:]
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert message in lines[0]
    return lines[0]


def nothing_completed(run_dir: Path) -> bool:
    return read_results(run_dir) is None


class Payload:
    """A pickle that, when loaded without ``weights_only``, creates a file (a shell command
    would do the same): the attack a shared cache or a downloaded checkpoint could carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


# --- 1. loading a checkpoint never runs code ----------------------------------------------
def test_a_crafted_checkpoint_is_refused_and_its_payload_never_runs(root, trained, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": 1, "model": Payload(marker)}, evil)
    run_dir = tmp_path / "run"
    proc = lab(["run", *tiny(), f"checkpoint={evil}", f"hydra.run.dir={run_dir}"], root, trained)
    one_error_line(proc, "holds Python objects")
    assert not marker.exists()
    assert nothing_completed(run_dir)


def test_a_crafted_cached_model_and_training_state_never_run(root, cache, tmp_path):
    """The cache is shared on clusters: its model.pt and state.pt are loaded as safely."""
    first = ok(
        lab(["run", *tiny(train__max_steps=4), f"hydra.run.dir={tmp_path / 'a'}"], root, cache)
    )
    ckpt_dir = Path(first.stdout.split("-> ")[1].split()[0])
    marker = tmp_path / "pwned"
    torch.save({"model": Payload(marker)}, ckpt_dir / "model.pt")
    proc = lab(["run", *tiny(train__max_steps=4), f"hydra.run.dir={tmp_path / 'b'}"], root, cache)
    one_error_line(proc, "holds Python objects")
    assert not marker.exists()
    (ckpt_dir / "model.pt").unlink()
    torch.save({"model": Payload(marker)}, ckpt_dir / "state.pt")
    proc = ok(
        lab(["run", *tiny(train__max_steps=4), f"hydra.run.dir={tmp_path / 'c'}"], root, cache)
    )
    assert not marker.exists()
    assert "set aside as state.pt.unreadable-" in proc.stdout  # and training started over
    assert list(ckpt_dir.glob("state.pt.unreadable-*")) and (ckpt_dir / "model.pt").exists()


def test_a_corrupt_training_state_is_set_aside_and_training_restarts(root, cache, tmp_path):
    args = tiny(train__max_steps=3, seed=5)
    first = ok(lab(["run", *args, f"hydra.run.dir={tmp_path / 'a'}"], root, cache))
    ckpt_dir = Path(first.stdout.split("-> ")[1].split()[0])
    (ckpt_dir / "model.pt").unlink()
    (ckpt_dir / "state.pt").write_bytes(b"\x80\x04 not a checkpoint at all")
    proc = ok(lab(["run", *args, "force=true", f"hydra.run.dir={tmp_path / 'a'}"], root, cache))
    assert f"training state {ckpt_dir / 'state.pt'} is unreadable" in proc.stdout
    assert read_results(tmp_path / "a") is not None
    assert (ckpt_dir / "model.pt").exists()


def test_a_checkpoint_missing_keys_gets_one_line(root, trained, tmp_path):
    ckpt = tmp_path / "partial.pt"
    torch.save({"format": 1, "model": "transformer", "args": {}}, ckpt)
    proc = lab(
        ["run", *tiny(), f"checkpoint={ckpt}", f"hydra.run.dir={tmp_path / 'r'}"], root, trained
    )
    one_error_line(proc, "lacks src_vocab, tgt_vocab, state_dict")


# --- 2. a clean error in one sweep job does not abort the sweep ---------------------------
@pytest.mark.parametrize(
    "launcher", ["basic", "joblib", pytest.param("submitit_local", marks=pytest.mark.slow)]
)
def test_a_failing_job_fails_alone_and_the_sweep_ends_with_a_summary(root, trained, launcher):
    sweep_dir = root / f"sweep-fail-{launcher}"
    args = [
        "run",
        "-m",
        *tiny(),
        "search=beam",
        "search.beam_size=0,2",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    if launcher != "basic":
        args += [f"hydra/launcher={launcher}"]
    proc = lab(args, root, trained)
    assert proc.returncode == 1, proc.stderr[-3000:]
    failed, done = sweep_dir / "0", sweep_dir / "1"
    assert json.loads((failed / "results.json").read_text())["status"] == "failed"
    assert "beam_size must be >= 1" in json.loads((failed / "results.json").read_text())["error"]
    assert read_results(done) is not None  # the job after the failing one ran
    summary = proc.stderr.strip().splitlines()[-1]
    assert summary.startswith("sweep: 1 completed, 1 failed: ")
    assert f"{failed}: search.beam_size must be >= 1" in summary


def test_widening_a_finished_sweep_keeps_the_finished_runs_untouched(root, trained):
    sweep_dir = root / "widen"
    base = ["run", "-m", *tiny(), "hydra.sweep.subdir=${hydra.job.override_dirname}"]
    ok(lab([*base, "seed=1,2", f"hydra.sweep.dir={sweep_dir}"], root, trained))
    finished = {
        p: p.read_bytes()
        for p in sorted(sweep_dir.glob("*/.hydra/*")) + sorted(sweep_dir.glob("*/results.json"))
    }
    assert len(finished) == 8
    proc = ok(lab([*base, "seed=1,2,3", f"hydra.sweep.dir={sweep_dir}"], root, trained))
    assert proc.stdout.count("skipping") == 2
    assert all(p.read_bytes() == data for p, data in finished.items())
    (new,) = [d for d in sweep_dir.iterdir() if "seed=3" in d.name.split(",")]
    assert read_results(new) is not None
    assert "sweep: 3 completed, 0 failed" in proc.stdout


# --- 3. no wrong number recorded as completed ---------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["search=beam_lp", "search.alpha=nan"], "search.alpha=nan is not a finite number"),
        (["search=beam_lp", "search.alpha=inf"], "search.alpha=inf is not a finite number"),
        (["train.lr=-inf"], "train.lr=-inf is not a finite number"),
        (["eval.limit=-1"], "eval.limit must be >= 1, got -1; set eval.limit=1 or more"),
        (["eval.limit=0"], "eval.limit must be >= 1, got 0; set eval.limit=1 or more"),
        (["search.beam_size=abc"], "search.beam_size must be a whole number, got 'abc'"),
        (["eval.limit=abc"], "eval.limit must be a whole number, got 'abc'"),
        (["seed=abc"], "seed must be a whole number, got 'abc'"),
        (["train.max_steps=abc"], "train.max_steps must be a whole number, got 'abc'"),
        (["threads=-1"], "threads must be >= 0"),
        (["device=cuda"], "device=cuda but torch sees no CUDA device"),
        (
            ["search.max_len_b=-1"],
            "search.max_len_b must be >= 0, got -1; set search.max_len_b=0 or more",
        ),
    ],
)
def test_bad_values_fail_up_front_with_one_line(root, trained, tmp_path, overrides, message):
    if overrides == ["device=cuda"] and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    keys = {o.split("=")[0] for o in overrides}
    base = [t for t in tiny() if t.split("=")[0] not in keys]
    run_dir = tmp_path / "run"
    proc = lab(["run", *base, *overrides, f"hydra.run.dir={run_dir}"], root, trained)
    one_error_line(proc, message)
    assert nothing_completed(run_dir)


def test_run_files_are_strict_json(root, trained, tmp_path):
    run_dir = tmp_path / "run"
    ok(lab(["run", *tiny(), f"hydra.run.dir={run_dir}"], root, trained))
    no_constants = {"parse_constant": lambda c: pytest.fail(f"non-JSON constant {c}")}
    json.loads((run_dir / "results.json").read_text(), **no_constants)
    for line in (run_dir / "predictions.jsonl").read_text().splitlines():
        json.loads(line, **no_constants)


# --- 4. one run directory, one writer ---------------------------------------------------
def test_a_second_run_into_a_busy_run_directory_is_refused(root, trained, tmp_path):
    """The run directory's lock is what a running ``lab run`` holds; while another process
    holds it, a run into the same directory is refused and writes nothing."""
    run_dir = tmp_path / "busy"
    run_dir.mkdir()
    with FileLock(str(run_dir / ".lock")):
        proc = lab(["run", *tiny(), f"hydra.run.dir={run_dir}"], root, trained)
    one_error_line(proc, f"another lab run is writing {run_dir}")
    assert not (run_dir / "results.json").exists()
    assert not (run_dir / ".hydra").exists()  # Hydra did not write its files there either
    ok(lab(["run", *tiny(), f"hydra.run.dir={run_dir}"], root, trained))  # free again: runs


# --- 5. the cache key covers the thread count ---------------------------------------------
def test_trainings_with_different_thread_counts_are_cached_apart(root, cache, tmp_path):
    """Float sums reduce in another order with another thread count, so the weights differ
    in their last bits: each thread count gets its own checkpoint, never the other's."""
    args = tiny(train__max_steps=3, seed=9)
    dirs = []
    for threads in (1, 2):
        run = tiny(train__max_steps=3, seed=9, threads=threads)
        proc = ok(lab(["run", *run, f"hydra.run.dir={tmp_path / str(threads)}"], root, cache))
        assert "training transformer" in proc.stdout
        dirs.append(read_results(tmp_path / str(threads))["checkpoint"])
    assert dirs[0] != dirs[1]
    again = ok(lab(["run", *args, f"hydra.run.dir={tmp_path / 'again'}"], root, cache))
    assert "training transformer" not in again.stdout  # threads=1 again: the cached one
    assert read_results(tmp_path / "again")["checkpoint"] == dirs[0]


# --- 6. one line, not a traceback -----------------------------------------------------------
def test_a_run_directory_under_proc_gets_one_line(root, trained):
    proc = lab(["run", *tiny(), "hydra.run.dir=/proc/lab-run"], root, trained)
    one_error_line(proc, "/proc")


def test_a_full_disk_is_one_line_naming_the_file(tmp_path):
    full = Path("/dev/full")
    if not full.exists():
        pytest.skip("no /dev/full here")

    def fill(f) -> None:  # what writing to a full file system does: ENOSPC
        with open(full, "wb") as sink:
            sink.write(b"x" * 65536)
            sink.flush()

    with pytest.raises(LabError, match=r"cannot write .*results\.json: No space left on device"):
        atomic_write(tmp_path / "results.json", fill)
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


# --- 8. shared caches ---------------------------------------------------------------------
def test_cache_files_respect_the_umask(root, tmp_path):
    cache = tmp_path / "cache"
    env = lab_env(root, cache)
    proc = subprocess.run(
        ["sh", "-c", f"umask 002 && exec {sys.executable} -m lab.cli run "
         + " ".join(tiny(train__max_steps=2)) + f" hydra.run.dir={tmp_path / 'r'}"],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    ok(proc)
    model = next(cache.glob("checkpoints/*/model.pt"))
    tokenizer_dir = next(p for p in cache.glob("tokenizers/*") if p.is_dir())
    assert stat.S_IMODE(model.stat().st_mode) == 0o664
    assert stat.S_IMODE(tokenizer_dir.stat().st_mode) == 0o775
    assert stat.S_IMODE((tmp_path / "r" / "results.json").stat().st_mode) == 0o664


def test_train_seconds_count_the_whole_training_across_a_resume(tmp_path, one_thread):
    from lab.data import Pair
    from lab.registry import MODELS

    pairs = [Pair(i, [4 + i % 5, 5, 6], [7, 8 + i % 3, 2]) for i in range(40)]
    model_args = dict(d_model=16, n_heads=2, enc_layers=1, dec_layers=1, d_ff=32)

    def train(steps: int) -> dict:
        torch.manual_seed(0)
        model = MODELS.build("transformer", 12, 12, **model_args)
        settings = TrainSettings(max_steps=steps, max_epochs=0, batch_tokens=64, save_every=1)
        return Trainer(
            model, pairs, pairs[:4], settings, 0, torch.device("cpu"), tmp_path, None
        ).run()

    first = train(6)
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    assert state["seconds"] == pytest.approx(first["train_seconds"], rel=0.5)
    resumed = train(8)  # resumes at step 6
    assert resumed["steps"] == 8
    assert resumed["train_seconds"] > state["seconds"]
