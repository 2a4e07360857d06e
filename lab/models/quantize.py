"""``model.quantize=int8``: decode with dynamically quantized int8 linear layers (CPU).

Weights of every ``nn.Linear`` are stored as int8 with one scale per layer, activations are
quantized on the fly per batch (``torch.ao.quantization.quantize_dynamic``), which is what
CTranslate2's ``compute_type=int8`` does for its GEMMs. Embeddings, norms and the attention
products stay in float32. Quantization happens after the model is trained or loaded, so it is
a decoding choice: ``quantize`` is not part of the model's cache key (``model_options`` drops
it), and an int8 run decodes the same cached checkpoint as its float32 twin.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from lab.errors import LabError

CHOICES = ("int8",)


def check_quantize(value: Any, device: str) -> None:
    """One line for an unknown ``model.quantize`` or one that cannot run on ``device``."""
    if value is None:
        return
    if value not in CHOICES:
        raise LabError(
            f"model.quantize={value!r} is not supported; valid: null, {', '.join(CHOICES)}."
        )
    if device.startswith("cuda"):
        raise LabError(
            "model.quantize=int8 runs on CPU only (dynamic int8 kernels); set device=cpu "
            "or drop model.quantize."
        )


def quantize(model: nn.Module, value: str | None) -> nn.Module:
    """``model`` with int8 dynamic linear layers (a copy), or ``model`` itself for None."""
    if value is None:
        return model
    check_quantize(value, str(next(model.parameters()).device))
    if not any(isinstance(m, nn.Linear) for m in model.modules()):
        raise LabError(
            f"model.quantize={value} quantizes linear layers and {type(model).__name__} has "
            "none; drop model.quantize."
        )
    with warnings.catch_warnings():  # torch.ao announces its successor on every call
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
