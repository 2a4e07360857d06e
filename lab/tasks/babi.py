"""bAbI QA tasks v1.2 (Weston et al. 2015), tasks 1-20, 1k or 10k training questions.

Files ``<stem>_{train,test}.txt`` (or ``.txt.gz``) are looked for in ``<data_dir>/babi/en/``
(``size=1k``) or ``<data_dir>/babi/en-10k/`` (``size=10k``), then under ``<cache_dir>/data``.
When one is missing, the official ``tasks_1-20_v1-2.tar.gz`` is downloaded (``LAB_BABI_URL``
overrides the address) into ``<cache_dir>/downloads`` and its ``en`` and ``en-10k`` files are
extracted into the data directory, or into the cache when the data directory is read-only. Only
regular files with the expected names are extracted, so an archive cannot write elsewhere.
From the official address, every task file with a recorded sha256 (``member_sha256``, from the
tables in ``lab.download.babi_sha256``) must match it, or nothing of the archive is extracted
and the cached archive is deleted (``lab.download.archive``); an address set
through ``LAB_BABI_URL`` is the user's own source and is not checked. The official address has
no versioned form, so it cannot be pinned.

As in bAbI, a question sees the statements of its story up to that point (not earlier
questions). Answers keep the bAbI comma format (``football,apple``, ``s,e``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.download import DownloadError, download, download_root, locate
from lab.download.archive import ArchiveMismatch, extract_members
from lab.download.babi_sha256 import TEST_SHA256, TRAIN_1K_SHA256, TRAIN_10K_SHA256
from lab.errors import LabError
from lab.registry import TASKS
from lab.tasks.allowed import allowed_option, story_words
from lab.tasks.base import (
    Example,
    Task,
    int_option,
    read_lines,
    resolve_options,
    unknown_split,
)
from lab.vocab import SEP_PIECE

STEMS = {
    1: "qa1_single-supporting-fact",
    2: "qa2_two-supporting-facts",
    3: "qa3_three-supporting-facts",
    4: "qa4_two-arg-relations",
    5: "qa5_three-arg-relations",
    6: "qa6_yes-no-questions",
    7: "qa7_counting",
    8: "qa8_lists-sets",
    9: "qa9_simple-negation",
    10: "qa10_indefinite-knowledge",
    11: "qa11_basic-coreference",
    12: "qa12_conjunction",
    13: "qa13_compound-coreference",
    14: "qa14_time-reasoning",
    15: "qa15_basic-deduction",
    16: "qa16_basic-induction",
    17: "qa17_positional-reasoning",
    18: "qa18_size-reasoning",
    19: "qa19_path-finding",
    20: "qa20_agents-motivations",
}
SIZES = {"1k": "en", "10k": "en-10k"}
URL_ENV = "LAB_BABI_URL"
ARCHIVE_NAME = "tasks_1-20_v1-2.tar.gz"
# Members worth extracting; the groups become the destination, so nothing else is written.
_MEMBER = re.compile(
    r"^(?:\./)?tasks_1-20_v1-2/(en|en-10k)/(qa\d{1,2}_[a-z-]+_(?:train|test)\.txt)$"
)
VALID_FRACTION = 0.1
ORDERED_ANSWERS = {19}  # path finding: "s,e" is a route, not a set (task 8's lists are sets)


def member_sha256() -> dict[str, str]:
    """The recorded sha256 of the archive's task files, by ``<en|en-10k>/<file name>``."""
    sums = {f"en/{STEMS[i]}_train.txt": h for i, h in TRAIN_1K_SHA256.items()}
    sums |= {f"{d}/{STEMS[i]}_test.txt": h for i, h in TEST_SHA256.items() for d in SIZES.values()}
    sums |= {f"en-10k/{STEMS[i]}_train.txt": h for i, h in TRAIN_10K_SHA256.items()}
    return sums


@dataclass(frozen=True)
class Question:
    story: int  # index of the story in its file
    line: int  # the question's bAbI line id
    context: tuple[str, ...]
    question: str
    answer: str


