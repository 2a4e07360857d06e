"""Checks of the examples a run decodes against the model that decodes them, made before the
first batch: an example the model cannot read is one line naming that example and the fix,
not an error from deep inside a batch that names neither."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lab.data import Pair
from lab.errors import LabError
from lab.tasks.base import Example


def check_source_lengths(
    model: Any, pairs: Sequence[Pair], examples: Sequence[Example], split: str
) -> None:
    """Refuse a source longer than the model's positions (``model.max_positions``, where the
    architecture has such a limit), naming the first such example of ``split``."""
    limit = getattr(model, "max_positions", None)
    if not isinstance(limit, int):
        return
    for pair in pairs:
        if len(pair.src) > limit:
            example = examples[pair.index]
            raise LabError(
                f"{split} example {example.id} (line {pair.index + 1} of the split) has "
                f"{len(pair.src)} source tokens, more than this model's model.max_positions="
                f"{limit}; leave the line out (or shorten it), or train a model with a larger "
                "model.max_positions."
            )
