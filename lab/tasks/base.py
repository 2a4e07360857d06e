"""What a task provides: named splits of examples, references, and its default metrics."""

from __future__ import annotations

import gzip
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TextIO

from lab.errors import LabError


@dataclass(frozen=True)
class Example:
    """One source with its references.

    ``tgt`` is the training target (the first reference); ``refs`` holds every acceptable
    reference (one for translation, the gold answers for QA). ``constraints``: what its outputs
    must satisfy, as text (``lab.tasks.constraints.TextConstraints``; None: nothing), for the
    searches that accept constraints.
    """

    id: str
    src: str
    tgt: str
    refs: tuple[str, ...]
    constraints: Any = None


class Task(ABC):
    """A source of examples. Subclasses register with ``@TASKS.register(name)``.

    Built as ``Task(data_dir=..., cache_dir=..., seed=..., **options)`` where options are the
    task's own config keys (e.g. ``src``, ``tgt``, ``task_id``). Errors a user can fix (a
    missing file, an unknown split) raise ``LabError`` with one line that names the fix.
    """

    default_metrics: tuple[str, ...] = ("bleu", "chrf", "ter")  # an instance may narrow it
    train_split: ClassVar[str] = "train"
    valid_split: ClassVar[str] = "valid"
    test_split: ClassVar[str] = "test"

    def __init__(self, data_dir: str | Path, cache_dir: str | Path, seed: int = 0, **options: Any):
        self.data_dir = Path(data_dir)
        self.cache_dir = Path(cache_dir)
        self.seed = seed
        self.options = options

    @abstractmethod
    def splits(self) -> list[str]:
        """Names of the splits this task offers."""

    @abstractmethod
    def examples(self, split: str) -> list[Example]:
        """All examples of ``split`` in a fixed order."""

    def signature(self) -> dict[str, Any]:
        """What identifies this task's training data (used in the checkpoint cache key)."""
        return {"name": type(self).__name__, "seed": self.seed, **self.options}

    def tokenizer_task(self) -> Task:
        """The task whose training text the joint tokenizer learns and whose signature keys it:
        this one. A language pair read in either direction, or as a target-side LM, returns one
        task for all, so that its models share token ids (a channel model for reranking, an LM
        for fusion)."""
        return self


# --- helpers shared by the task implementations --------------------------------------------
def resolve_options(
    task: str, options: Mapping[str, Any], defaults: Mapping[str, Any]
) -> dict[str, Any]:
    """``defaults`` updated with ``options``; an option not in ``defaults`` is a ``LabError``.

    Returning every option (defaults included) keeps ``signature()`` the same whether a value
    was given explicitly or left at its default.
    """
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        valid = ", ".join(defaults) or "(none)"
        raise LabError(f"unknown option '{unknown[0]}' for task '{task}'; valid options: {valid}")
    return {**defaults, **options}


def int_option(task: str, name: str, value: Any, minimum: int = 0) -> int:
    """``value`` (an int, or a string of digits) as an int >= ``minimum``, else a ``LabError``."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value)
    if number is None or number < minimum:
        raise LabError(
            f"task '{task}' option {name} must be an integer >= {minimum}, got {value!r}"
        )
    return number


def unknown_split(task: str, split: str, valid: Iterable[str]) -> LabError:
    """The error for a split the task does not have."""
    return LabError(f"task '{task}' has no split '{split}'; valid splits: {', '.join(valid)}")


def open_text(path: str | Path) -> TextIO:
    """Open a UTF-8 text file for reading, decompressing it if its name ends in ``.gz``."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="\n")
    return open(path, encoding="utf-8", newline="\n")


def read_lines(path: str | Path) -> list[str]:
    """The lines of a (possibly gzipped) text file without their line ends.

    A file that cannot be read or decoded (e.g. a damaged download) is a ``LabError``.
    """
    try:
        with open_text(path) as f:
            return [line.rstrip("\r\n") for line in f]
    except (OSError, EOFError, UnicodeDecodeError) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise LabError(f"cannot read {path} ({reason}); replace or delete the file") from None
