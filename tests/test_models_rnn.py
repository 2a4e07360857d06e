"""LSTM/GRU encoder-decoders: what is particular to them (options, tied embeddings, state layout).

The decoding interface checks, run on every attention variant, are in test_model_interface.py.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lab.errors import LabError
from lab.models.rnn import GRUSeq2Seq, LSTMSeq2Seq, RNNSeq2Seq
from lab.registry import MODELS
from tests.helpers.model_checks import (
    SRC_V,
    TGT_V,
    check_beam_reorder,
    check_gold_steps,
    make_batch,
)

CELLS = {"lstm": LSTMSeq2Seq, "gru": GRUSeq2Seq}

pytestmark = pytest.mark.usefixtures("one_thread")


def make_model(cell: str, attention: str, **kw) -> RNNSeq2Seq:
    """Tiny model with weights large enough that any misrouted state shows in the log-probs."""
    torch.manual_seed(0)
    opts = {"emb_dim": 12, "hidden": 16, "num_layers": 2, "dropout": 0.3} | kw
    model = CELLS[cell](SRC_V, TGT_V, attention=attention, **opts)
    for p in model.parameters():
        nn.init.uniform_(p, -0.5, 0.5)
    return model.eval()


@pytest.mark.parametrize("cell", CELLS)
def test_single_layer_tied_embeddings(cell: str) -> None:
    model = make_model(cell, "general", emb_dim=16, num_layers=1, tie_embeddings=True)
    assert model.out.weight is model.tgt_embed.weight
    check_gold_steps(model)
    check_beam_reorder(model)


def test_shared_state_is_per_sentence() -> None:
    """Encoder memory and attention keys are not copied per beam."""
    model = make_model("lstm", "additive")
    src, lens = make_batch([3, 5])
    state = model.init_state(model.encode(src, lens), beam_size=4)
    assert state.hyp["h"].shape == state.hyp["c"].shape == (8, 2, 16)
    assert state.shared["keys"].shape == (2, 5, 16)
    assert state.shared["values"].shape == (2, 5, 32)
    gru = make_model("gru", "none")
    state = gru.init_state(gru.encode(src, lens), beam_size=2)
    assert set(state.hyp) == {"h"} and set(state.shared) == {"src_mask"}


def test_bad_options_raise() -> None:
    with pytest.raises(LabError, match="additive, dot, general, none"):
        LSTMSeq2Seq(SRC_V, TGT_V, attention="bilinear")
    with pytest.raises(LabError, match="emb_dim == hidden"):
        GRUSeq2Seq(SRC_V, TGT_V, emb_dim=8, hidden=16, tie_embeddings=True)


def test_registered_with_descriptions() -> None:
    assert MODELS.get("lstm") is LSTMSeq2Seq and MODELS.get("gru") is GRUSeq2Seq
    descriptions = {e.name: e.description for e in MODELS.entries()}
    assert descriptions["lstm"].startswith("LSTM decoder over a bidirectional LSTM encoder")
    assert descriptions["gru"].startswith("GRU decoder")
    model = MODELS.build("gru", SRC_V, TGT_V, emb_dim=8, hidden=8, attention="dot")
    assert model.attention == "dot"
