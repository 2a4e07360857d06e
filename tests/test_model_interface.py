"""Every registered architecture keeps the decoding interface of ``lab.models.base``: step by step
decoding agrees with teacher forcing with gold tokens, with K hypotheses reordered (duplicates
included), and while sentences leave the batch; a sentence scores the same alone and in a
padded batch; a block of tokens fed at once (``step_block``) equals as many steps.

The architectures come from the registry, so one registered later is checked too: it needs
tiny constructor settings in ``VARIANTS`` below, and its absence fails ``test_every_registered_
architecture_has_tiny_settings`` with the name to add.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import lab.models  # noqa: F401  (registers the architectures)
from lab.checkpoint import save_model
from lab.models.base import DecoderModel
from lab.models.combine import Combined
from lab.registry import MODELS
from lab.vocab import SEP_ID
from tests.helpers.model_checks import (
    SRC_V,
    TGT_V,
    check_attention,
    check_batch_invariance,
    check_beam_reorder,
    check_gold_steps,
    check_select_sentences,
    check_step_block,
    make_batch,
    make_targets,
    tiny_hf,
)
from tests.helpers.models import TINY

pytestmark = pytest.mark.usefixtures("one_thread")


@dataclass(frozen=True)
class TinyHF:
    """A tiny random Hugging Face model saved to a temporary directory (no network): its path
    stands for ``name_or_path``. Marian (seq2seq): pad = decoder start = 49, eos = 0, unlike the
    lab's ids; GPT-2 (causal LM): no pad token, so pad = bos = 50, a virtual id."""

    kind: str


@dataclass(frozen=True)
class Saved:
    """A tiny lab model of architecture ``arch`` (``tests.helpers.models.TINY``) saved as a
    checkpoint in a temporary directory: its path stands for a member of a combination."""

    arch: str
    seed: int = 0


# architecture -> variant -> tiny constructor kwargs (dropout > 0: eval() must switch it off)
VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "transformer": {
        "prenorm-sinusoidal-tied": dict(
            d_model=16, n_heads=2, enc_layers=2, dec_layers=2, d_ff=32, dropout=0.3
        ),
        "prenorm-sinusoidal-tied-copy": dict(
            d_model=16, n_heads=2, enc_layers=2, dec_layers=2, d_ff=32, dropout=0.3, copy=True
        ),
        "postnorm-learned-untied": dict(
            d_model=16,
            n_heads=2,
            enc_layers=1,
            dec_layers=2,
            d_ff=32,
            pre_norm=False,
            positions="learned",
            tie_embeddings=False,
        ),
        # random sources hold SEP_ID (4) here and there: sentences of 1 to several facts
        "prenorm-facts": dict(
            d_model=16, n_heads=2, enc_layers=2, dec_layers=2, d_ff=32, dropout=0.3, facts=True
        ),
        "prenorm-facts-copy": dict(
            d_model=16, n_heads=2, enc_layers=2, dec_layers=1, d_ff=32, facts=True, copy=True
        ),
    },
    "decoder_only": {
        "prenorm-sinusoidal-tied": dict(d_model=32, n_heads=4, n_layers=2, d_ff=64),
        "postnorm-learned-untied": dict(
            d_model=32,
            n_heads=4,
            n_layers=2,
            d_ff=64,
            pre_norm=False,
            positions="learned",
            tie_embeddings=False,
        ),
    },
    **{
        cell: {
            f"{attention}{'-copy' if copy else ''}": dict(
                emb_dim=12, hidden=16, num_layers=2, dropout=0.3, attention=attention, copy=copy
            )
            for attention in ("additive", "dot", "general", "none")
            for copy in (False, True)
            if not (copy and attention == "none")  # copying needs an attention
        }
        for cell in ("lstm", "gru")
    },
    "ensemble": {
        "transformer-gru": dict(members=[Saved("transformer"), Saved("gru", 1)]),
        "weighted-3": dict(
            members=[Saved("lstm"), Saved("decoder_only"), Saved("lstm", 2)], weights=[1, 2, 3]
        ),
    },
    # the fused step is no log-probability: at lm_weight 0 it must equal teacher forcing
    "fusion": {
        "transformer-lm": dict(
            translation=Saved("transformer"), lm=Saved("decoder_only"), lm_weight=0.0
        )
    },
    "hf": {
        "marian-seq2seq": dict(name_or_path=TinyHF("marian")),
        "gpt2-causal": dict(name_or_path=TinyHF("gpt2")),
    },
}
CASES = [
    pytest.param((arch, variant), id=f"{arch}-{variant}")
    for arch in MODELS.names()
    for variant in VARIANTS.get(arch, {})
]


