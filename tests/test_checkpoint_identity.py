"""A checkpoint decodes only with the tokenizer it was trained with: it carries the
SentencePiece model's hash and vocabulary size, and ``checkpoint=`` with another tokenizer is
one line naming both. Errors about a checkpoint never advise deleting anything but the exact
cache entry at fault, and a file that is not a checkpoint is called that.

Every ``lab`` here is a real process on the tiny model (``tests.conftest``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import torch

from lab.results import read_results
from tests.helpers.lab_process import lab, ok, tiny


def one_error_line(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode != 0, proc.stdout[-2000:]
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def checkpoint(cache: Path) -> Path:
    """The module's first checkpoint (the ``trained`` fixture's), by age."""
    return min(cache.glob("checkpoints/*/model.pt"), key=lambda p: p.stat().st_mtime)


def test_a_checkpoint_records_its_tokenizer(trained):
    ckpt = torch.load(checkpoint(trained), weights_only=True)
    assert len(ckpt["tokenizer"]["sha256"]) == 16
    assert ckpt["tokenizer"]["vocab_size"] == 200


def test_a_checkpoint_with_another_tokenizer_of_the_same_size_is_refused(root, trained, tmp_path):
    path = checkpoint(trained)
    want = torch.load(path, weights_only=True)["tokenizer"]["sha256"]
    run_dir = tmp_path / "r"
    args = [*tiny(), "task.seed=5", f"checkpoint={path}", f"hydra.run.dir={run_dir}"]
    line = one_error_line(lab(["run", *args], root, trained), "tokenizer", want)
    assert line.count("vocab 200") == 2  # both named, with their sizes
    assert read_results(run_dir) is None


def test_a_checkpoint_with_a_larger_vocabulary_is_refused_not_an_index_error(
    root, trained, tmp_path
):
    path = checkpoint(trained)
    args = [*tiny(task__tokenizer__vocab_size=250), f"checkpoint={path}"]
    proc = lab(["run", *args, f"hydra.run.dir={tmp_path / 'r'}"], root, trained)
    one_error_line(proc, "vocab 200", "vocab 250")


def test_an_old_checkpoint_without_a_fingerprint_is_checked_by_vocabulary_size(
    root, trained, tmp_path
):
    ckpt = torch.load(checkpoint(trained), weights_only=True)
    del ckpt["tokenizer"]
    old = tmp_path / "old.pt"
    torch.save(ckpt, old)
    proc = ok(
        lab(["run", *tiny(), f"checkpoint={old}", f"hydra.run.dir={tmp_path / 'a'}"], root, trained)
    )
    assert "only its vocabulary size" in proc.stdout + proc.stderr
    args = [*tiny(task__tokenizer__vocab_size=250), f"checkpoint={old}"]
    proc = lab(["run", *args, f"hydra.run.dir={tmp_path / 'b'}"], root, trained)
    one_error_line(proc, "200", "250")


# --- advice ----------------------------------------------------------------------------------
def test_a_missing_checkpoint_never_advises_deleting_its_directory(root, trained, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("a user's work")
    proc = lab(["run", *tiny(), f"checkpoint={work / 'nope.pt'}"], root, trained)
    line = one_error_line(proc, "does not exist")
    assert "delete" not in line


def test_a_checkpoint_of_another_model_never_advises_deleting_the_cache_entry(
    root, trained, tmp_path
):
    path = checkpoint(trained)
    proc = lab(["run", *tiny(model__d_model=16), f"checkpoint={path}"], root, trained)
    line = one_error_line(proc, "not the configured model")
    assert "delete" not in line


def test_a_damaged_cache_entry_names_only_that_entry(root, trained, tmp_path):
    args = [*tiny(seed=3, train__max_steps=2), f"hydra.run.dir={tmp_path / 'a'}"]
    ok(lab(["run", *args], root, trained))
    (path,) = [p for p in trained.glob("checkpoints/*/model.pt") if p != checkpoint(trained)]
    path.write_bytes(b"PK\x03\x04 broken")
    proc = lab(
        ["run", *tiny(seed=3, train__max_steps=2), f"hydra.run.dir={tmp_path / 'b'}"], root, trained
    )
    line = one_error_line(proc, f"delete the cache entry {path.parent} ")
    assert line.count("delete") == 1


def test_a_plain_text_file_is_not_called_tampered(root, trained, tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("these are my notes, not a model\n")
    proc = lab(["run", *tiny(), f"checkpoint={text}"], root, trained)
    line = one_error_line(proc, "not a torch checkpoint")
    assert "tampered" not in line and "Python objects" not in line