def parse(lines: list[str], name: str = "bAbI file") -> list[list[Question]]:
    """Stories of a bAbI file, each a list of its questions with their context."""
    stories: list[list[Question]] = []
    statements: list[str] = []
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        head, _, text = raw.partition(" ")
        if not head.isdigit():
            raise LabError(f"{name} line {n} does not start with a line id; re-fetch the file")
        if int(head) == 1:
            stories.append([])
            statements = []
        if not stories:
            raise LabError(f"{name} line {n}: the first story does not start at id 1")
        if "\t" not in text:
            statements.append(text.strip())
            continue
        fields = text.split("\t")
        if len(fields) < 2:
            raise LabError(f"{name} line {n}: a question without an answer; re-fetch the file")
        q = Question(
            len(stories) - 1, int(head), tuple(statements), fields[0].strip(), fields[1].strip()
        )
        stories[-1].append(q)
    return stories


def source_text(q: Question, max_facts: int = 0, prefix: str = "", sep: str = "") -> str:
    """The model input: ``prefix`` (a task token), the story so far (its last ``max_facts``
    statements when that is positive, as MemN2N's memory of 50), then the question; with
    ``sep``, each of these segments is followed by it but the last (``a <sep> b <sep> q?``)."""
    facts = q.context[-max_facts:] if max_facts > 0 else q.context
    return (f" {sep} " if sep else " ").join((*([prefix] if prefix else []), *facts, q.question))


