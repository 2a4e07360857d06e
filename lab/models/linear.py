"""Linear layers at inference through oneDNN, with each weight prepacked once.

``nn.Linear`` hands its weight, as stored, to the BLAS GEMM at every call; for the few rows of
a decoding step against a fixed weight, the GEMM's own repacking of that weight is much of the
work. oneDNN reorders ("packs") the weight once into the blocked layout its kernels read
(``torch.ops.mkldnn._reorder_linear_weight``), and every later call multiplies against it
(``_linear_pointwise``, which also fuses a following ReLU): what CTranslate2 does with its
packed GEMMs. ``reports/bench/levers/levers.md`` (``packed_linears``) measures the effect on
the bench model, with every output token kept.

The packed copy is made once per weight and remade when the weight changes (its version
counter moves with every in-place update, as an optimizer step makes; a new tensor has a new
identity), so a model being trained never decodes with a stale copy. The plain module runs
instead where the packed kernel does not apply: with gradients enabled (training), for a
weight that is not a float32 CPU tensor (CUDA, bf16), for a replaced module (int8 quantized),
for a module with forward hooks (a probe registered on it sees its calls), inside
``torch.compile`` (the compiler picks its own kernels), or in a torch without oneDNN. The packed
copies live beside the modules (a weak map), not on them, so a module still copies and pickles
as before (a oneDNN tensor has no storage to copy).
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# module -> (the weight, its version and place, the packed copy); dropped with the module
_PACKED: weakref.WeakKeyDictionary[nn.Module, tuple[Tensor, tuple, Tensor]] = (
    weakref.WeakKeyDictionary()
)


def works() -> bool:
    """Whether this torch build runs the packed kernel and gets ``F.linear``'s result: checked
    once on a tiny layer, so a build or CPU where the private oneDNN ops are missing or fail
    decodes with the plain modules instead of failing."""
    if not torch.backends.mkldnn.is_available() or not hasattr(
        torch.ops.mkldnn, "_linear_pointwise"
    ):
        return False
    g = torch.Generator().manual_seed(0)
    w, x, b = (torch.randn(*shape, generator=g) for shape in ((3, 4), (2, 4), (3,)))
    try:
        with torch.inference_mode():
            packed = torch.ops.mkldnn._reorder_linear_weight(w)
            y = torch.ops.mkldnn._linear_pointwise(x, packed, b, "none", [], "")
            return bool(torch.allclose(y, F.linear(x, w, b), atol=1e-5))
    except (RuntimeError, NotImplementedError):
        return False


ONEDNN = works()


def packs(module: nn.Module, x: Tensor) -> bool:
    """Whether ``module(x)`` goes through the packed kernel (the module docstring's rule)."""
    if type(module) is not nn.Linear or not ONEDNN or torch.is_grad_enabled():
        return False
    if module._forward_hooks or module._forward_pre_hooks:  # a probe sees the module's call
        return False
    w = module.weight
    return (
        w.device.type == "cpu"
        and w.dtype == torch.float32
        and x.dtype == torch.float32
        and not torch.compiler.is_compiling()
    )


def packed(linear: nn.Linear) -> Tensor:
    """``linear.weight`` in oneDNN's packed layout, kept on the module and remade when the
    weight is another tensor, was updated in place, or moved."""
    w = linear.weight
    version = -1 if w.is_inference() else w._version  # inference tensors keep no counter
    key = (version, w.data_ptr(), w.device, w.dtype)
    hit = _PACKED.get(linear)
    if hit is not None and hit[0] is w and hit[1] == key:
        return hit[2]
    with torch.inference_mode():
        copy = torch.ops.mkldnn._reorder_linear_weight(w.detach())
    _PACKED[linear] = (w, key, copy)
    return copy


def linear(module: nn.Module, x: Tensor, relu: bool = False) -> Tensor:
    """``module(x)`` for ``x`` ``(..., D_in)`` -> ``(..., D_out)`` (then ReLU, with ``relu``):
    through the packed weight where it applies (``packs``), else the module itself."""
    if not packs(module, x):
        y = module(x)
        return F.relu(y) if relu else y
    flat = x.reshape(-1, x.size(-1))  # (N, D_in)
    attr = "relu" if relu else "none"
    y = torch.ops.mkldnn._linear_pointwise(flat, packed(module), module.bias, attr, [], "")
    return y.view(*x.shape[:-1], y.size(-1))  # (..., D_out)
