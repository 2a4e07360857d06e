"""``precision: fp32|bf16|fp16``: the number format a run decodes in.

``bf16`` and ``fp16`` decode under ``torch.autocast`` on the decode device: matrix products
(linear layers, attention, recurrent cells) run in the lower precision, the weights stay
float32, and every model computes its log-softmax on ``logits.float()``, so the log-probs a
search sees, sums and reports are float32 whatever the precision (``lab.models.base``,
``layers``, ``rnn``, ``copy`` and ``hf`` all cast before ``log_softmax``). Training is not
affected: precision is a decoding choice, like ``model.quantize``, and a bf16 run decodes the
same cached checkpoint as its float32 twin.

``fp16`` is refused on CPU (its CPU kernels are slow emulation and autocast covers few ops
there); ``bf16`` runs on CPU through CPU autocast, and on GPUs that support it.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from lab.errors import LabError

CHOICES = ("fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(value: Any, device: str, model: Mapping[str, Any] | None = None) -> str:
    """``value`` if it can decode on ``device`` (``cpu``, ``cuda[:n]`` or ``auto``) with the
    ``model`` config node (its ``name`` and ``quantize``), else one ``LabError`` line naming
    the fix.

    ``model=lstm`` in bf16 on CPU is refused: torch's oneDNN LSTM kernel cannot mix float32
    weights with bf16 inputs on CPUs without native bf16 (``could not create a primitive
    descriptor``), and a run that dies in its first decoding step is worse than one line.
    """
    if value not in CHOICES:
        raise LabError(f"precision={value!r} is not supported; valid: {', '.join(CHOICES)}.")
    if value == "fp32":
        return value
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if value == "fp16" and not cuda:
        raise LabError("precision=fp16 needs a CUDA device; use precision=bf16 on CPU, or fp32.")
    model = model or {}
    if value == "bf16" and not cuda and model.get("name") == "lstm":
        raise LabError("precision=bf16 on CPU cannot run model=lstm; use precision=fp32.")
    quantize = model.get("quantize")
    if quantize is not None:
        raise LabError(
            f"precision={value} and model.quantize={quantize} both set how linear layers "
            "compute; drop one of them."
        )
    return value


def decoding_precision(value: str, device: torch.device) -> AbstractContextManager[Any]:
    """The context to decode in: nothing for ``fp32``, else autocast to ``value`` on
    ``device``'s type (checked first, so a bad value fails before anything runs)."""
    check_precision(value, str(device))
    if value == "fp32":
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[value])
