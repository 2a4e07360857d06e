"""``++model.quantize=int8``: dynamic int8 linear layers at decoding time, on the cached
float32 checkpoint; refused in one line where it cannot run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import lab.models  # noqa: F401  (registration)
import lab.search  # noqa: F401
from lab.bench.common import MODES, build_transformer, random_batch
from lab.errors import LabError
from lab.models.quantize import check_quantize, quantize
from lab.registry import SEARCHES
from tests.helpers.lab_process import lab, ok, tiny


def test_int8_replaces_every_linear_layer_and_keeps_the_float_model(one_thread):
    model = build_transformer(MODES["tiny"])
    q = quantize(model, "int8")
    assert not any(type(m) is nn.Linear for m in q.modules())
    assert any(type(m) is nn.Linear for m in model.modules())  # a copy was quantized
    assert quantize(model, None) is model


def test_int8_greedy_stays_close_to_float32(one_thread):
    """int8 changes log-probs by quantization error only: same greedy tokens on this batch,
    log-probs within 2% (a broken layer mapping would be far off)."""
    s = MODES["tiny"]
    model = build_transformer(s)
    src, lens = random_batch(s, s.vocab, model.pad_id)
    greedy = SEARCHES.build("greedy", max_len_a=0, max_len_b=8)
    with torch.inference_mode():
        fp = greedy(model, src, lens).best()
        q8 = greedy(quantize(model, "int8"), src, lens).best()
    assert [h.tokens for h in fp] == [h.tokens for h in q8]
    for a, b in zip(fp, q8, strict=True):
        assert b.logprob == pytest.approx(a.logprob, rel=0.02)
        assert b.logprob != a.logprob


@pytest.mark.parametrize(
    ("value", "device", "match"),
    [
        ("int4", "cpu", "valid: null, int8"),
        ("int8", "cuda", "CPU only"),
    ],
)
def test_bad_quantize_settings_are_one_line(value, device, match):
    with pytest.raises(LabError, match=match) as e:
        check_quantize(value, device)
    assert "\n" not in str(e.value)


def test_an_int8_run_decodes_the_cached_float32_checkpoint(root: Path, trained: Path):
    fp = root / "fp32"
    q8 = root / "int8"
    ok(lab(["run", *tiny(), f"hydra.run.dir={fp}"], root, trained))
    proc = ok(lab(["run", *tiny(), "++model.quantize=int8", f"hydra.run.dir={q8}"], root, trained))
    assert "training" not in proc.stdout  # the same cache key: nothing retrained
    a = json.loads((fp / "results.json").read_text())
    b = json.loads((q8 / "results.json").read_text())
    assert a["checkpoint"] == b["checkpoint"]
    assert b["config"]["model"]["quantize"] == "int8"
    assert b["status"] == "completed" and b["n_examples"] == a["n_examples"]


def test_an_unknown_quantize_value_fails_before_training(root: Path):
    run, cache = root / "bad", root / "empty-cache"
    proc = lab(["run", *tiny(), "++model.quantize=int4", f"hydra.run.dir={run}"], root, cache)
    assert proc.returncode != 0
    assert "model.quantize='int4' is not supported; valid: null, int8." in proc.stderr
    assert not (cache / "checkpoints").exists()
    assert "Traceback" not in proc.stderr


def test_a_model_without_linear_layers_cannot_quantize():
    no_linear = nn.Sequential(nn.Embedding(10, 4), nn.LayerNorm(4))
    with pytest.raises(LabError, match="has none; drop model.quantize") as e:
        quantize(no_linear, "int8")
    assert "\n" not in str(e.value)
