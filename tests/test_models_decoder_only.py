"""Decoder-only prefix LM: what is particular to it (the prefix-LM mask, an empty source, the
shared prefix cache, one position table for source and target).

The decoding interface checks (the cached prefix plus per-hypothesis target cache agree with
teacher forcing over the explicitly masked [source; target] sequence) are in
test_model_interface.py."""

from __future__ import annotations

import pytest
import torch

from lab.errors import LabError
from lab.models.decoder_only import DecoderOnly, prefix_lm_mask
from lab.registry import MODELS
from lab.vocab import BOS_ID
from tests.helpers.model_checks import (
    SRC_V,
    TGT_V,
    Replay,
    make_batch,
    make_targets,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def make_model(**kw) -> DecoderOnly:
    torch.manual_seed(0)
    opts = {"d_model": 32, "n_heads": 4, "n_layers": 2, "d_ff": 64, "max_positions": 64} | kw
    return DecoderOnly(SRC_V, TGT_V, **opts).eval()


@torch.no_grad()
def test_empty_source_in_batch() -> None:
    """A zero-length source leaves a plain language model over the target, with no NaN."""
    model = make_model()
    src, lens = make_batch([0, 3])
    run = Replay(model, src, lens, beam=2)
    for _ in range(3):
        run.step()
    run.check()
    assert torch.stack(run.log_probs).isfinite().all()


def test_prefix_lm_mask() -> None:
    """Prefix: bidirectional over real source tokens; target: real source + causal targets."""
    mask = prefix_lm_mask(torch.tensor([2]), s=3, t=2)[0, 0].int()
    expected = [
        [1, 1, 0, 0, 0],  # src 0
        [1, 1, 0, 0, 0],  # src 1
        [1, 1, 1, 0, 0],  # padding: real prefix and itself, never a fully masked row
        [1, 1, 0, 1, 0],  # target 0
        [1, 1, 0, 1, 1],  # target 1
    ]
    assert mask.tolist() == expected


def test_shared_state_is_per_sentence() -> None:
    """Prefix keys/values are kept once per sentence; hypotheses cache only their targets."""
    model = make_model()
    src, lens = make_batch([3, 5])
    state = model.init_state(model.encode(src, lens), beam_size=4)
    assert state.shared["pk"][0].shape == state.shared["pv"][1].shape == (2, 4, 5, 8)
    assert state.shared["src_mask"].shape == (2, 1, 1, 5)
    assert state.hyp["k"][0].shape == (8, 4, 0, 8)
    _, state = model.step(torch.full((8,), BOS_ID), state)
    assert state.hyp["v"][1].shape == (8, 4, 1, 8)


def test_vocabularies_and_tying() -> None:
    model = make_model()
    assert model.embed.num_embeddings == SRC_V + TGT_V and model.out is None
    src, lens = make_batch([3, 5])
    assert model(src, lens, torch.full((2, 4), BOS_ID)).shape == (2, 4, TGT_V)
    untied = make_model(tie_embeddings=False)
    assert untied.out.weight.shape == (TGT_V, 32)


def test_position_budget() -> None:
    """The target starts after the source: both share the position table; past it, a LabError
    (one line at the command line) names model.max_positions."""
    model = make_model(max_positions=16)
    assert model.max_source_positions == 8 and model.max_positions == 8
    src, lens = make_batch([8])
    model.score(src, lens, make_targets([8]))
    with pytest.raises(LabError, match="max_source_positions.*model.max_positions"):
        model.encode(*make_batch([9]))
    with pytest.raises(LabError, match="model.max_positions"):
        model.score(src, lens, make_targets([9]))
    run = Replay(model, src, lens, beam=1)
    for _ in range(8):
        run.step()
    with pytest.raises(LabError, match="model.max_positions"):
        run.step()


def test_bad_options_raise() -> None:
    with pytest.raises(LabError, match="sinusoidal"):
        DecoderOnly(SRC_V, TGT_V, d_model=32, n_heads=4, positions="rotary")
    with pytest.raises(LabError, match="divisible"):
        DecoderOnly(SRC_V, TGT_V, d_model=30, n_heads=4)


def test_registered_with_description() -> None:
    assert MODELS.get("decoder_only") is DecoderOnly
    entry = next(e for e in MODELS.entries() if e.name == "decoder_only")
    assert entry.description.startswith("Decoder-only Transformer prefix LM")