def test_every_registered_architecture_has_tiny_settings():
    missing = [name for name in MODELS.names() if not VARIANTS.get(name)]
    assert not missing, (
        f"registered architectures {missing} have no tiny settings: add them to VARIANTS in "
        f"{Path(__file__).name} so that the interface checks cover them"
    )
    assert set(VARIANTS) <= set(MODELS.names()), "VARIANTS names an architecture nobody registers"


@pytest.fixture(scope="module", params=CASES)
def model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A tiny model in eval mode. The lab's own get every weight uniform in [-0.5, 0.5]: large
    enough that a misrouted state shows in the log-probs (the Hugging Face ones: init_std)."""
    arch, variant = request.param
    kwargs = dict(VARIANTS[arch][variant])
    for key, value in kwargs.items():
        if isinstance(value, TinyHF):
            path = tmp_path_factory.mktemp(f"hf-{value.kind}")
            tiny_hf(value.kind).save_pretrained(path)
            kwargs[key] = str(path)
        if isinstance(value, Saved) or isinstance(value, list) and isinstance(value[0], Saved):
            kwargs[key] = saved(value, tmp_path_factory)
    torch.manual_seed(0)
    built: DecoderModel = MODELS.build(arch, SRC_V, TGT_V, **kwargs)
    if not getattr(built, "pretrained", False):  # a pretrained model keeps its weights
        with torch.no_grad():
            for p in built.parameters():
                nn.init.uniform_(p, -0.5, 0.5)
    return built.eval()


def saved(value: Saved | list[Saved], tmp: pytest.TempPathFactory) -> str | list[str]:
    """The checkpoint path(s) of tiny saved models (``Saved``)."""
    if isinstance(value, list):
        return [str(saved(v, tmp)) for v in value]
    torch.manual_seed(value.seed)
    model = MODELS.build(value.arch, SRC_V, TGT_V, **TINY[value.arch])
    path = tmp.mktemp(f"member-{value.arch}") / "model.pt"
    save_model(model, value.arch, TINY[value.arch], path, {})
    return str(path)


def test_gold_steps_match_teacher_forcing(model):
    check_gold_steps(model)


def test_beams_reordered_with_duplicates_match_teacher_forcing(model):
    check_beam_reorder(model)


def test_score_is_batch_invariant(model):
    check_batch_invariance(model)


def test_sentences_leave_the_batch_mid_decoding(model):
    check_select_sentences(model)


def test_cross_attention_when_asked_follows_the_rows_and_changes_no_log_prob(model):
    check_attention(model)


def test_step_block_equals_step_by_step_and_its_states_decode_on(model):
    check_step_block(model)


def test_a_training_step_gives_every_parameter_a_finite_nonzero_gradient(model):
    """Teacher forcing in train mode (dropout on) reaches every weight: none is left out of the
    graph, none gets NaN or a gradient that is exactly zero."""
    if getattr(model, "pretrained", False) or isinstance(model, Combined):
        pytest.skip("a pretrained or combined model is decoded as is; the lab never trains it")
    trainee = copy.deepcopy(model).train()
    torch.manual_seed(5)
    src, lens = make_batch([4, 2], pad=trainee.pad_id)
    if getattr(trainee, "word_mask", None) is not None:  # a fact encoder: give it two facts
        src[0, 1] = SEP_ID  # (one fact alone gets all attention: no gradient to q and k)
    tgt = make_targets([3, 5], pad=trainee.pad_id, eos=trainee.eos_id)
    loss = -trainee.score(src, lens, tgt).sum()
    loss.backward()
    params = dict(trainee.named_parameters())
    assert [n for n, p in params.items() if p.grad is None] == []  # all in the graph
    assert [n for n, p in params.items() if not p.grad.isfinite().all()] == []
    assert [n for n, p in params.items() if not p.grad.ne(0).any()] == []
