"""bAbI QA tasks v1.2 (Weston et al. 2015), tasks 1-20, 1k or 10k training questions.

Files ``<stem>_{train,test}.txt`` (or ``.txt.gz``) are looked for in ``<data_dir>/babi/en/``
(``size=1k``) or ``<data_dir>/babi/en-10k/`` (``size=10k``), then under ``<cache_dir>/data``.
When one is missing, the official ``tasks_1-20_v1-2.tar.gz`` is downloaded (``LAB_BABI_URL``
overrides the address) into ``<cache_dir>/downloads`` and its ``en`` and ``en-10k`` files are
extracted into the data directory, or into the cache when the data directory is read-only. Only
regular files with the expected names are extracted, so an archive cannot write elsewhere.
From the official address, every task file with a recorded sha256 (``member_sha256``) must match
it, or nothing of the archive is extracted and the cached archive is deleted; an address set
through ``LAB_BABI_URL`` is the user's own source and is not checked. The official address has
no versioned form, so it cannot be pinned.

As in bAbI, a question sees the statements of its story up to that point (not earlier
questions). Answers keep the bAbI comma format (``football,apple``, ``s,e``).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
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

# sha256 of the task files in the archive, by task id. The archive's address has no version
# and the archive itself has no recorded hash, so its members are checked as they are
# extracted. The hashes are those of the files published unpacked in the GitHub repository
# ethancaballero/Improved-Dynamic-Memory-Networks-DMN-plus, data/tasks_1-20_v1-2/ at commit
# 406d0f033686cc06151493cba111706b6d03d43f. en-10k has the same test files as en; of its train
# files only those of tasks 1, 2, 8 and 19 have a recorded hash (the others are not checked).
# en/<stem>_train.txt
TRAIN_1K_SHA256: dict[int, str] = {
    1: "c64ba9b1a49bbb111ffc4cd2ae4f129d25c012399dd7ade9679eea464b9afb05",
    2: "a4978af5bc0dc30191810e7c9949aaa6eae939ed0f6beb9fcb5f4330c2a27860",
    3: "a6e78019f36a02a7ed71fe6aaded0b563ff09c8deec392931801fcd9c6af4d60",
    4: "c9370502d85fa382f32d1fea2111e817f81ae9e3e79eb2924a1a5392a90417fa",
    5: "086cd59c3ca9677bfac3d6a22ca5853c76a5c1fbae3159c7c4a6aef759a74ec0",
    6: "5a133115ee35d475776df703ff605d145b11effbcdbf7e74861f9d5639246a5a",
    7: "dca03bd91876951c49f1c971c83c9dd55404de60201b7b6435451cf7ddb4751c",
    8: "058604df6f9440458317e8ae685d2b7b84261e1a80b4d6410a9140d16f81bf06",
    9: "0c3b89921af0caea1c4059ee3f7b7f2a88869f924195a428da37820446b8c49f",
    10: "0b7691689447bab05476c5b48c44999b41e747c3978df69c18fdd87b60d6e8b3",
    11: "9468de9a1f256f43dfda693a5d07182d21149a82b65f7c2451c64e9cff5eb138",
    12: "45c2764bb2d3c8f699d35e9d9aa7958fcd96379c6e907116cdf74526c108bb25",
    13: "533a391edbda743e4c99504de88b40cdded5b1d5ef454d1390f0863f748a4cc9",
    14: "b7561cbc624205c9c2fdbb8c843cfa8ad90edd65e78bb223fc6dea8113662df8",
    15: "e856ebfdcce4dd7d617c1d10f985e96a0850c0ca18e9a19a017cb710d135ed3d",
    16: "20121005137e3d4b061a086eb177a456303d5742b764eb8da2d0e480b6af4d28",
    17: "20083bf56ff74f0e7cf5e3e2f8c3905cdb8ef09293c3e8cf7a96ed8b45ae2277",
    18: "18b7dcf52c9a0e87e4e7dd3d65b7e5a630de039645f52a1294197af7481d739d",
    19: "dcb788352a56effb7bea1449128f31cc9c342c8c327b6df2caeee0e379e6ad3a",
    20: "29580ad55fb7b4b29ba014696056cc68f8f347dac3be88470fd692ad60150398",
}
# en/<stem>_test.txt and en-10k/<stem>_test.txt
TEST_SHA256: dict[int, str] = {
    1: "55acf66cef2f6d798e2aa1d056e1ec8f24e910ea9215b639450574321132959b",
    2: "eff93fb9cd81ba02eb765772cf7cc269769ed44ec71cbbbc19cfb16ee5eba0f6",
    3: "17795c977100baf8188f386522ae301b62d6c1a13efc01b3aea781e588b4d57f",
    4: "07f0ca18ddeea9eed4ba6d59e162adcb0ce44815721114b3540d92825509331e",
    5: "ec825c1c8a76e63a31f0d7a7763cd63740e98332fa9bdf246a19068949bd5f97",
    6: "b108b16f1eccbd1c24df6dca2649079a7b2f10af7fd12d4c45a3393802de59e3",
    7: "a74d1f2b91329b2bae814d41cdac2fbdfdf0328562b7d8afa9a0fa576d461e27",
    8: "362a653c821a580fa315a85243b4f03bfa06fa7e0269b6f8e596f8fe6911646a",
    9: "63590aff3f89993db409f0e9a9eb39c2a5b9d5efff99b255d800a891b0044d9f",
    10: "fde8f20ed0b3ba979058ed391a566af34653f23baab5b2793ee37f87ef4e88b7",
    11: "46f3290d0158ce1285a40cd2d793f5a65f86ae5000226e165cbc85a3dfeb2f6f",
    12: "6437718f8f9801ce345869e910b896836cdc6fd2d01dc7b4d2df49730703b4b1",
    13: "76a25b684f23c9cc473d8cd1465506168b9a1ec8891cfc59d0bbd87e6a064990",
    14: "e3f0b19858ffbec3ed1e49076cc4d1295a89ce146c50318b862f13f202b3caf2",
    15: "32b77e117fe9acf5f94906684e3b5206de0108e646c76e1da3e022896ec7ee94",
    16: "4a11e55366f2a5a859b5a81f683ee23801bdbe71ef984e51adb976bd053e8dcf",
    17: "9e1e0250ed4ec1831757fab26c04138f81ea557ebf6976a220db879cbed04bac",
    18: "d34f70eb7228a276fcb3a7854174fe562c5634f4fb454a39fc3d1ad9934be3ef",
    19: "023e391f0d7f79c9e6ae1c46c093e2d0dbd50ab8fbd8965e037a75e3614c20e5",
    20: "bd3bde3788ac14ba0ae095078f7b820fbd2bfa6a34dba9d1d46a34afde9c2729",
}
# en-10k/<stem>_train.txt
TRAIN_10K_SHA256: dict[int, str] = {
    1: "749ea9f7c99070feb2d88c975a254417a0dcc8274add4435ae5ae24c7afc7e9d",
    2: "d4074c0c5d54f70ce2f538056ce2b6ef6a313da336da4245f1a24f1298e37ef3",
    8: "9518da2d3aa5d98bec33335e0d5ba3a22c2bd1929ee679085d37eb50a7652e4a",
    19: "6cfdc6f448e3cf0e3d8a390fa3add461935b033f89ede32aeef30812401ec91e",
}


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
    runs). Splits: train, valid (the last 10% of the training stories) and test.
    """

    default_metrics = ("squad", "babi")
    archive_url = "http://www.thespermwhale.com/jaseweston/babi/" + ARCHIVE_NAME
    DEFAULTS: dict[str, Any] = {
        "task_id": 1,
        "size": "1k",
        "max_facts": 0,
        "facts": False,
        "joint": False,
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
            extract(archive, root, member_sha256() if pinned else None)
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

    def _examples(self, task_id: int, split: str, prefix: str) -> list[Example]:
        tag = f"{split}-t{task_id}" if prefix else split
        return [
            Example(
                f"{tag}-{q.story}-{q.line}",
                source_text(q, self.max_facts, prefix, SEP_PIECE if self.facts else ""),
                q.answer,
                (q.answer,),
            )
            for story in self._stories(task_id, split)
            for q in story
        ]


class ArchiveMismatch(LabError):
    """An archive member whose sha256 is not the recorded one; the archive has been deleted."""

    def __init__(self, archive: Path, member: str, expected: str, got: str) -> None:
        self.member, self.expected, self.got = member, expected, got
        super().__init__(
            f"bAbI archive {archive} is not the published one: {member} has sha256 {got},"
            f" expected {expected}; it was deleted and nothing was extracted"
        )


def extract(archive: Path, root: Path, sha256: Mapping[str, str] | None = None) -> list[Path]:
    """Extract the ``en``/``en-10k`` task files of ``archive`` into ``root/<en|en-10k>/``.

    Member names are matched against a fixed pattern and only regular files are read, so links,
    absolute paths and ``..`` cannot place anything outside ``root``. Files already present are
    kept; each new file is written to a temporary name and renamed into place. ``sha256`` maps
    ``<en|en-10k>/<file name>`` to the hash a member must have: the members are all read and
    checked before any is written, so a mismatch (``ArchiveMismatch``) writes nothing.
    """
    pending: list[tuple[Path, bytes]] = []
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
                    data = source.read()
                    key = f"{match.group(1)}/{match.group(2)}"
                    expected = (sha256 or {}).get(key)
                    got = hashlib.sha256(data).hexdigest()
                    if expected is not None and got != expected:
                        archive.unlink(missing_ok=True)
                        raise ArchiveMismatch(archive, key, expected, got)
                    pending.append((dest, data))
        except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as e:
            archive.unlink(missing_ok=True)
            raise LabError(
                f"bAbI archive {archive} is damaged ({e}); it was removed, run again to re-fetch"
            ) from None
        for dest, data in pending:
            atomic_write_bytes(dest, data)
    return [dest for dest, _ in pending]
