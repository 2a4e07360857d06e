"""Translation from any aligned pair of plain-text files (one sentence per line, or ``.gz``).

Each split is a source file and a target file whose line i are translations of each other.
Splits are given as flat options ``<split>_src`` / ``<split>_tgt`` (e.g.
``test_src=flores200/eng_Latn.devtest test_tgt=flores200/deu_Latn.devtest``); these are the
keys of ``conf/task/parallel.yaml``, set on the command line as ``task.test_src=...
task.test_tgt=...`` (a null value means no such file). In Python, one ``path`` mapping
``{split: {src: file, tgt: file}}`` may give them instead; its entries replace the flat ones of
the same split. Relative paths are resolved against the data directory, then the working
directory. The splits named ``train``, ``valid`` and ``test`` are the ones training and
evaluation use; a pair of FLORES-200 ``devtest`` files or a WMT ``newstest`` pair is therefore
given as the ``test`` split.

``constraints_path``: a side file of per-example output constraints for the split
``constraints_split`` (default ``test``), one JSON line per source line
(``lab.tasks.constraints``), e.g. ``{"prefix": "A man", "include": ["dog"]}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.provenance import file_digest
from lab.registry import TASKS
from lab.tasks.base import Example, Task, read_lines, unknown_split
from lab.tasks.constraints import split_constraints

_FLAT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_-]*)_(src|tgt)$")
OPTION_FORMS = (
    "<split>_src, <split>_tgt (e.g. test_src, test_tgt), path={split: {src, tgt}}, constraints_path"
)


def _split_files(options: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """split -> {"src": file, "tgt": file} from the flat options and/or ``path``."""
    files: dict[str, dict[str, str]] = {}
    for key, value in options.items():
        if key in ("path", "constraints_path", "constraints_split"):
            continue
        match = _FLAT.match(key)
        if match is None:
            raise LabError(f"unknown option '{key}' for task 'parallel'; valid: {OPTION_FORMS}")
        if value is not None:
            files.setdefault(match.group(1), {})[match.group(2)] = str(value)
    mapping = options.get("path") or {}
    if not isinstance(mapping, Mapping):
        raise LabError(f"task 'parallel' option path must map split -> {{src, tgt}}: {mapping!r}")
    for split, pair in mapping.items():
        if not isinstance(pair, Mapping) or set(pair) - {"src", "tgt"}:
            raise LabError(
                f"task 'parallel' path.{split} must be {{src: file, tgt: file}}, got {pair!r}"
            )
        files.setdefault(str(split), {}).update({k: str(v) for k, v in pair.items()})
    for split, pair in files.items():
        for side in ("src", "tgt"):
            if side not in pair:
                raise LabError(
                    f"task 'parallel' split '{split}' has no {side} file; set task.{split}_{side}"
                )
    return files


@TASKS.register("parallel")
class Parallel(Task):
    """Translation from aligned plain-text files, e.g. FLORES-200 devtest or WMT newstest.

    Options: ``<split>_src`` and ``<split>_tgt`` for any split name (``train``, ``valid``,
    ``test`` are the ones training and evaluation use), or ``path={split: {src, tgt}}``;
    ``constraints_path`` attaches per-example constraints to ``constraints_split`` (``test``).
    """

    default_metrics = ("bleu", "chrf", "ter")

    def __init__(self, data_dir: Any, cache_dir: Any, seed: int = 0, **options: Any) -> None:
        self.files = _split_files(options)
        self.constraints_path = options.get("constraints_path")
        self.constraints_split = str(options.get("constraints_split") or self.test_split)
        if not self.files:
            raise LabError(
                "task 'parallel' needs files: set e.g. task.test_src and task.test_tgt"
                " (and task.train_src, task.train_tgt to train)"
            )
        super().__init__(data_dir, cache_dir, seed, **options)

    def splits(self) -> list[str]:
        return list(self.files)

    def resolve(self, value: str) -> Path:
        """An existing file for ``value``: absolute, or under the data dir, or the cwd."""
        path = Path(value).expanduser()
        candidates = [path] if path.is_absolute() else [self.data_dir / path, Path.cwd() / path]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise LabError(f"parallel file not found: {' or '.join(map(str, candidates))}")

    def paths(self, split: str) -> tuple[Path, Path]:
        """(source file, target file) of ``split``."""
        if split not in self.files:
            if split == self.train_split:
                raise LabError(
                    "task 'parallel' has no train split; set task.train_src and task.train_tgt"
                )
            raise unknown_split("parallel", split, self.splits())
        pair = self.files[split]
        return self.resolve(pair["src"]), self.resolve(pair["tgt"])

    def signature(self) -> dict[str, Any]:
        # What is trained on: the train files' content (hashed once per path, size and mtime),
        # so an edit in place retrains and a moved copy does not.
        sig: dict[str, Any] = {"name": type(self).__name__, "train": None}
        if self.train_split in self.files:
            src, tgt = self.paths(self.train_split)
            sig["train"] = [file_digest(p, self.cache_dir) for p in (src, tgt)]
        return sig

    @cached_property
    def _cache(self) -> dict[str, list[Example]]:
        return {}

    def examples(self, split: str) -> list[Example]:
        if split not in self._cache:
            src_path, tgt_path = self.paths(split)
            src, tgt = read_lines(src_path), read_lines(tgt_path)
            if len(src) != len(tgt):
                raise LabError(
                    f"parallel split '{split}': {src_path} has {len(src)} lines but {tgt_path}"
                    f" has {len(tgt)}; the files must be line-aligned"
                )
            cons = self._constraints(split, len(src))
            pairs = enumerate(zip(src, tgt, cons, strict=True))
            self._cache[split] = [
                Example(f"{split}-{i}", s.strip(), t.strip(), (t.strip(),), c)
                for i, (s, t, c) in pairs
            ]
        return list(self._cache[split])

    def _constraints(self, split: str, n_lines: int) -> list[Any]:
        """Each line's constraints (None for every line of a split without a constraints file)."""
        return split_constraints(
            self.constraints_path, split, self.constraints_split, n_lines, self.data_dir
        )
