"""Multi30k task 1 (Elliott et al. 2016): image captions in English, German, French and Czech.

Files are the upstream raw ones, ``<split>.<lang>.gz`` (one caption per line, line i of every
language is the same caption), looked for in ``<data_dir>/multi30k/`` and then in
``<cache_dir>/data/multi30k/``. A missing file is downloaded from the ``multi30k/dataset``
repository (``LAB_MULTI30K_URL`` overrides the base URL) into the data directory, or into the
cache when the data directory is read-only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lab.download import DownloadError, download, download_root, locate
from lab.errors import LabError
from lab.registry import TASKS
from lab.tasks.base import Example, Task, read_lines, resolve_options, unknown_split

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


@TASKS.register("multi30k")
class Multi30k(Task):
    """Multi30k task 1 caption translation between en, de, fr and cs (downloaded if missing).

    Options: ``src`` (de) and ``tgt`` (en), each one of en, de, fr, cs. Splits: train, val,
    test_2016_flickr, test_2017_flickr, test_2017_mscoco, test_2018_flickr (the 2017 ones have
    no cs side).
    """

    default_metrics = ("bleu", "chrf", "ter")
    train_split = "train"
    valid_split = "val"
    test_split = "test_2016_flickr"
    base_url = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw"
    DEFAULTS: dict[str, Any] = {"src": "de", "tgt": "en"}

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
        return {"name": type(self).__name__, "src": self.src, "tgt": self.tgt}

    def examples(self, split: str) -> list[Example]:
        self._check_split(split)
        src = read_lines(self.path(split, self.src))
        tgt = read_lines(self.path(split, self.tgt))
        if len(src) != len(tgt):
            raise LabError(
                f"multi30k {split}: {len(src)} {self.src} lines but {len(tgt)} {self.tgt} lines;"
                f" delete the damaged file (in {self.roots[0]} or {self.roots[1]}) to fetch it anew"
            )
        pairs = enumerate(zip(src, tgt, strict=True))
        return [Example(f"{split}-{i}", s.strip(), t.strip(), (t.strip(),)) for i, (s, t) in pairs]

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
        try:
            return download(url, root / name)
        except DownloadError as e:
            raise LabError(
                f"multi30k file {name} not found in {where} and cannot be downloaded"
                f" ({e.reason}); download {url} into {root}"
            ) from None
