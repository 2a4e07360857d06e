"""Extractive QA from any SQuAD v1.1-format JSON file (optionally gzipped), as generation.

Each question becomes one example: source ``question: <question> context: <context>``
(whitespace collapsed), target the first gold answer, references every gold answer text (the
SQuAD EM/F1 take the best over them), id the SQuAD question id.

Training on a second file never sees the evaluation paragraphs: a training question whose
paragraph context (or id) is in the evaluation file is dropped, so training on the SQuAD dev set
and evaluating on XQuAD (240 of its paragraphs) measures held-out paragraphs.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.registry import TASKS
from lab.tasks.allowed import DEFAULT_MAX_SPAN, allowed_option, max_span_option, source_spans
from lab.tasks.base import Example, Task, open_text, resolve_options, unknown_split

# Tried in order under the data directory when ``path`` is not set.
DEFAULT_PATHS = (
    "squad/dev-v1.1.json",
    "squad/dev-v1.1.json.gz",
    "squad/dev-v1.1.reconstructed.json.gz",
)
EVAL_SPLITS = ("eval", "test")  # one file: test is another name for eval
VALID_FRACTION = 0.05  # of the training paragraphs, held out to validate on (with train_path)
CONTEXT = " context: "  # separates question and context in the source


def squash(text: str) -> str:
    """``text`` with runs of whitespace (newlines included) turned into single spaces."""
    return " ".join(text.split())


def load_squad(path: Path) -> list[Example]:
    """The questions of a SQuAD v1.1 JSON file, in file order."""
    try:
        with open_text(path) as f:
            data = json.load(f)
        return _examples(data, path)
    except (OSError, ValueError, KeyError, TypeError) as e:
        reason = f"missing field {e}" if isinstance(e, KeyError) else _one_line(e)
        raise LabError(
            f"{path} is not a readable SQuAD v1.1 JSON file ({reason}); check task.path"
        ) from None


def contexts(path: Path) -> set[str]:
    """The (whitespace-squashed) paragraph contexts of a SQuAD v1.1 JSON file."""
    with open_text(path) as f:
        data = json.load(f)
    return {squash(p["context"]) for a in data["data"] for p in a["paragraphs"]}


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _examples(data: dict[str, Any], path: Path) -> list[Example]:
    out: list[Example] = []
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            context = squash(paragraph["context"])
            for qa in paragraph["qas"]:
                answers = tuple(a["text"] for a in qa.get("answers", []))
                if not answers:
                    raise LabError(
                        f"{path}: question {qa.get('id')} has no answer (SQuAD v2?);"
                        " only SQuAD v1.1 files with answers are supported"
                    )
                src = f"question: {squash(qa['question'])}{CONTEXT}{context}"
                out.append(Example(str(qa["id"]), src, answers[0], answers))
    return out


@TASKS.register("squad")
class SQuAD(Task):
    """Extractive QA from a SQuAD v1.1-format JSON file (answers generated, scored EM/F1).

    Options: ``path`` (the evaluation file; default: the first of squad/dev-v1.1.json[.gz],
    squad/dev-v1.1.reconstructed.json.gz found in the data directory), ``train_path``
    (optional training file) and ``allowed`` (``source_spans``: each answer must be a span of
    at most ``max_span`` words of its paragraph, enforced by ``search.processors=[{name:
    trie}]``; ``lab.tasks.allowed``; not in conf/task/squad.yaml: ``+task.allowed=...``).
    Relative paths are resolved against the data directory, then the working directory.
    Splits: eval (also called test) and, with ``train_path``, train (minus every question on a
    paragraph of the evaluation file) and valid (the questions on the last 5% of the remaining
    training paragraphs, held out of train): early stopping never looks at the evaluation
    file. Without ``train_path`` valid is the evaluation file (nothing trains).
    """

    default_metrics = ("squad",)
    train_split = "train"
    valid_split = "valid"
    test_split = "eval"
    DEFAULTS: dict[str, Any] = {
        "path": None,
        "train_path": None,
        "allowed": None,
        "max_span": DEFAULT_MAX_SPAN,
    }

    def __init__(self, data_dir: Any, cache_dir: Any, seed: int = 0, **options: Any) -> None:
        opts = resolve_options("squad", options, self.DEFAULTS)
        opts["allowed"] = allowed_option("squad", opts["allowed"], ("source_spans",))
        opts["max_span"] = max_span_option("squad", opts["max_span"])
        super().__init__(data_dir, cache_dir, seed, **opts)

    def splits(self) -> list[str]:
        return [*EVAL_SPLITS, "valid", *(["train"] if self.options["train_path"] else [])]

    def resolve(self, value: str | Path, option: str) -> Path:
        """An existing file for ``value``: absolute, or under the data dir, or the cwd."""
        path = Path(value).expanduser()
        candidates = [path] if path.is_absolute() else [self.data_dir / path, Path.cwd() / path]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        tried = " or ".join(str(c) for c in candidates)
        raise LabError(f"squad {option} file not found: {tried}; set task.{option} to a file")

    @cached_property
    def eval_path(self) -> Path:
        if self.options["path"]:
            return self.resolve(self.options["path"], "path")
        for rel in DEFAULT_PATHS:
            if (self.data_dir / rel).is_file():
                return self.data_dir / rel
        raise LabError(
            f"no SQuAD file found ({', '.join(DEFAULT_PATHS)} under {self.data_dir});"
            " set task.path to a SQuAD v1.1 JSON file (e.g. dev-v1.1.json from the SQuAD site)"
        )

    @cached_property
    def train_path(self) -> Path:
        if not self.options["train_path"]:
            raise LabError(
                "task squad has no train split; set task.train_path to a SQuAD v1.1 JSON file"
            )
        return self.resolve(self.options["train_path"], "train_path")

    def signature(self) -> dict[str, Any]:
        sig: dict[str, Any] = {"name": type(self).__name__, "train_path": None}
        if self.options["train_path"]:
            p = self.train_path
            sig["train_path"] = str(p.resolve())
            sig["train_bytes"] = p.stat().st_size
            sig["minus_eval"] = str(self.eval_path.resolve())  # eval paragraphs are dropped
            sig["valid_fraction"] = VALID_FRACTION  # of the paragraphs, held out of train
        return sig

    def examples(self, split: str) -> list[Example]:
        if split == "train" or (split == "valid" and self.options["train_path"]):
            return self._with_allowed(self._training_part(split))
        if split not in (*EVAL_SPLITS, "valid"):
            raise unknown_split("squad", split, self.splits())
        return self._with_allowed(self._load(self.eval_path))

    def _with_allowed(self, examples: list[Example]) -> list[Example]:
        """``examples`` with the spans of their paragraph as allowed outputs, if asked."""
        if self.options["allowed"] is None:
            return examples
        m = self.options["max_span"]
        return [
            replace(e, constraints=source_spans(e.src.partition(CONTEXT)[2], m)) for e in examples
        ]

    def _training_part(self, split: str) -> list[Example]:
        """The training file's questions on paragraphs the evaluation file does not hold, split
        by paragraph (in file order) into train and the last ``VALID_FRACTION`` for valid."""
        held_out = self._load(self.eval_path)
        ids, ctxs = {e.id for e in held_out}, contexts(self.eval_path)
        usable = [
            e
            for e in self._load(self.train_path)
            if e.id not in ids and e.src.partition(CONTEXT)[2] not in ctxs
        ]
        paragraphs = list(dict.fromkeys(e.src.partition(CONTEXT)[2] for e in usable))
        valid = set(paragraphs[len(paragraphs) - int(len(paragraphs) * VALID_FRACTION) :])
        return [e for e in usable if (e.src.partition(CONTEXT)[2] in valid) == (split == "valid")]

    def _load(self, path: Path) -> list[Example]:
        cache: dict[Path, list[Example]] = self.__dict__.setdefault("_loaded", {})
        if path not in cache:
            cache[path] = load_squad(path)
        return list(cache[path])
