"""Speed levers for the model's step that are measured, not shipped: each is a context manager
that swaps one piece of the lab's Transformer (or of the search loop) for a faster candidate,
so that ``reports/bench/levers.py`` can time it against the shipped code in the same rounds
and check whether every output token stays the same.

- ``fused_qkv``: a step's self-attention projects q, k and v with one ``(D, 3D)`` product
  (packed, as every linear layer: ``lab.models.linear``) instead of three ``(D, D)`` ones
  (CTranslate2 and fairseq's incremental decoders fuse them);
- ``inplace_ban``: the ban processors fill the model's own log-probs in place instead of a copy
  of them (what a step costs without the copy; it breaks ``Step.log_probs``, the model's
  unprocessed scores, so it is a measurement, not a candidate).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import lab.models.transformer as transformer
import lab.search.contracts as contracts
from lab.models.layers import KV, Attention, Residual, cache_mask, merge_heads, split_heads
from lab.models.linear import linear
from lab.search.types import NEG_INF


@contextlib.contextmanager
def patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    """``obj.name`` set to ``value`` inside the block, restored after it."""
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def _fused(attn: Attention) -> nn.Linear:
    """``attn``'s q, k and v projections as one ``nn.Linear`` ``(D -> 3D)``, made once."""
    hit = attn.__dict__.get("_fused_qkv")
    if hit is None:
        d = attn.q.in_features
        hit = attn.__dict__["_fused_qkv"] = nn.Linear(d, 3 * d)
        with torch.inference_mode():
            hit.weight.copy_(torch.cat([attn.q.weight, attn.k.weight, attn.v.weight]))
            hit.bias.copy_(torch.cat([attn.q.bias, attn.k.bias, attn.v.bias]))
    return hit


def fused_self_attention(
    residual: Residual, x: Tensor, attn: Attention, cache: KV, attend: Callable[..., Tensor]
) -> tuple[Tensor, KV]:
    """``lab.models.layers.cached_self_attention`` with one product for q, k and v."""
    grown: list[KV] = []

    def self_attend(h: Tensor) -> Tensor:
        q, k, v = linear(_fused(attn), h).split(h.size(-1), dim=-1)  # (N, T, D) each
        q, k, v = (split_heads(z, attn.n_heads) for z in (q, k, v))  # (N, H, T, Dh)
        k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)  # (N, H, t+T, Dh)
        grown.append((k, v))
        mask = cache_mask(h.size(1), k.size(2), h.device)
        return linear(
            attn.out, merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
        )

    return residual(x, self_attend), grown[0]


def fused_qkv() -> contextlib.AbstractContextManager[None]:
    return patched(transformer, "cached_self_attention", fused_self_attention)


def _ban_in_place(log_probs: Tensor, ids: list[int]) -> Tensor:
    if not ids:
        return log_probs
    return log_probs.index_fill_(1, torch.tensor(ids, device=log_probs.device), NEG_INF)


def inplace_ban() -> contextlib.AbstractContextManager[None]:
    return patched(contracts, "_ban", _ban_in_place)


# name -> (what it does, the context that switches it on)
TRIED_STEP: dict[str, tuple[str, Callable[[], contextlib.AbstractContextManager[None]]]] = {
    "fused_qkv": (
        "a step's self-attention q, k and v in one (D, 3D) product (lab.bench.tried)",
        fused_qkv,
    ),
    "inplace_ban": (
        "the ban processors fill the model's log-probs in place, no copy per step: the copy's"
        " cost (breaks Step.log_probs; lab.bench.tried)",
        inplace_ban,
    ),
}
