"""bAbI QA tasks v1.2 (Weston et al. 2015), tasks 1-20, 1k or 10k training questions.

Files ``<stem>_{train,test}.txt`` (or ``.txt.gz``) are looked for in ``<data_dir>/babi/en/``
(``size=1k``) or ``<data_dir>/babi/en-10k/`` (``size=10k``), then under ``<cache_dir>/data``.
When one is missing, the official ``tasks_1-20_v1-2.tar.gz`` is downloaded (``LAB_BABI_URL``
overrides the address) into ``<cache_dir>/downloads`` and its ``en`` and ``en-10k`` files are
extracted into the data directory, or into the cache when the data directory is read-only. Only
regular files with the expected names are extracted, so an archive cannot write elsewhere.

As in bAbI, a question sees the statements of its story up to that point (not earlier
questions). Answers keep the bAbI comma format (``football,apple``, ``s,e``).
"""

from __future__ import annotations

import gzip
import os
import re
import tarfile
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from filelock import FileLock

from lab.download import DownloadError, download, download_root, locate
from lab.errors import LabError
from lab.io import atomic_write_bytes
from lab.registry import TASKS
from lab.tasks.base import (
    Example,
    Task,
    int_option,
    read_lines,
    resolve_options,
    unknown_split,
)

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


def source_text(q: Question) -> str:
    """The model input: the story so far, then the question."""
    return " ".join((*q.context, q.question))


@TASKS.register("babi")
class BAbI(Task):
    """bAbI QA v1.2 tasks 1-20 (1k or 10k training questions; downloaded if missing).

    Options: ``task_id`` (1..20, default 1), ``size`` (``1k`` or ``10k``). Splits: train,
    valid (the last 10% of the training stories) and test (the official test file).
    """

    default_metrics = ("squad", "babi")
    archive_url = "http://www.thespermwhale.com/jaseweston/babi/" + ARCHIVE_NAME
    DEFAULTS: dict[str, Any] = {"task_id": 1, "size": "1k"}

    def __init__(self, data_dir: Any, cache_dir: Any, seed: int = 0, **options: Any) -> None:
        opts = resolve_options("babi", options, self.DEFAULTS)
        opts["task_id"] = int_option("babi", "task_id", opts["task_id"], minimum=1)
        if opts["task_id"] not in STEMS:
            raise LabError(f"babi task_id must be 1..20, got {opts['task_id']}")
        opts["size"] = str(opts["size"]).lower()
        if opts["size"] not in SIZES:
            raise LabError(f"babi size must be one of {', '.join(SIZES)}, got {opts['size']!r}")
        super().__init__(data_dir, cache_dir, seed, **opts)
        self.task_id, self.size = opts["task_id"], opts["size"]
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
        return {"name": type(self).__name__, "task_id": self.task_id, "size": self.size}

    # --- files --------------------------------------------------------------------------
    def path(self, file_split: str) -> Path:
        """Local file of the ``train`` or ``test`` questions (downloaded first if needed)."""
        name = f"{STEMS[self.task_id]}_{file_split}.txt"
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
        extract(archive, root)

    # --- examples -----------------------------------------------------------------------
    @cached_property
    def _stories(self) -> dict[str, list[list[Question]]]:
        train_path, test_path = self.path("train"), self.path("test")
        train = parse(read_lines(train_path), str(train_path))
        n_valid = max(1, int(len(train) * VALID_FRACTION)) if len(train) > 1 else 0
        return {
            "train": train[: len(train) - n_valid],
            "valid": train[len(train) - n_valid :],
            "test": parse(read_lines(test_path), str(test_path)),
        }

    def examples(self, split: str) -> list[Example]:
        if split not in self.splits():
            raise unknown_split("babi", split, self.splits())
        return [
            Example(f"{split}-{q.story}-{q.line}", source_text(q), q.answer, (q.answer,))
            for story in self._stories[split]
            for q in story
        ]


def extract(archive: Path, root: Path) -> list[Path]:
    """Extract the ``en``/``en-10k`` task files of ``archive`` into ``root/<en|en-10k>/``.

    Member names are matched against a fixed pattern and only regular files are read, so links,
    absolute paths and ``..`` cannot place anything outside ``root``. Files already present are
    kept; each new file is written to a temporary name and renamed into place.
    """
    written: list[Path] = []
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".extract.lock")):
        try:
            with tarfile.open(archive, "r:*") as tar:
                for member in tar:
                    match = _MEMBER.match(member.name)
                    if match is None or not member.isfile():
                        continue
                    dest = root / match.group(1) / match.group(2)
                    if dest.exists():
                        continue
                    source = tar.extractfile(member)
                    if source is None:
                        continue
                    atomic_write_bytes(dest, source.read())
                    written.append(dest)
        except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as e:
            archive.unlink(missing_ok=True)
            raise LabError(
                f"bAbI archive {archive} is damaged ({e}); it was removed, run again to re-fetch"
            ) from None
    return written
