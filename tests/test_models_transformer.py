"""Transformer encoder-decoder: inputs past the position table fail with a one-line fix."""

import pytest
import torch

from lab.errors import LabError
from lab.registry import MODELS


def test_inputs_longer_than_the_position_table_name_the_setting_to_raise():
    model = MODELS.build(
        "transformer",
        10,
        10,
        d_model=16,
        n_heads=2,
        enc_layers=1,
        dec_layers=1,
        d_ff=32,
        max_positions=8,
    ).eval()
    fits, lens = torch.full((1, 8), 4), torch.tensor([8])
    assert model(fits, lens, fits).shape == (1, 8, 10)  # exactly the table: fine
    too_long = torch.full((1, 9), 4)
    with pytest.raises(LabError, match=r"9 positions exceed model.max_positions=8"):
        model(too_long, torch.tensor([9]), fits)
    with pytest.raises(LabError, match=r"model.max_positions=8; raise it"):
        model(fits, lens, too_long)
