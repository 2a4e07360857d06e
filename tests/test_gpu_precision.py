"""``precision: fp32|bf16|fp16``: decoding under autocast keeps float32 log-probs, bf16 gives
mostly the fp32 tokens on a tiny model, and bad settings are refused in one line before
anything runs. On CPU (bf16 only); the same checks on CUDA with fp16 run under ``-m gpu``."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

import lab.models  # noqa: F401  (registers the models)
import lab.search  # noqa: F401  (registers the searches)
from lab.bench.precisions import compare, render
from lab.config_checks import check_config
from lab.errors import LabError
from lab.pipeline import run
from lab.precision import CHOICES, check_precision, decoding_precision
from lab.provenance import config_changes
from lab.registry import SEARCHES
from tests.helpers.configs import composed
from tests.helpers.lab_process import tiny
from tests.helpers.models import sources, tiny_model

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
# (device, precision): bf16 on CPU in the normal suite; bf16 and fp16 on CUDA under -m gpu
CASES = [
    ("cpu", "bf16"),
    pytest.param("cuda", "bf16", marks=[pytest.mark.gpu, CUDA]),
    pytest.param("cuda", "fp16", marks=[pytest.mark.gpu, CUDA]),
]
VOCAB, LENGTHS = 30, (6, 2, 9, 4, 7, 3, 5, 8)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize(("device", "precision"), CASES)
@pytest.mark.parametrize("arch", ["transformer", "gru"])
def test_low_precision_decoding_keeps_float32_log_probs_and_mostly_the_fp32_tokens(
    device, precision, arch
):
    dev = torch.device(device)
    model = tiny_model(arch, VOCAB, seed=0, sharpen=1.5).to(dev)
    src, lens = (t.to(dev) for t in sources(3, VOCAB, LENGTHS))
    beam = SEARCHES.build("beam", beam_size=4, max_len_b=10)
    want = beam(model, src, lens).best()
    with decoding_precision(precision, dev), torch.inference_mode():
        state = model.init_state(model.encode(src, lens), 1)
        log_probs, _ = model.step(torch.full((len(LENGTHS),), model.bos_id, device=dev), state)
        got = beam(model, src, lens).best()
    assert log_probs.dtype == torch.float32  # (B, V)
    same = [a.tokens == b.tokens for a, b in zip(want, got, strict=True)]
    assert sum(same) >= len(LENGTHS) - 2, same
    gaps = [abs(a.logprob - b.logprob) for a, b, s in zip(want, got, same, strict=True) if s]
    assert max(gaps) < 0.5  # bf16 keeps 8 bits of mantissa: log-probs move, not by nats
    assert all(isinstance(h.logprob, float) for h in got)


def test_fp32_is_no_autocast_at_all():
    with decoding_precision("fp32", torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")
    with decoding_precision("bf16", torch.device("cpu")):
        assert torch.is_autocast_enabled("cpu")


def test_fp16_on_cpu_is_refused_in_one_line():
    with pytest.raises(LabError, match="precision=fp16 needs a CUDA device") as e:
        decoding_precision("fp16", torch.device("cpu"))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("value", ["fp64", "half", None])
def test_an_unknown_precision_names_the_valid_choices(value):
    with pytest.raises(LabError) as e:
        check_precision(value, "cpu")
    assert "\n" not in str(e.value) and all(c in str(e.value) for c in CHOICES)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["precision=fp64"], "valid: fp32, bf16, fp16"),
        (["precision=fp16", "device=cpu"], "precision=fp16 needs a CUDA device"),
        (["precision=bf16", "device=cpu", "model=lstm"], "cannot run model=lstm"),
        (["precision=bf16", "device=cpu", "+model.quantize=int8"], "drop one of them"),
    ],
)
def test_the_composed_config_is_checked_before_anything_runs(overrides, message):
    config = OmegaConf.to_container(composed(*overrides), resolve=True)
    with pytest.raises(LabError, match=message) as e:
        check_config(config)
    assert "\n" not in str(e.value)


def test_the_default_config_decodes_in_fp32_and_bf16_on_cpu_passes_the_checks():
    assert composed().precision == "fp32"
    check_config(OmegaConf.to_container(composed("precision=bf16", "device=cpu"), resolve=True))


def test_runs_in_fp32_and_bf16_decode_the_same_checkpoint_and_compare(tmp_path, capsys):
    """End to end on CPU, in this process: a run in fp32 trains the tiny checkpoint, a run with
    ``precision=bf16`` decodes that cached checkpoint (precision is not part of the cache key),
    and ``lab.bench.precisions`` puts the two runs side by side."""
    dirs = [tmp_path / "fp32", tmp_path / "bf16"]
    where = [f"cache_dir={tmp_path / 'cache'}", f"data_dir={tmp_path / 'data'}", "device=cpu"]
    for precision, run_dir in zip(("fp32", "bf16"), dirs, strict=True):
        run(composed(*tiny(), *where, f"precision={precision}"), run_dir)
    assert capsys.readouterr().out.count("training transformer") == 1
    rows = compare(dirs)
    assert [r["precision"] for r in rows] == ["fp32", "bf16"]
    assert rows[0]["identical_to_fp32"] == 1.0 and rows[0]["max_logprob_gap_vs_fp32"] == 0
    assert rows[1]["identical_to_fp32"] >= 0.5 and rows[1]["bleu"] is not None
    assert "| bf16 | 10 |" in render(rows)
    with pytest.raises(LabError, match="precision=fp32"):
        compare(dirs[1:])


def test_a_run_recorded_before_the_precision_key_is_the_same_as_one_in_fp32():
    """Rerunning a completed run skips it only when its config is the same: ``precision: fp32``
    is the default, so a run recorded without the key is not refused as another config."""
    old = {"seed": 0, "search": {"name": "beam"}}
    recorded = {"config": old, "depends": {}}
    assert config_changes(recorded, {**old, "precision": "fp32"}) == []
    assert config_changes(recorded, {**old, "precision": "bf16"}) == ["precision"]
