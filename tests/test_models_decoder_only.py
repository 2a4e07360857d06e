"""Decoder-only prefix LM: the cached prefix plus per-hypothesis target cache agrees with
teacher forcing over the explicitly masked [source; target] sequence."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from lab.models.base import BOS_ID, EOS_ID, PAD_ID, DecoderModel
from lab.models.decoder_only import DecoderOnly, prefix_lm_mask
from lab.registry import MODELS

SRC_V, TGT_V = 23, 19
CONFIGS = {
    "prenorm-sinusoidal-tied": {},
    "postnorm-learned-untied": {"pre_norm": False, "positions": "learned", "tie_embeddings": False},
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from intra-op threads, which only stall on a busy CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_model(**kw) -> DecoderOnly:
    torch.manual_seed(0)
    opts = {"d_model": 32, "n_heads": 4, "n_layers": 2, "d_ff": 64, "max_positions": 64} | kw
    return DecoderOnly(SRC_V, TGT_V, **opts).eval()


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


@pytest.mark.parametrize("config", CONFIGS)
def test_gold_steps_match_teacher_forcing(config: str) -> None:
    check_gold_steps(make_model(**CONFIGS[config]))


@pytest.mark.parametrize("config", CONFIGS)
def test_beams_and_reorder_match_teacher_forcing(config: str) -> None:
    check_beam_reorder(make_model(**CONFIGS[config]))


@pytest.mark.parametrize("config", CONFIGS)
def test_score_is_batch_invariant(config: str) -> None:
    check_batch_invariance(make_model(**CONFIGS[config]))


@pytest.mark.parametrize("config", CONFIGS)
def test_select_sentences_mid_decoding(config: str) -> None:
    check_select_sentences(make_model(**CONFIGS[config]))


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
    assert state.shared["pk0"].shape == state.shared["pv1"].shape == (2, 4, 5, 8)
    assert state.shared["src_mask"].shape == (2, 1, 1, 5)
    assert state.hyp["k0"].shape == (8, 4, 0, 8)
    _, state = model.step(torch.full((8,), BOS_ID), state)
    assert state.hyp["v1"].shape == (8, 4, 1, 8)


def test_vocabularies_and_tying() -> None:
    model = make_model()
    assert model.embed.num_embeddings == SRC_V + TGT_V and model.out is None
    src, lens = make_batch([3, 5])
    assert model(src, lens, torch.full((2, 4), BOS_ID)).shape == (2, 4, TGT_V)
    untied = make_model(tie_embeddings=False)
    assert untied.out.weight.shape == (TGT_V, 32)


def test_position_budget() -> None:
    """The target starts after the source: both share the position table."""
    model = make_model(max_positions=16)
    assert model.max_source_positions == 8 and model.max_positions == 8
    src, lens = make_batch([8])
    model.score(src, lens, make_targets([8]))
    with pytest.raises(ValueError, match="max_source_positions"):
        model.encode(*make_batch([9]))
    with pytest.raises(ValueError, match="max_positions"):
        model.score(src, lens, make_targets([9]))
    run = Replay(model, src, lens, beam=1)
    for _ in range(8):
        run.step()
    with pytest.raises(ValueError, match="max_positions"):
        run.step()


def test_bad_options_raise() -> None:
    with pytest.raises(ValueError, match="sinusoidal"):
        DecoderOnly(SRC_V, TGT_V, d_model=32, n_heads=4, positions="rotary")
    with pytest.raises(ValueError, match="divisible"):
        DecoderOnly(SRC_V, TGT_V, d_model=30, n_heads=4)


def test_registered_with_description() -> None:
    assert MODELS.get("decoder_only") is DecoderOnly
    entry = next(e for e in MODELS.entries() if e.name == "decoder_only")
    assert entry.description.startswith("Decoder-only Transformer prefix LM")


def test_training_step_backpropagates() -> None:
    model = make_model(tie_embeddings=False).train()
    src, lens = make_batch([4, 2])
    loss = -model.score(src, lens, make_targets([3, 5])).sum()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
