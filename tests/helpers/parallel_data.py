"""Tiny aligned text files for ``task=parallel`` runs of the tiny model."""

from __future__ import annotations

import random
from pathlib import Path

from tests.helpers.lab_process import tiny

WORDS = "the a cat dog sat ran on under mat rug big small red blue house tree".split()


def write_pairs(directory: Path, split: str, n: int, seed: int) -> None:
    """``n`` random word sequences and their reversals as ``<split>.src`` / ``<split>.tgt``."""
    rng = random.Random(seed)
    src = [" ".join(rng.choices(WORDS, k=rng.randint(2, 6))) for _ in range(n)]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{split}.src").write_text("".join(s + "\n" for s in src))
    (directory / f"{split}.tgt").write_text("".join(" ".join(s.split()[::-1]) + "\n" for s in src))


def parallel(data_dir: Path, **changes: object) -> list[str]:
    """The tiny model on ``task=parallel`` reading train/valid/test files from ``data_dir``."""
    drop = {"task__n_train": None, "task__n_valid": None, "task__n_test": None}
    args = tiny(**drop, task__tokenizer__vocab_size=40, train__max_steps=4, **changes)
    files = [
        f"task.{s}_{side}={s}.{side}" for s in ("train", "valid", "test") for side in ("src", "tgt")
    ]
    return ["task=parallel", *files, f"data_dir={data_dir}", *args]
