"""What a first run meets: Ctrl-C or SIGTERM stop a run with one line, a resumable state and
status ``interrupted``; progress bars show totals, ETAs and rates; a job uses one torch thread
unless told otherwise; BLEU on the built-in tasks raises no sacreBLEU tokenization warning.

The signals go to real ``lab`` processes on tiny models that these tests start (and to this
process only under a handler of the test's own); caches live under pytest's temporary
directories.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
import torch

from lab.results import Interrupted, load_results, read_results
from lab.train import TrainSettings
from lab.trainer import Trainer
from tests.helpers.lab_process import lab, lab_env, ok, tiny

TRAINING_LINE = re.compile(
    r"^interrupted at step (\d+); saved at step (\d+); rerun the same command to resume$"
)
DECODING_LINE = "interrupted while decoding; rerun the same command"


class Lab:
    """A ``lab`` process started in the background, its stderr on a pseudo-terminal (as at a
    shell: progress bars draw) or in a file; stdout in a file."""

    def __init__(self, args: list[str], root: Path, cache: Path, out: Path, tty: bool) -> None:
        self.out, self.err_file = out / "stdout", out / "stderr"
        self.err_text, self.master = "", None
        out.mkdir(parents=True, exist_ok=True)
        stderr: int | IO[bytes]
        if tty:
            self.master, stderr = pty.openpty()
            rows_cols = struct.pack("HHHH", 24, 120, 0, 0)  # a new terminal has 0 columns
            fcntl.ioctl(stderr, termios.TIOCSWINSZ, rows_cols)
        else:
            stderr = self.err_file.open("wb")
        with self.out.open("wb") as stdout:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lab.cli", *args],
                cwd=root,
                env=lab_env(root, cache),
                stdout=stdout,
                stderr=stderr,
                # as at a terminal, whatever this test runner's parent ignores
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
        if isinstance(stderr, int):
            os.close(stderr)  # the child holds the terminal's other end now
        else:
            stderr.close()

    def stderr(self) -> str:
        """Everything written to stderr so far."""
        if self.master is None:
            return self.err_text or self.err_file.read_text(errors="replace")
        while select.select([self.master], [], [], 0)[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the terminal's other end closed: the process ended
                break
            if not chunk:
                break
            self.err_text += chunk.decode(errors="replace")
        return self.err_text

    def wait_for(self, what: str, check: Callable[[], object], timeout: float = 300) -> None:
        """Poll ``check`` until it is true; fail if the process ends first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            if self.proc.poll() is not None:
                pytest.fail(f"lab exited ({self.proc.returncode}) before {what}:\n{self.tail()}")
            time.sleep(0.02)
        pytest.fail(f"timed out waiting for {what}:\n{self.tail()}")

    def finish(self, timeout: float = 120) -> int:
        rc = self.proc.wait(timeout=timeout)
        self.err_text = self.stderr()
        if self.master is not None:
            os.close(self.master)
            self.master = None
        return rc

    def tail(self) -> str:
        return f"{self.out.read_text(errors='replace')[-2000:]}\n{self.stderr()[-3000:]}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def start(root: Path) -> Iterator[Callable[..., Lab]]:
    """Start ``lab`` processes; kill the ones a failing test leaves behind."""
    started: list[Lab] = []

    def run(args: list[str], cache: Path, out: Path, tty: bool = False) -> Lab:
        started.append(Lab(args, root, cache, out, tty))
        return started[-1]

    yield run
    for p in started:
        p.kill()


def last_line(text: str) -> str:
    """The last non-empty line of terminal output (a progress bar redraws with ``\\r``)."""
    return [s.strip() for s in re.split(r"[\r\n]", text) if s.strip()][-1]


# --- 1. interruptions ---------------------------------------------------------------------
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_while_training_saves_records_interrupted_and_a_rerun_resumes(
    start, root: Path, tmp_path: Path, signum: signal.Signals
):
    cache, run_dir = tmp_path / "cache", tmp_path / "run"
    args = ["run", *tiny(train__max_steps=24, train__save_every=2), f"hydra.run.dir={run_dir}"]
    p = start(args, cache, tmp_path / "first")
    p.wait_for("a saved training state", lambda: list(cache.glob("checkpoints/*/state.pt")))
    p.proc.send_signal(signum)
    assert p.finish() == 128 + signum

    err = p.stderr()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    line = last_line(err)
    assert sum("interrupted" in s for s in re.split(r"[\r\n]", err)) == 1, err
    found = TRAINING_LINE.match(line)
    assert found, err
    step, saved = int(found[1]), int(found[2])
    assert 2 <= step < 24 and saved == step  # the state of the step it stopped at
    results = load_results(run_dir)
    assert results["status"] == "interrupted" and results["error"] == line
    assert read_results(run_dir) is None  # never taken for a completed run
    state = torch.load(next(cache.glob("checkpoints/*/state.pt")), weights_only=True)
    assert state["step"] == step
    assert not list(cache.glob("checkpoints/*/model.pt"))
    if signum == signal.SIGINT:
        return  # the rerun is the same after either signal

    again = ok(lab(args, root, cache))
    assert f"resuming training at step {step} " in again.stdout
    results = load_results(run_dir)
    assert results["status"] == "completed" and results["train"]["steps"] == 24


