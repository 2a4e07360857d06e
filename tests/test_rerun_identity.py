"""A completed run is reused only while everything its numbers depend on is unchanged: the
resolved config (the thread count included), the content of the data it decoded and the
identity of its checkpoint. Anything else is one line naming what changed. A forced rerun
validates before it touches the directory and replaces the old run only when it completes.

Every ``lab`` here is a real process on the tiny model (``tests.helpers.lab_process``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lab.results import read_results
from tests.helpers.lab_process import lab, ok, tiny
from tests.helpers.parallel_data import parallel, write_pairs


def one_error_line(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode != 0, proc.stdout[-2000:]
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def data(root: Path) -> Path:
    d = root / "pairs"
    for split, n, seed in (("train", 300, 0), ("valid", 20, 1), ("test", 12, 2)):
        write_pairs(d, split, n, seed)
    return d


def test_a_rerun_with_other_threads_is_refused_not_skipped(root, trained, tmp_path):
    run_dir = tmp_path / "r"
    ok(lab(["run", *tiny(), f"hydra.run.dir={run_dir}"], root, trained))
    proc = lab(["run", *tiny(threads=2), f"hydra.run.dir={run_dir}"], root, trained)
    one_error_line(proc, "threads", "force=true")
    assert "skipping" not in proc.stdout


def test_a_rerun_with_the_same_config_is_still_skipped(root, trained, tmp_path):
    run_dir = tmp_path / "r"
    ok(lab(["run", *tiny(), f"hydra.run.dir={run_dir}"], root, trained))
    proc = ok(lab(["run", *tiny(), f"hydra.run.dir={run_dir}"], root, trained))
    assert "skipping" in proc.stdout


def test_a_rerun_on_another_data_dir_with_other_test_data_is_refused(root, cache, data, tmp_path):
    other = tmp_path / "other"
    for split, n, seed in (("train", 300, 0), ("valid", 20, 1), ("test", 7, 9)):
        write_pairs(other, split, n, seed)
    run_dir = tmp_path / "r"
    first = ok(lab(["run", *parallel(data), f"hydra.run.dir={run_dir}"], root, cache))
    before = read_results(run_dir)
    proc = lab(["run", *parallel(other), f"hydra.run.dir={run_dir}"], root, cache)
    one_error_line(proc, "data", "force=true")
    assert read_results(run_dir) == before
    assert "training" in first.stdout


def test_an_in_place_edit_of_the_training_data_retrains_and_is_not_skipped(root, cache, tmp_path):
    d = tmp_path / "pairs"
    for split, n, seed in (("train", 300, 0), ("valid", 20, 1), ("test", 12, 2)):
        write_pairs(d, split, n, seed)
    run_dir = tmp_path / "r"
    ok(lab(["run", *parallel(d), f"hydra.run.dir={run_dir}"], root, cache))
    tgt = d / "train.tgt"
    text = tgt.read_text()
    tgt.write_text(text.replace("cat", "CAT"))  # the same size, other content
    assert len(tgt.read_text()) == len(text)
    proc = lab(["run", *parallel(d), f"hydra.run.dir={run_dir}"], root, cache)
    one_error_line(proc, "checkpoint", "force=true")
    proc = ok(lab(["run", *parallel(d), f"hydra.run.dir={tmp_path / 'new'}"], root, cache))
    assert "training" in proc.stdout


def test_an_in_place_edit_of_the_test_data_is_refused(root, cache, tmp_path):
    d = tmp_path / "pairs"
    for split, n, seed in (("train", 300, 0), ("valid", 20, 1), ("test", 12, 2)):
        write_pairs(d, split, n, seed)
    run_dir = tmp_path / "r"
    ok(lab(["run", *parallel(d), f"hydra.run.dir={run_dir}"], root, cache))
    src = d / "test.src"
    src.write_text(src.read_text().replace("dog", "cat"))
    proc = lab(["run", *parallel(d), f"hydra.run.dir={run_dir}"], root, cache)
    one_error_line(proc, "decoded data", "force=true")


# --- force=true ----------------------------------------------------------------------------
def test_a_failed_forced_rerun_leaves_the_completed_run_intact(root, trained, tmp_path):
    run_dir = tmp_path / "r"
    ok(lab(["run", *tiny(), f"hydra.run.dir={run_dir}"], root, trained))
    kept = {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}
    kept = {p: b for p, b in kept.items() if ".log" not in p.name}
    bad = ["search=beam", "search.beam_size=0", "force=true"]
    proc = lab(["run", *tiny(), *bad, f"hydra.run.dir={run_dir}"], root, trained)
    one_error_line(proc, "beam_size must be >= 1")
    for path, before in kept.items():
        assert path.read_bytes() == before, path
    assert read_results(run_dir) is not None
    ok(lab(["report", "--export", str(run_dir), "--out", str(tmp_path / "e")], root, trained))


def test_a_forced_rerun_that_completes_replaces_the_run(root, trained, tmp_path):
    run_dir = tmp_path / "r"
    ok(lab(["run", *tiny(), f"hydra.run.dir={run_dir}"], root, trained))
    proc = ok(
        lab(["run", *tiny(eval__limit=4), "force=true", f"hydra.run.dir={run_dir}"], root, trained)
    )
    assert "skipping" not in proc.stdout
    assert read_results(run_dir)["n_examples"] == 4
    assert len((run_dir / "predictions.jsonl").read_text().splitlines()) == 4
    assert "eval.limit=4" in (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert not list(run_dir.glob("*.next*"))


def test_export_refuses_the_predictions_of_a_failed_run(root, trained, tmp_path):
    run_dir = tmp_path / "r"
    ok(lab(["run", *tiny(), f"hydra.run.dir={run_dir}"], root, trained))
    res = json.loads((run_dir / "results.json").read_text())
    (run_dir / "results.json").write_text(
        json.dumps({"status": "failed", "error": "x", "config": res["config"]})
    )
    proc = lab(["report", "--export", str(run_dir)], root, trained)
    one_error_line(proc, "failed", "Rerun")


def test_a_read_only_completed_run_is_skipped_not_refused(root, trained, tmp_path):
    run_dir = tmp_path / "archive"
    ok(lab(["run", *tiny(), f"hydra.run.dir={run_dir}"], root, trained))
    modes = {p: p.stat().st_mode for p in [run_dir, *run_dir.rglob("*")]}
    for p in sorted(modes, key=lambda p: -len(p.parts)):
        p.chmod(modes[p] & ~0o222)
    try:
        proc = ok(lab(["run", *tiny(), f"hydra.run.dir={run_dir}"], root, trained))
        assert "skipping" in proc.stdout
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
