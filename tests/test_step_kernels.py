"""The decoding step's own kernels compute what the training path's kernels compute."""

import pytest
import torch
from torch import nn

import lab.models  # noqa: F401  (registration)
from lab.models.packed import worth_packing
from lab.models.projection import project, transposed
from lab.registry import MODELS


def test_the_transposed_projection_equals_the_linear_layer() -> None:
    torch.manual_seed(0)
    out = nn.Linear(16, 50, bias=False)
    h = torch.randn(3, 4, 16)
    with torch.no_grad():
        torch.testing.assert_close(project(out, h), out(h), rtol=1e-6, atol=1e-6)
        biased = nn.Linear(16, 50)
        torch.testing.assert_close(project(biased, h), biased(h), rtol=1e-6, atol=1e-6)


def test_the_transposed_copy_follows_every_update_of_the_weight() -> None:
    torch.manual_seed(0)
    out = nn.Linear(8, 20, bias=False)
    h = torch.randn(5, 8)
    with torch.no_grad():
        first = transposed(out)
        assert transposed(out) is first  # cached while the weight is unchanged
        out.weight.mul_(2.0)  # an optimizer's in-place update
        torch.testing.assert_close(project(out, h), out(h))
        out.weight = nn.Parameter(torch.randn(20, 8))  # a new weight tensor
        torch.testing.assert_close(project(out, h), out(h))


def test_with_gradients_the_projection_is_the_linear_layer_and_trains_it() -> None:
    out = nn.Linear(8, 20, bias=False)
    project(out, torch.randn(2, 8)).sum().backward()
    assert out.weight.grad is not None


def test_a_model_built_under_inference_mode_projects_too() -> None:
    with torch.inference_mode():
        out = nn.Linear(8, 20, bias=False)
        h = torch.randn(5, 8)
        torch.testing.assert_close(project(out, h), out(h))


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
