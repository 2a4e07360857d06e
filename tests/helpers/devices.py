"""Devices for tests that run the same bodies on the CPU in the normal suite and on CUDA under
``pytest -m gpu`` (skipped where torch sees no CUDA device)."""

from __future__ import annotations

import pytest
import torch

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, CUDA])]
ATOL = 1e-4  # float32 log-probs, device vs CPU truth and batch vs alone


def grid(names: str, cpu: list[tuple], gpu: list[tuple]) -> pytest.MarkDecorator:
    """Parametrize ``dev`` and ``names`` over the ``cpu`` cases on the CPU and the ``gpu`` cases
    on CUDA (marked ``gpu``, skipped without a device)."""
    marks = [pytest.mark.gpu, CUDA]
    rows = [pytest.param("cpu", *c, id="-".join(map(str, ("cpu", *c)))) for c in cpu]
    rows += [
        pytest.param("cuda", *c, marks=marks, id="-".join(map(str, ("cuda", *c)))) for c in gpu
    ]
    return pytest.mark.parametrize(("dev", *names.split(",")), rows)