def test_a_signal_while_decoding_says_so_and_a_rerun_decodes_again(
    start, root: Path, trained: Path, tmp_path: Path
):
    run_dir = tmp_path / "run"
    slow = tiny(
        eval__split="valid",  # 50 sentences, one per batch, each at least 30 tokens long
        eval__limit=None,
        eval__batch_size=1,
        search__beam_size=16,
        search__min_len=30,
    )
    args = ["run", *slow, f"hydra.run.dir={run_dir}"]
    p = start(args, trained, tmp_path / "first", tty=True)
    # the bar on a terminal, counting sentences per second
    bar = re.compile(r"decode: .*/50 \[.*[0-9](sent/s|s/sent)")
    p.wait_for("the decoding bar", lambda: bar.search(p.stderr()))
    p.proc.send_signal(signal.SIGTERM)
    assert p.finish() == 128 + signal.SIGTERM

    err = p.stderr()
    assert "Traceback" not in err and last_line(err) == DECODING_LINE, err
    results = load_results(run_dir)
    assert results["status"] == "interrupted" and results["error"] == DECODING_LINE
    assert not (run_dir / "predictions.jsonl").exists()

    again = ok(lab(args, root, trained))
    assert "skipping" not in again.stdout and "training" not in again.stdout
    results = load_results(run_dir)
    assert results["status"] == "completed" and results["n_examples"] == 50


# --- in-process training: what the bar and the signals see step by step ------------------
def tiny_trainer(tmp_path: Path, settings: TrainSettings, log=None) -> Trainer:
    from lab.data import Pair
    from lab.registry import MODELS

    torch.manual_seed(0)
    pairs = [Pair(i, (4 + i % 5, 5, 6, 2), (7, 8 + i % 3, 2)) for i in range(40)]
    args = dict(d_model=16, n_heads=2, enc_layers=1, dec_layers=1, d_ff=32)
    model = MODELS.build("transformer", 12, 12, **args)
    return Trainer(model, pairs, pairs[:4], settings, 0, torch.device("cpu"), tmp_path, log)


@pytest.fixture
def sigterm_guard() -> Iterator[None]:
    """A SIGTERM this test sends itself fails the test, unless training handles it first."""

    def fail(signum: int, frame: object) -> None:
        raise AssertionError("SIGTERM reached the test: training did not handle it")

    previous = signal.signal(signal.SIGTERM, fail)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_the_first_signal_waits_for_the_end_of_the_step_and_saves_it(
    tmp_path: Path, one_thread, sigterm_guard
):
    def log(metrics: dict, step: int) -> None:  # in the middle of a step's work
        if step >= 7:
            os.kill(os.getpid(), signal.SIGTERM)

    s = TrainSettings(max_steps=40, max_epochs=0, batch_tokens=32, save_every=5, eval_every=7)
    trainer = tiny_trainer(tmp_path, s, log)
    with pytest.raises(Interrupted) as stop:
        trainer.run()
    assert stop.value.signum == signal.SIGTERM and stop.value.exit_status == 143
    assert str(stop.value) == (
        "interrupted at step 7; saved at step 7; rerun the same command to resume"
    )
    assert torch.load(tmp_path / "state.pt", weights_only=True)["step"] == 7
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # the guard is back


def test_a_second_signal_stops_at_once_with_the_last_saved_step(
    tmp_path: Path, one_thread, sigterm_guard
):
    def log(metrics: dict, step: int) -> None:
        if step >= 7:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)

    s = TrainSettings(max_steps=40, max_epochs=0, batch_tokens=32, save_every=5, eval_every=7)
    with pytest.raises(Interrupted) as stop:
        tiny_trainer(tmp_path, s, log).run()
    assert str(stop.value) == (
        "interrupted at step 7; saved at step 5; rerun the same command to resume"
    )
    assert torch.load(tmp_path / "state.pt", weights_only=True)["step"] == 5


