"""What the generated toy tasks (``toy_mt``, ``toy_qa``) share: size options, three splits drawn
from the seed, sources that never repeat across splits, one reference per example."""

from __future__ import annotations

import random
from abc import abstractmethod
from functools import cached_property
from typing import Any, ClassVar

from lab.tasks.base import Example, Task, int_option, resolve_options, unknown_split


class GeneratedTask(Task):
    """A task generated in memory (no download) by ``generate``; deterministic given ``seed``.

    Options: ``n_train``, ``n_valid``, ``n_test`` (whole numbers; defaults in ``DEFAULTS``).
    The held-out splits are drawn first, each from its own stream
    (``random.Random("<name>:<seed>:<split>")``), so test sources never occur in valid and
    neither occurs in train.
    """

    name: ClassVar[str]  # the registered name, in option errors and the split streams
    DEFAULTS: ClassVar[dict[str, Any]]

    def __init__(self, data_dir: Any, cache_dir: Any, seed: int = 0, **options: Any) -> None:
        opts = resolve_options(self.name, options, self.DEFAULTS)
        opts = {k: int_option(self.name, k, v) for k, v in opts.items()}
        super().__init__(data_dir, cache_dir, seed, **opts)

    @abstractmethod
    def generate(
        self, rng: random.Random, n: int, exclude: set[str] | None = None
    ) -> list[tuple[str, str]]:
        """``n`` (source, target) pairs with distinct sources, none in ``exclude``."""

    def splits(self) -> list[str]:
        return ["train", "valid", "test"]

    @cached_property
    def _data(self) -> dict[str, list[tuple[str, str]]]:
        # Held-out splits first, each from its own stream, so train can exclude their sources.
        def draw(split: str, exclude: set[str] | None = None) -> list[tuple[str, str]]:
            rng = random.Random(f"{self.name}:{self.seed}:{split}")
            return self.generate(rng, self.options[f"n_{split}"], exclude)

        test = draw("test")
        seen = {s for s, _ in test}
        valid = draw("valid", seen)
        seen |= {s for s, _ in valid}
        train = draw("train", seen)
        return {"train": train, "valid": valid, "test": test}

    def examples(self, split: str) -> list[Example]:
        if split not in self.splits():
            raise unknown_split(self.name, split, self.splits())
        return [
            Example(f"{split}-{i}", src, tgt, (tgt,))
            for i, (src, tgt) in enumerate(self._data[split])
        ]
