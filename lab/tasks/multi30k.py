"""Multi30k task 1 (Elliott et al. 2016): image captions in English, German, French and Czech.

Files are the upstream raw ones, ``<split>.<lang>.gz`` (one caption per line, line i of every
language is the same caption), looked for in ``<data_dir>/multi30k/`` and then in
``<cache_dir>/data/multi30k/``. A missing file is downloaded from the ``multi30k/dataset``
repository at a fixed commit (``BASE_URL``; ``LAB_MULTI30K_URL`` overrides it) into the data
directory, or into the cache when the data directory is read-only.

A download from ``BASE_URL`` must have the sha256 recorded in ``SHA256``, or it is refused and
nothing is saved. The hashes are those of the files at that commit (train, val and
test_2016_flickr in all four languages); the 2017 and 2018 test files have no recorded hash and
rely on the pinned commit alone. A URL set through ``LAB_MULTI30K_URL`` is the user's own source
(a mirror, another version) and is not checked, nor are files already in the data directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lab.download import ChecksumError, DownloadError, download, download_root, locate
from lab.errors import LabError
from lab.registry import TASKS
from lab.tasks.base import Example, Task, read_lines, resolve_options, unknown_split
from lab.tasks.constraints import split_constraints

LANGS = ("en", "de", "fr", "cs")
ALL = frozenset(LANGS)
NO_CS = frozenset({"en", "de", "fr"})
# Which languages upstream has for each split (Czech was added for 2016 and 2018 only).
SPLIT_LANGS: dict[str, frozenset[str]] = {
    "train": ALL,
    "val": ALL,
    "test_2016_flickr": ALL,
    "test_2017_flickr": NO_CS,
    "test_2017_mscoco": NO_CS,
    "test_2018_flickr": ALL,
}
URL_ENV = "LAB_MULTI30K_URL"
# The raw files at a fixed commit of github.com/multi30k/dataset (a branch would move under us).
COMMIT = "a3d2e0d26b56f3846f66a952536ffed4e401d05a"
BASE_URL = f"https://raw.githubusercontent.com/multi30k/dataset/{COMMIT}/data/task1/raw"
# sha256 of the files at BASE_URL, by file name.
SHA256: dict[str, str] = {
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "train.fr.gz": "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c",
    "train.cs.gz": "a65adb8b32e3bc664f21ecba7a6e7f6950fd1f405e135f7c312faabdb6255077",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "val.fr.gz": "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9",
    "val.cs.gz": "b63226e05c4bd5dd6a42897d74b86a1b9d2c31498252c572b1ea7f7996927fcc",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
    "test_2016_flickr.fr.gz": "6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90",
    "test_2016_flickr.cs.gz": "200a4a74cc9560f051924abb9803be008d1908d77f747e9141aeb86dfd2797f1",
}


@TASKS.register("multi30k")
class Multi30k(Task):
    """Multi30k task 1 caption translation between en, de, fr and cs (downloaded if missing).

    Options: ``src`` (de) and ``tgt`` (en), each one of en, de, fr, cs; ``lm`` (false): true
    makes every source empty, so a model learns p(target), a target-side language model (a
    ``decoder_only`` for ``model=fusion`` or rerank's ``lm`` scorer); ``constraints_path``, a
    side file of per-example output constraints for ``constraints_split`` (test_2016_flickr),
    as for task ``parallel``: they change the decoding, not the training. Both directions of a
    pair and its LMs share one tokenizer (``tokenizer_task``). Splits: train, val,
    test_2016_flickr, test_2017_flickr, test_2017_mscoco, test_2018_flickr (the 2017 ones have
    no cs side).
    """

    default_metrics = ("bleu", "chrf", "ter")
    train_split = "train"
    valid_split = "val"
    test_split = "test_2016_flickr"
    base_url = BASE_URL
    DEFAULTS: dict[str, Any] = {
        "src": "de",
        "tgt": "en",
        "lm": False,
        "constraints_path": None,
        "constraints_split": "test_2016_flickr",
    }

    def __init__(self, data_dir: Any, cache_dir: Any, seed: int = 0, **options: Any) -> None:
        opts = resolve_options("multi30k", options, self.DEFAULTS)
        for side in ("src", "tgt"):
            if opts[side] not in LANGS:
                raise LabError(
                    f"multi30k option {side}={opts[side]!r} is not a Multi30k language;"
                    f" valid: {', '.join(LANGS)}"
                )
        if opts["src"] == opts["tgt"]:
            raise LabError(f"multi30k src and tgt are both '{opts['src']}'; set different ones")
        super().__init__(data_dir, cache_dir, seed, **opts)
        self.src, self.tgt = opts["src"], opts["tgt"]
        if not isinstance(opts["lm"], bool):
            raise LabError(f"multi30k option lm={opts['lm']!r}; valid: true, false")
        self.lm = opts["lm"]
        self.constraints_path = opts["constraints_path"]
        self.constraints_split = str(opts["constraints_split"])

    @property
    def url(self) -> str:
        """Base URL of the raw files (``LAB_MULTI30K_URL`` if set)."""
        return os.environ.get(URL_ENV) or self.base_url

    @property
    def roots(self) -> list[Path]:
        """Where the files are looked for, in order."""
        return [self.data_dir / "multi30k", self.cache_dir / "data" / "multi30k"]

    def splits(self) -> list[str]:
        return [s for s, langs in SPLIT_LANGS.items() if {self.src, self.tgt} <= langs]

    def signature(self) -> dict[str, Any]:
        # The files are fixed upstream, so the seed does not change the data.
        sig = {"name": type(self).__name__, "src": self.src, "tgt": self.tgt}
        return {**sig, "lm": True} if self.lm else sig

    def tokenizer_task(self) -> Multi30k:
        """The pair in alphabetical order (de-en for en->de too), not an LM: one tokenizer for
        both directions and the LMs of a pair, trained on the same text in the same order."""
        first, second = sorted((self.src, self.tgt))
        return Multi30k(self.data_dir, self.cache_dir, self.seed, src=first, tgt=second)

    def examples(self, split: str) -> list[Example]:
        self._check_split(split)
        src = None if self.lm else read_lines(self.path(split, self.src))  # source first
        tgt = read_lines(self.path(split, self.tgt))
        src = [""] * len(tgt) if src is None else src
        if len(src) != len(tgt):
            raise LabError(
                f"multi30k {split}: {len(src)} {self.src} lines but {len(tgt)} {self.tgt} lines;"
                f" delete the damaged file (in {self.roots[0]} or {self.roots[1]}) to fetch it anew"
            )
        cons = split_constraints(
            self.constraints_path, split, self.constraints_split, len(src), self.data_dir
        )
        rows = enumerate(zip(src, tgt, cons, strict=True))
        return [
            Example(f"{split}-{i}", s.strip(), t.strip(), (t.strip(),), c) for i, (s, t, c) in rows
        ]

    def _check_split(self, split: str) -> None:
        if split not in SPLIT_LANGS:
            raise unknown_split("multi30k", split, self.splits())
        for lang in (self.src, self.tgt):
            if lang not in SPLIT_LANGS[split]:
                have = ", ".join(sorted(SPLIT_LANGS[split]))
                raise LabError(
                    f"multi30k split '{split}' has no '{lang}' side (it exists for {have});"
                    f" splits for {self.src}-{self.tgt}: {', '.join(self.splits())}"
                )

    def path(self, split: str, lang: str) -> Path:
        """The local file of ``split`` in ``lang``, downloaded first if needed."""
        name = f"{split}.{lang}.gz"
        found = locate(name, self.roots)
        if found is not None:
            return found
        url = f"{self.url.rstrip('/')}/{name}"
        where = f"{self.roots[0]} or {self.roots[1]}"
        root = download_root(self.roots)
        if root is None:
            raise LabError(
                f"multi30k file {name} not found in {where}, neither of which is writable;"
                f" download {url} into one of them"
            )
        pinned = self.url.rstrip("/") == self.base_url.rstrip("/")
        try:
            return download(url, root / name, sha256=SHA256.get(name) if pinned else None)
        except ChecksumError as e:
            raise LabError(
                f"multi30k file {name}: download of {url} refused ({e.reason}); it is not the"
                f" published file and nothing was saved; put a copy you trust into"
                f" {self.roots[0]} (files there are used as they are)"
            ) from None
        except DownloadError as e:
            raise LabError(
                f"multi30k file {name} not found in {where} and cannot be downloaded"
                f" ({e.reason}); download {url} into {root}"
            ) from None
