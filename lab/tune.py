"""Fitting a search's settings on the validation split before a run decodes its evaluation
split: ``tune_search`` runs ``Tunable.tune`` (``lab.search.select``; rerank's grid over its
weights) once, with the validation examples' n-best lists and the task's metric of one output
per example. Searches that tune nothing pass through untouched.

The validation split is the task's ``valid_split`` (its first ``tune_limit`` examples), decoded
as the evaluation split is (``lab.evaluate.decode_pairs``: the same batches, sentence keys and
detokenizer); the metric is computed on the detokenized outputs against every reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lab.data import encode_examples
from lab.errors import LabError
from lab.evaluate import decode_pairs
from lab.metrics import compute_metrics
from lab.models.base import DecoderModel
from lab.search.contracts import Search
from lab.search.rng import example_key
from lab.search.select import Tunable, texts
from lab.search.types import Hypothesis
from lab.tasks.base import Task

LOWER_IS_BETTER = ("ter",)  # metrics the tuner minimizes


def tune_search(
    search: Search,
    model: DecoderModel,
    task: Task,
    tokenizer: Any,
    batch_size: int,
    device: torch.device,
) -> dict[str, Any] | None:
    """Tune ``search`` on ``task``'s validation split when it asks to; what it recorded (or
    None when it tunes nothing)."""
    if not isinstance(search, Tunable) or not search.tunes:
        return None
    split = task.valid_split
    examples = list(task.examples(split))[: search.tune_limit]
    if not examples:
        raise LabError(
            f"search.tune needs validation examples, but split {split} of this task has none; "
            "drop search.tune or set search.weights."
        )
    pairs = encode_examples(examples, tokenizer)
    keys = [example_key(ex.id) for ex in examples]
    refs = [list(examples[p.index].refs) for p in pairs]
    text = texts(tokenizer.decode, model.eos_id)
    metric, sign = search.tune_metric, -1.0 if search.tune_metric in LOWER_IS_BETTER else 1.0
    names = metric_names(metric, task, refs)

    def decode(s: Search) -> list[list[Hypothesis]]:
        nbests, _, _ = decode_pairs(model, s, pairs, batch_size, device, keys, tokenizer.decode)
        return [nbests[p.index] for p in pairs]

    def quality(outputs: Sequence[Hypothesis]) -> float:
        return sign * float(compute_metrics(names, [text(h) for h in outputs], refs)[metric])

    model.eval()
    settings = search.tune(decode, quality)
    print(f"tuned on {len(pairs)} {split} examples: {settings}", flush=True)
    return settings


def metric_names(metric: str, task: Task, refs: Sequence[Sequence[str]]) -> list[str]:
    """The metrics to compute for ``metric`` (it alone where the task names it); one the task's
    metrics do not produce is refused in one line, before anything is decoded."""
    names = [metric] if metric in task.default_metrics else list(task.default_metrics)
    values = compute_metrics(names, [refs[0][0]], [list(refs[0])])  # a reference against itself
    numbers = [k for k, v in values.items() if isinstance(v, int | float)]
    if metric not in numbers:
        raise LabError(
            f"search.tune_metric={metric} is not a metric of this task; choose one of "
            f"{', '.join(numbers)}."
        )
    return names
