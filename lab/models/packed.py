"""The Transformer encoder over a padded batch's real tokens only, as CTranslate2 runs it.

A batch of sources of unequal length is padded to its longest; the padded positions cost the
encoder's linear layers and feed-forward as much as real tokens do, and are masked out
everywhere they are read. ``encode_packed`` runs those row-wise parts on the real tokens alone,
packed ``(N, D)``, and lays them out on the ``(B, S)`` grid only for self-attention (zeros at
padding, which the mask hides). The real tokens' outputs are what the padded pass computes (a
row's product does not depend on the other rows); padded positions hold zeros instead of
values nothing reads. ``reports/bench/levers.json`` (``packed_encoder``) measures the gain.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from lab.models.layers import merge_heads, split_heads

MIN_PADDING = 0.125  # pack when at least this share of the grid is padding


def worth_packing(real: Tensor) -> bool:
    """Whether the batch ``real`` ``(B, S)`` (True at tokens) has enough padding to pack."""
    return real.numel() > 0 and int(real.sum()) <= (1 - MIN_PADDING) * real.numel()


def encode_packed(layers: nn.ModuleList, x: Tensor, real: Tensor) -> Tensor:
    """The encoder ``layers`` (self-attention and feed-forward, each in a residual block) over
    the embedded batch ``x`` ``(B, S, D)`` whose real tokens are ``real`` ``(B, S)``; returns
    ``(B, S, D)`` with zeros at padding. Inference only: no dropout."""
    b, s, d = x.shape
    rows = real.reshape(-1).nonzero().squeeze(1)  # (N,) real positions of the B*S grid
    mask = real[:, None, None, :]  # (B, 1, 1, S)

    def grid(y: Tensor) -> Tensor:  # (N, E) -> (B, S, E), zeros at padding
        return y.new_zeros(b * s, y.size(-1)).index_copy_(0, rows, y).view(b, s, y.size(-1))

    def attend(attn: nn.Module, h: Tensor) -> Tensor:  # (N, D) -> (N, D)
        q, k, v = (split_heads(grid(lin(h)), attn.n_heads) for lin in (attn.q, attn.k, attn.v))
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, S, Dh)
        return attn.out(merge_heads(o).reshape(b * s, d).index_select(0, rows))

    h = x.reshape(b * s, d).index_select(0, rows)  # (N, D)
    for layer in layers:
        h = layer.r1(h, lambda t, attn=layer.attn: attend(attn, t))
        h = layer.r2(h, layer.ff)
    return grid(h)
