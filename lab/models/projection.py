"""The vocabulary projection of a decoding step through a transposed copy of its weight.

``nn.Linear`` multiplies by ``W^T`` with ``W`` stored ``(V, D)``; for the few rows of a
decoding step (B*K of them against a V of thousands) the BLAS kernel is faster on a weight
stored ``(D, V)``, contiguous: ``reports/bench/levers.json`` (``transposed_output``) measures it.
The copy is made once per weight and remade when the weight changes (its version counter moves
with every in-place update, as an optimizer step makes; a new tensor has a new identity), so a
model being trained never decodes with a stale copy. With gradients enabled (training) the
plain ``nn.Linear`` runs: the copy is for inference only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

_ATTR = "_transposed_weight"  # on the nn.Linear: (the weight, its version and place, the copy)


def transposed(linear: nn.Linear) -> Tensor:
    """``linear.weight`` ``(V, D)`` as a contiguous ``(D, V)`` tensor, kept on the module and
    remade when the weight is another tensor, was updated in place, or moved."""
    w = linear.weight
    version = -1 if w.is_inference() else w._version  # inference tensors keep no counter
    key = (version, w.data_ptr(), w.device, w.dtype)
    hit = linear.__dict__.get(_ATTR)
    if hit is not None and hit[0] is w and hit[1] == key:
        return hit[2]
    with torch.inference_mode():
        copy = w.detach().t().contiguous()  # (D, V)
    linear.__dict__[_ATTR] = (w, key, copy)
    return copy


def project(linear: nn.Module, h: Tensor) -> Tensor:
    """``linear(h)`` for ``h`` ``(..., D)`` -> ``(..., V)``: through the transposed copy when
    ``linear`` is a plain ``nn.Linear`` and no gradient is recorded, else ``linear`` itself
    (a quantized or otherwise replaced module keeps its own kernel; so does a compiled step,
    whose compiler picks the layout itself)."""
    if type(linear) is not nn.Linear or torch.is_grad_enabled() or torch.compiler.is_compiling():
        return linear(h)
    flat = h.reshape(-1, h.size(-1))  # (N, D)
    wt = transposed(linear)  # (D, V)
    out = torch.mm(flat, wt) if linear.bias is None else torch.addmm(linear.bias, flat, wt)
    return out.view(*h.shape[:-1], wt.size(1))  # (..., V)