@TASKS.register("babi")
class BAbI(Task):
    """bAbI QA v1.2 tasks 1-20 (1k or 10k training questions; downloaded if missing).

    Options: ``task_id`` (1..20, default 1), ``size`` (``1k`` or ``10k``), ``max_facts``
    (keep the last N statements of a story, 0: all), ``facts`` (separate the statements, the
    task token and the question with ``<sep>``, for ``model.facts=true``) and ``joint``
    (train and validate on all 20 tasks at once, each input opened by its task token such as
    ``task7``; the test split stays task ``task_id``'s, so one trained model serves the 20 test
    runs). ``allowed=story_words``: each answer must be one word of the statements the model
    reads (``search.processors=[{name: trie}]``; ``lab.tasks.allowed``; ``+task.allowed=...``).
    Splits: train, valid (the last 10% of the training stories) and test.
    """

    default_metrics = ("squad", "babi")
    archive_url = "http://www.thespermwhale.com/jaseweston/babi/" + ARCHIVE_NAME
    DEFAULTS: dict[str, Any] = {
        "task_id": 1,
        "size": "1k",
        "max_facts": 0,
        "facts": False,
        "joint": False,
        "allowed": None,
    }

    def __init__(self, data_dir: Any, cache_dir: Any, seed: int = 0, **options: Any) -> None:
        opts = resolve_options("babi", options, self.DEFAULTS)
        opts["task_id"] = int_option("babi", "task_id", opts["task_id"], minimum=1)
        if opts["task_id"] not in STEMS:
            raise LabError(f"babi task_id must be 1..20, got {opts['task_id']}")
        opts["size"] = str(opts["size"]).lower()
        if opts["size"] not in SIZES:
            raise LabError(f"babi size must be one of {', '.join(SIZES)}, got {opts['size']!r}")
        opts["max_facts"] = int_option("babi", "max_facts", opts["max_facts"])
        opts["allowed"] = allowed_option("babi", opts["allowed"], ("story_words",))
        for flag in ("facts", "joint"):
            if not isinstance(opts[flag], bool):
                raise LabError(f"babi {flag} must be true or false, got {opts[flag]!r}")
        super().__init__(data_dir, cache_dir, seed, **opts)
        self.task_id, self.size = opts["task_id"], opts["size"]
        self.max_facts, self.facts, self.joint = opts["max_facts"], opts["facts"], opts["joint"]
        if self.task_id in ORDERED_ANSWERS:
            self.default_metrics = ("squad", "babi_ordered")
        self.subdir = SIZES[self.size]

    @property
    def url(self) -> str:
        return os.environ.get(URL_ENV) or self.archive_url

    @property
    def roots(self) -> list[Path]:
        """Directories holding ``babi/en`` and ``babi/en-10k``, in search order."""
        return [self.data_dir / "babi", self.cache_dir / "data" / "babi"]

    def splits(self) -> list[str]:
        return ["train", "valid", "test"]

    def signature(self) -> dict[str, Any]:
        """What the training data depends on: a joint task trains on all 20 tasks whatever its
        ``task_id``, so the 20 test runs share one tokenizer and one trained model."""
        sig: dict[str, Any] = {"name": type(self).__name__, "size": self.size}
        if self.joint:
            sig["joint"] = True
        else:
            sig["task_id"] = self.task_id
        if self.max_facts:
            sig["max_facts"] = self.max_facts
        if self.facts:
            sig["facts"] = True
        return sig

    # --- files --------------------------------------------------------------------------
    def path(self, file_split: str, task_id: int | None = None) -> Path:
        """Local file of the ``train`` or ``test`` questions of ``task_id`` (default: this
        task's), downloaded first if needed."""
        name = f"{STEMS[task_id or self.task_id]}_{file_split}.txt"
        found = self._locate(name)
        if found is None:
            self._fetch(name)
            found = self._locate(name)
        if found is None:
            raise LabError(
                f"bAbI file {self.subdir}/{name} is not in {self.url} either;"
                f" put it into {self.roots[0] / self.subdir}{self._size_hint()}"
            )
        return found

    def _locate(self, name: str) -> Path | None:
        return locate(f"{self.subdir}/{name}", self.roots) or locate(
            f"{self.subdir}/{name}.gz", self.roots
        )

    def _size_hint(self) -> str:
        return " (or use task.size=1k)" if self.size == "10k" else ""

    def _fetch(self, name: str) -> None:
        where = " or ".join(str(r / self.subdir) for r in self.roots)
        root = download_root(self.roots)
        fix = f"download {self.url} and extract its {self.subdir}/ files into "
        if root is None:
            raise LabError(
                f"bAbI file {name} not found in {where}, neither of which is writable;"
                f" {fix}{self.roots[-1] / self.subdir}{self._size_hint()}"
            )
        try:
            archive = download(self.url, self.cache_dir / "downloads" / ARCHIVE_NAME)
        except DownloadError as e:
            raise LabError(
                f"bAbI file {name} not found in {where} and cannot be downloaded ({e.reason});"
                f" {fix}{root / self.subdir}{self._size_hint()}"
            ) from None
        pinned = self.url == self.archive_url
        try:
            sums = member_sha256() if pinned else None
            extract_members(archive, root, _MEMBER, sums, what="bAbI archive")
        except ArchiveMismatch as e:
            raise LabError(
                f"bAbI archive {self.url} is not the published one: {e.member} has sha256"
                f" {e.got}, expected {e.expected}; the cached {archive} was deleted and nothing"
                f" was extracted; put bAbI files you trust into {root / self.subdir}"
                " (files there are used as they are)"
            ) from None

    # --- examples -----------------------------------------------------------------------
    def _stories(self, task_id: int, split: str) -> list[list[Question]]:
        """The stories of one task's split (valid: the last 10% of its training stories)."""
        if split == "test":
            path = self.path("test", task_id)
            return parse(read_lines(path), str(path))
        path = self.path("train", task_id)
        train = parse(read_lines(path), str(path))
        n_valid = max(1, int(len(train) * VALID_FRACTION)) if len(train) > 1 else 0
        return train[len(train) - n_valid :] if split == "valid" else train[: len(train) - n_valid]

    def examples(self, split: str) -> list[Example]:
        if split not in self.splits():
            raise unknown_split("babi", split, self.splits())
        if not self.joint:
            return self._examples(self.task_id, split, "")
        if split == "test":
            return self._examples(self.task_id, split, f"task{self.task_id}")
        return [ex for t in STEMS for ex in self._examples(t, split, f"task{t}")]

    def _allowed(self, q: Question) -> Any:
        """The words of the statements the model reads, if ``allowed=story_words``."""
        facts = q.context[-self.max_facts :] if self.max_facts > 0 else q.context
        return story_words(facts) if self.options["allowed"] else None

    def _examples(self, task_id: int, split: str, prefix: str) -> list[Example]:
        tag = f"{split}-t{task_id}" if prefix else split
        return [
            Example(
                f"{tag}-{q.story}-{q.line}",
                source_text(q, self.max_facts, prefix, SEP_PIECE if self.facts else ""),
                q.answer,
                (q.answer,),
                self._allowed(q),
            )
            for story in self._stories(task_id, split)
            for q in story
        ]
