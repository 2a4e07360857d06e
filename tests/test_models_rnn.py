"""LSTM/GRU encoder-decoders: incremental decoding agrees with teacher forcing."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from lab.models.base import BOS_ID, EOS_ID, PAD_ID, DecoderModel
from lab.models.rnn import GRUSeq2Seq, LSTMSeq2Seq, RNNSeq2Seq
from lab.registry import MODELS

SRC_V, TGT_V = 23, 19
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


def make_batch(src_lens: list[int], vocab: int = SRC_V) -> tuple[Tensor, Tensor]:
    """Right-padded random sources ``(B, S)`` and their lengths ``(B,)``."""
    lens = torch.tensor(src_lens)
    src = torch.randint(3, vocab, (len(src_lens), max(src_lens)))
    return src.masked_fill(torch.arange(src.size(1))[None] >= lens[:, None], PAD_ID), lens


def make_targets(tgt_lens: list[int]) -> Tensor:
    """Right-padded random targets ending with EOS ``(B, T)``."""
    tgt = torch.full((len(tgt_lens), max(tgt_lens)), PAD_ID)
    for b, n in enumerate(tgt_lens):
        tgt[b, : n - 1] = torch.randint(3, TGT_V, (n - 1,))
        tgt[b, n - 1] = EOS_ID
    return tgt


class Replay:
    """Decodes step by step while tracking, per hypothesis row, its sentence, the tokens fed
    and the log-probs returned, so the whole run can be checked against teacher forcing."""

    def __init__(self, model: DecoderModel, src: Tensor, lens: Tensor, beam: int) -> None:
        self.model, self.src, self.lens, self.beam = model, src, lens, beam
        self.state = model.init_state(model.encode(src, lens), beam)
        self.sent = torch.arange(src.size(0)).repeat_interleave(beam)  # (B*K,)
        self.fed = torch.full((self.sent.numel(), 0), BOS_ID)  # (B*K, t)
        self.log_probs: list[Tensor] = []

    def step(self, tokens: Tensor | None = None) -> None:
        if tokens is None:  # random tokens, different for every hypothesis
            tokens = torch.randint(3, self.model.tgt_vocab_size, self.sent.shape)
        if not self.log_probs:
            tokens = torch.full_like(tokens, BOS_ID)
        lp, self.state = self.model.step(tokens, self.state)
        assert lp.shape == (self.sent.numel(), self.model.tgt_vocab_size)
        assert lp.dtype == torch.float32
        self.fed = torch.cat([self.fed, tokens[:, None]], dim=1)
        self.log_probs.append(lp)
        self.check_shapes()

    def reorder(self, index: Tensor) -> None:
        self.state = self.model.reorder(self.state, index)
        self.sent, self.fed = self.sent[index], self.fed[index]
        self.log_probs = [lp[index] for lp in self.log_probs]

    def select(self, keep: Tensor) -> None:
        rows = (keep[:, None] * self.beam + torch.arange(self.beam)).reshape(-1)
        self.state = self.state.select_sentences(keep)
        self.sent, self.fed = self.sent[rows], self.fed[rows]
        self.log_probs = [lp[rows] for lp in self.log_probs]
        self.check_shapes()

    def check_shapes(self) -> None:
        """Per-hypothesis leaves have B*K rows; shared leaves one row per sentence."""
        n = self.sent.numel()
        assert all(v.size(0) == n for v in self.state.hyp.values())
        assert all(v.size(0) == n // self.beam for v in self.state.shared.values())
        assert self.state.step == self.fed.size(1)

    def check(self, atol: float = 1e-5) -> None:
        src, lens = self.src[self.sent], self.lens[self.sent]
        ref = torch.log_softmax(self.model(src, lens, self.fed).float(), dim=-1)  # (N, t, V)
        torch.testing.assert_close(torch.stack(self.log_probs, 1), ref, atol=atol, rtol=0)


@torch.no_grad()
def check_gold_steps(model: DecoderModel) -> None:
    """Gold tokens through encode/init_state/step (K=1) give ``token_log_probs``."""
    torch.manual_seed(1)
    src, lens = make_batch([5, 2, 7, 4])
    tgt = make_targets([4, 6, 1, 3])
    state = model.init_state(model.encode(src, lens), beam_size=1)
    prev, got = torch.full((4,), BOS_ID), []
    for t in range(tgt.size(1)):
        lp, state = model.step(prev, state)
        got.append(lp.gather(1, tgt[:, t : t + 1].clamp_min(0)).squeeze(1))
        prev = tgt[:, t]
    got = torch.stack(got, 1).masked_fill(tgt.eq(PAD_ID), 0.0)  # (B, T)
    ref = model.token_log_probs(src, lens, tgt)  # (B, T)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)
    assert ref.lt(-1e-3).any()


@torch.no_grad()
def check_beam_reorder(model: DecoderModel) -> None:
    """K=3 hypotheses fed different tokens, reordered (with duplicates) mid-decoding."""
    torch.manual_seed(2)
    src, lens = make_batch([3, 6])
    run = Replay(model, src, lens, beam=3)
    for _ in range(3):
        run.step()
    run.reorder(torch.tensor([2, 0, 0, 4, 5, 3]))
    run.step()
    run.reorder(torch.tensor([1, 1, 2, 3, 3, 3]))
    for _ in range(2):
        run.step()
    run.check()


@torch.no_grad()
def check_batch_invariance(model: DecoderModel) -> None:
    """A sentence scores the same alone and inside a padded batch."""
    torch.manual_seed(3)
    src, lens = make_batch([6, 2, 4])
    tgt = make_targets([3, 5, 1])
    batch = model.score(src, lens, tgt)  # (B,)
    for b in range(3):
        s, t = src[b : b + 1, : lens[b]], tgt[b : b + 1, : int(tgt[b].ne(PAD_ID).sum())]
        alone = model.score(s, lens[b : b + 1], t)
        torch.testing.assert_close(alone, batch[b : b + 1], atol=1e-4, rtol=0)


@torch.no_grad()
def check_select_sentences(model: DecoderModel) -> None:
    """Sentences leave the batch mid-decoding; the others continue unchanged."""
    torch.manual_seed(4)
    src, lens = make_batch([4, 7, 2, 5])
    run = Replay(model, src, lens, beam=2)
    for _ in range(2):
        run.step()
    run.reorder(torch.tensor([1, 0, 2, 2, 5, 4, 7, 6]))
    run.select(torch.tensor([3, 0, 2]))
    run.step()
    run.select(torch.tensor([2, 1]))
    run.step()
    run.check()


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
