"""Adapters between the lab's per-layer key/value lists (``State``) and Transformers caches.

The lab keeps keys and values as plain tensors so that ``State.reorder`` and
``State.select_sentences`` can index them; a model call needs them inside a ``DynamicCache``.
Both directions share the tensors: nothing is copied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from lab.errors import LabError


def dynamic_cache(keys: Sequence[Tensor], values: Sequence[Tensor]) -> Any:
    """A ``DynamicCache`` around existing per-layer keys/values ``(N, H, T, Dh)``, no copy."""
    from transformers import DynamicCache, DynamicLayer

    cache = DynamicCache()
    for k, v in zip(keys, values, strict=True):
        layer = DynamicLayer()
        layer.keys, layer.values, layer.device, layer.is_initialized = k, v, k.device, True
        cache.layers.append(layer)
    return cache


def cache_tensors(cache: Any) -> tuple[list[Tensor], list[Tensor]]:
    """The per-layer keys and values of a ``DynamicCache`` of plain (full attention) layers."""
    from transformers import DynamicLayer

    keys, values = [], []
    for layer in cache.layers:
        if type(layer) is not DynamicLayer:
            raise LabError(
                f"model=hf: cache layers of type {type(layer).__name__} are not supported; "
                "use a model whose layers all use full attention."
            )
        keys.append(layer.keys)
        values.append(layer.values)
    return keys, values
