"""Corpus metrics, registered in ``lab.registry.METRICS`` by importing their modules.

``compute_metrics(names, hyps, refs)`` runs several metrics and merges their key/value dicts.
"""

from __future__ import annotations

from collections.abc import Iterable

from lab.metrics import length, qa, translation  # noqa: F401  (registers the metrics)
from lab.metrics.base import Metric, MetricValues, check_inputs
from lab.registry import METRICS

__all__ = ["Metric", "MetricValues", "check_inputs", "compute_metrics"]


def compute_metrics(names: Iterable[str], hyps: list[str], refs: list[list[str]]) -> MetricValues:
    """Run the metrics ``names`` (duplicates once, in order) and merge their outputs.

    Unknown names raise the registry's error listing the valid metrics; two metrics that
    produce the same key raise ``ValueError``.
    """
    merged: MetricValues = {}
    owner: dict[str, str] = {}
    for name in dict.fromkeys(names):
        values = METRICS.build(name).compute(hyps, refs)
        for key, value in values.items():
            if key in owner:
                raise ValueError(
                    f"metrics '{owner[key]}' and '{name}' both produce '{key}'; "
                    "drop one of them from the metric list."
                )
            owner[key] = name
            merged[key] = value
    return merged
