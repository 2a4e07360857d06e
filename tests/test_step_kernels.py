"""The decoding step's own kernels compute what the training path's kernels compute."""

import pytest
import torch
from torch import nn

import lab.models  # noqa: F401  (registration)
from lab.models.linear import linear, packed, packs, works
from lab.models.packed import worth_packing
from lab.models.quantize import quantize
from lab.registry import MODELS


def test_this_torch_runs_the_packed_kernel() -> None:
    assert works()  # the CPU wheel CI installs has oneDNN: the packed path is what it tests


def test_the_packed_linear_equals_the_linear_layer() -> None:
    torch.manual_seed(0)
    h = torch.randn(3, 4, 16)
    with torch.no_grad():
        for layer in (nn.Linear(16, 50, bias=False), nn.Linear(16, 50)):
            assert packs(layer, h)
            torch.testing.assert_close(linear(layer, h), layer(h), rtol=1e-6, atol=1e-6)
            relu = torch.relu(layer(h))
            torch.testing.assert_close(linear(layer, h, relu=True), relu, rtol=1e-6, atol=1e-6)


def test_the_packed_copy_follows_every_update_of_the_weight() -> None:
    torch.manual_seed(0)
    out = nn.Linear(8, 20, bias=False)
    h = torch.randn(5, 8)
    with torch.no_grad():
        first = packed(out)
        assert packed(out) is first  # cached while the weight is unchanged
        out.weight.mul_(2.0)  # an optimizer's in-place update
        torch.testing.assert_close(linear(out, h), out(h))
        out.weight = nn.Parameter(torch.randn(20, 8))  # a new weight tensor
        torch.testing.assert_close(linear(out, h), out(h))


def test_with_gradients_the_layer_runs_as_it_is_and_trains() -> None:
    out = nn.Linear(8, 20, bias=False)
    x = torch.randn(2, 8)
    assert not packs(out, x)
    linear(out, x, relu=True).sum().backward()
    assert out.weight.grad is not None


def test_a_model_built_under_inference_mode_packs_too() -> None:
    with torch.inference_mode():
        out = nn.Linear(8, 20, bias=False)
        h = torch.randn(5, 8)
        assert packs(out, h)
        torch.testing.assert_close(linear(out, h), out(h))


def test_a_layer_with_a_hook_runs_as_it_is_so_the_hook_sees_every_call() -> None:
    layer, seen = nn.Linear(8, 4), []
    layer.register_forward_hook(lambda *_: seen.append(1))
    with torch.no_grad():
        x = torch.randn(2, 8)
        assert not packs(layer, x)
        linear(layer, x)
    assert seen == [1]


def test_other_dtypes_and_replaced_modules_run_as_they_are() -> None:
    with torch.no_grad():
        half = nn.Linear(8, 4).to(torch.bfloat16)
        assert not packs(half, torch.randn(2, 8, dtype=torch.bfloat16))
        quantized = quantize(nn.Sequential(nn.Linear(8, 4)), "int8")[0]  # model.quantize=int8
        assert not packs(quantized, torch.randn(2, 8))
        assert linear(quantized, torch.randn(2, 8)).shape == (2, 4)


@pytest.mark.parametrize("pre_norm", [True, False])
def test_the_packed_encoder_computes_what_the_padded_one_computes_at_every_token(pre_norm):
    torch.manual_seed(0)
    model = MODELS.build(
        "transformer", 50, 40, d_model=32, n_heads=4, enc_layers=2, dec_layers=1, d_ff=64,
        dropout=0.0, pre_norm=pre_norm,
    ).eval()  # fmt: skip
    lens = torch.tensor([9, 2, 5, 1, 9, 4])
    src = torch.randint(4, 50, (6, 9)) * (torch.arange(9)[None] < lens[:, None])  # PAD = 0
    real = torch.arange(9)[None] < lens[:, None]  # (6, 9)
    assert worth_packing(real)
    with torch.no_grad():
        packed = model.encode(src, lens)["memory"]
        torch.set_grad_enabled(True)
        padded = model.encode(src, lens)["memory"].detach()  # with gradients: the padded pass
        torch.set_grad_enabled(False)
    torch.testing.assert_close(packed[real], padded[real], rtol=1e-5, atol=1e-6)


def test_a_batch_with_little_padding_is_not_packed():
    assert not worth_packing(torch.ones(4, 10, dtype=torch.bool))
    almost = torch.ones(4, 10, dtype=torch.bool)
    almost[0, 9] = False  # 2.5% padding
    assert not worth_packing(almost)
    almost[:, 5:] = False
    assert worth_packing(almost)