# --- 2. the training bar ------------------------------------------------------------------
def test_the_training_bar_knows_its_total_from_epochs_and_shows_an_eta(
    tmp_path: Path, one_thread, capsys
):
    from lab.data import token_batches

    s = TrainSettings(max_steps=0, max_epochs=3, batch_tokens=32, save_every=0)
    trainer = tiny_trainer(tmp_path, s)
    per_epoch = len(token_batches(trainer.train_pairs, 32, seed=1))
    total = 3 * per_epoch
    assert trainer.run()["steps"] == total
    err = capsys.readouterr().err
    assert f"| 0/{total} [00:00<?, ?step/s]" in err  # a total, and room for the ETA
    assert f"| {total}/{total} [" in err


def test_the_training_bar_total_is_the_nearer_of_max_steps_and_epochs(
    tmp_path: Path, one_thread, capsys
):
    s = TrainSettings(max_steps=5, max_epochs=3, batch_tokens=32, save_every=0)
    assert tiny_trainer(tmp_path, s).run()["steps"] == 5
    assert "| 5/5 [" in capsys.readouterr().err


# --- 3. threads ---------------------------------------------------------------------------
def timed_run(root: Path, cache: Path, run_dir: Path, **changes: object):
    """A tiny run that records its torch thread count (``lab.callbacks.JobTimer``), started
    where torch's own default would be 2 threads; one sentence decoded."""
    args = [*tiny(eval__limit=1, **changes), f"hydra.run.dir={run_dir}"]
    timer = "+hydra.callbacks.timer._target_=lab.callbacks.JobTimer"
    proc = ok(lab(["run", *args, timer], root, cache, OMP_NUM_THREADS="2"))
    return proc, json.loads((run_dir / "job_timing.json").read_text())["torch_threads"]


def test_a_job_uses_one_thread_unless_threads_says_otherwise(root, trained, tmp_path):
    proc, threads = timed_run(root, trained, tmp_path / "default", threads=None)
    assert threads == 1
    assert "training" not in proc.stdout  # the checkpoint trained with threads=1: same key
    assert load_results(tmp_path / "default")["config"]["threads"] == 0

    model = next(trained.glob("checkpoints/*/model.pt"))
    proc, threads = timed_run(root, trained, tmp_path / "two", threads=2, checkpoint=model)
    assert threads == 2


# --- 4. sacreBLEU's tokenization warning --------------------------------------------------
def toy_mt_references(root: Path) -> list[list[str]]:
    from lab.registry import TASKS

    data = root / "toy-data"
    task = TASKS.build("toy_mt", data_dir=data, cache_dir=data, n_test=300)
    return [list(ex.refs) for ex in task.examples("test")]


def test_toy_mt_bleu_raises_no_tokenization_warning(root, caplog):
    """What a run on toy_mt scores once its model translates well: the task's own text. (A
    tiny model's outputs seldom end in " .", so a tiny run would not meet the check.)"""
    from lab.metrics import compute_metrics

    refs = toy_mt_references(root)
    hyps = [r[0] for r in refs]
    assert sum(h.endswith(" .") for h in hyps) >= 100  # what sacreBLEU's check counts
    with caplog.at_level(logging.WARNING, logger="sacrebleu"):
        metrics = compute_metrics(["bleu", "chrf", "ter"], hyps, refs)
    assert "detokenize" not in caplog.text
    assert metrics["bleu"] == pytest.approx(100.0) and metrics["bleu_tok_lc"] == pytest.approx(100)
    assert "tok:13a" in metrics["bleu_signature"]


def test_tokenized_output_against_detokenized_references_still_warns(root, caplog):
    from lab.metrics import compute_metrics

    refs = [[r[0].removesuffix(" .") + "."] for r in toy_mt_references(root)]
    hyps = [r[0].removesuffix(".") + " ." for r in refs]
    with caplog.at_level(logging.WARNING, logger="sacrebleu"):
        compute_metrics(["bleu"], hyps, refs)
    assert "forgot to detokenize" in caplog.text


def test_a_bare_lab_run_is_the_quickstart_and_says_so(capsys):
    from lab.app import CONF_DIR
    from lab.cli import bare_run
    from lab.overrides import check_overrides

    assert bare_run([]) == ["+experiment=quickstart"]
    assert "running the quickstart (+experiment=quickstart)" in capsys.readouterr().out
    assert bare_run(["search=greedy"]) == ["search=greedy"]  # any override: the config as given
    assert capsys.readouterr().out == ""
    check_overrides(bare_run([]), CONF_DIR)  # composes: nothing misspelled in the rewrite
