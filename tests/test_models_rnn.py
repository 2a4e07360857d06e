"""LSTM/GRU encoder-decoders: incremental decoding agrees with teacher forcing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lab.models.rnn import GRUSeq2Seq, LSTMSeq2Seq, RNNSeq2Seq
from lab.registry import MODELS
from tests.model_checks import (
    SRC_V,
    TGT_V,
    check_batch_invariance,
    check_beam_reorder,
    check_gold_steps,
    check_select_sentences,
    make_batch,
    make_targets,
)

CELLS = {"lstm": LSTMSeq2Seq, "gru": GRUSeq2Seq}
VARIANTS = [(c, a) for c in CELLS for a in ("additive", "dot", "general", "none")]
IDS = [f"{c}-{a}" for c, a in VARIANTS]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from intra-op threads, which only stall on a busy CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_model(cell: str, attention: str, **kw) -> RNNSeq2Seq:
    """Tiny model with weights large enough that any misrouted state shows in the log-probs."""
    torch.manual_seed(0)
    opts = {"emb_dim": 12, "hidden": 16, "num_layers": 2, "dropout": 0.3} | kw
    model = CELLS[cell](SRC_V, TGT_V, attention=attention, **opts)
    for p in model.parameters():
        nn.init.uniform_(p, -0.5, 0.5)
    return model.eval()


@pytest.mark.parametrize(("cell", "attention"), VARIANTS, ids=IDS)
def test_gold_steps_match_teacher_forcing(cell: str, attention: str) -> None:
    check_gold_steps(make_model(cell, attention))


@pytest.mark.parametrize(("cell", "attention"), VARIANTS, ids=IDS)
def test_beams_and_reorder_match_teacher_forcing(cell: str, attention: str) -> None:
    check_beam_reorder(make_model(cell, attention))


@pytest.mark.parametrize(("cell", "attention"), VARIANTS, ids=IDS)
def test_score_is_batch_invariant(cell: str, attention: str) -> None:
    check_batch_invariance(make_model(cell, attention))


@pytest.mark.parametrize(("cell", "attention"), VARIANTS, ids=IDS)
def test_select_sentences_mid_decoding(cell: str, attention: str) -> None:
    check_select_sentences(make_model(cell, attention))


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
    with pytest.raises(ValueError, match="additive, dot, general, none"):
        LSTMSeq2Seq(SRC_V, TGT_V, attention="bilinear")
    with pytest.raises(ValueError, match="emb_dim == hidden"):
        GRUSeq2Seq(SRC_V, TGT_V, emb_dim=8, hidden=16, tie_embeddings=True)


def test_registered_with_descriptions() -> None:
    assert MODELS.get("lstm") is LSTMSeq2Seq and MODELS.get("gru") is GRUSeq2Seq
    descriptions = {e.name: e.description for e in MODELS.entries()}
    assert descriptions["lstm"].startswith("LSTM decoder over a bidirectional LSTM encoder")
    assert descriptions["gru"].startswith("GRU decoder")
    model = MODELS.build("gru", SRC_V, TGT_V, emb_dim=8, hidden=8, attention="dot")
    assert model.attention == "dot"


def test_training_step_backpropagates() -> None:
    model = make_model("lstm", "additive").train()
    src, lens = make_batch([4, 2])
    loss = -model.score(src, lens, make_targets([3, 5])).sum()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
