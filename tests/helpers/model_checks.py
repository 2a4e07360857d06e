"""Checks every architecture's decoding state must pass, shared by the model tests.

Each ``check_*`` drives a tiny model through encode/init_state/step/reorder/select_sentences
and compares with teacher forcing (``token_log_probs``/``score``). Special tokens are the model's
own (``pad_id``, ``bos_id``, ``eos_id``); words are the ids from 3 up that are none of them.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

from lab.models.base import DecoderModel
from lab.vocab import EOS_ID, PAD_ID

SRC_V, TGT_V = 23, 19
HF_V = 50  # the tiny Hugging Face models' vocabulary


def tiny_hf(kind: str) -> Any:
    """A tiny random Hugging Face model built from its config (seed 0, no network; skips the
    test without ``transformers``): ``marian``, a seq2seq MarianMT (pad = decoder start = 49,
    eos = 0), or ``gpt2``, a causal GPT-2 LM (bos = eos = 1, no pad token)."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    if kind == "marian":
        config = transformers.MarianConfig(
            vocab_size=HF_V,
            d_model=16,
            encoder_layers=2,
            decoder_layers=2,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            max_position_embeddings=64,
            pad_token_id=HF_V - 1,
            eos_token_id=0,
            decoder_start_token_id=HF_V - 1,
            forced_eos_token_id=None,
            init_std=0.3,
        )
        return transformers.MarianMTModel(config)
    config = transformers.GPT2Config(
        vocab_size=HF_V,
        n_embd=16,
        n_layer=2,
        n_head=2,
        n_positions=64,
        bos_token_id=1,
        eos_token_id=1,
        initializer_range=0.3,
    )
    return transformers.GPT2LMHeadModel(config)


def words(n: int, vocab: int, specials: tuple[int, ...] = ()) -> Tensor:
    """``n`` random word ids ``(n,)`` from ``3 .. vocab-1``, never one of ``specials``."""
    ids = torch.tensor([i for i in range(3, vocab) if i not in specials])
    return ids[torch.randint(len(ids), (n,))]


def specials(model: DecoderModel) -> tuple[int, int, int]:
    return model.pad_id, model.bos_id, model.eos_id


def make_batch(src_lens: list[int], vocab: int = SRC_V, pad: int = PAD_ID) -> tuple[Tensor, Tensor]:
    """Right-padded random sources ``(B, S)`` and their lengths ``(B,)``."""
    lens = torch.tensor(src_lens)
    src = words(len(src_lens) * max(src_lens), vocab, (pad,)).view(len(src_lens), -1)
    return src.masked_fill(torch.arange(src.size(1))[None] >= lens[:, None], pad), lens


def make_targets(tgt_lens: list[int], pad: int = PAD_ID, eos: int = EOS_ID) -> Tensor:
    """Right-padded random targets ending with EOS ``(B, T)``."""
    tgt = torch.full((len(tgt_lens), max(tgt_lens)), pad)
    for b, n in enumerate(tgt_lens):
        tgt[b, : n - 1] = words(n - 1, TGT_V, (pad, eos))
        tgt[b, n - 1] = eos
    return tgt


def tensors(leaves: dict) -> list[Tensor]:
    """Every tensor of a state's ``hyp`` or ``shared``: a value is a tensor or a list (tuple) of
    tensors, one per layer."""
    return [t for v in leaves.values() for t in ([v] if isinstance(v, Tensor) else v)]


class Replay:
    """Decodes step by step while tracking, per hypothesis row, its sentence, the tokens fed
    and the log-probs returned, so the whole run can be checked against teacher forcing."""

    def __init__(self, model: DecoderModel, src: Tensor, lens: Tensor, beam: int) -> None:
        self.model, self.src, self.lens, self.beam = model, src, lens, beam
        self.state = model.init_state(model.encode(src, lens), beam)
        self.sent = torch.arange(src.size(0)).repeat_interleave(beam)  # (B*K,)
        self.fed = torch.full((self.sent.numel(), 0), model.bos_id)  # (B*K, t)
        self.log_probs: list[Tensor] = []

    def step(self, tokens: Tensor | None = None) -> None:
        if tokens is None:  # random words, different for every hypothesis
            n, vocab = self.sent.numel(), self.model.tgt_vocab_size
            tokens = words(n, vocab, specials(self.model))
        if not self.log_probs:
            tokens = torch.full_like(tokens, self.model.bos_id)
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
        assert all(v.size(0) == n for v in tensors(self.state.hyp))
        assert all(v.size(0) == n // self.beam for v in tensors(self.state.shared))
        assert self.state.step == self.fed.size(1)

    def check(self, atol: float = 1e-5) -> None:
        src, lens = self.src[self.sent], self.lens[self.sent]
        ref = torch.log_softmax(self.model(src, lens, self.fed).float(), dim=-1)  # (N, t, V)
        torch.testing.assert_close(torch.stack(self.log_probs, 1), ref, atol=atol, rtol=0)


@torch.no_grad()
def check_gold_steps(model: DecoderModel) -> None:
    """Gold tokens through encode/init_state/step (K=1) give ``token_log_probs``."""
    torch.manual_seed(1)
    src, lens = make_batch([5, 2, 7, 4], pad=model.pad_id)
    tgt = make_targets([4, 6, 1, 3], pad=model.pad_id, eos=model.eos_id)
    state = model.init_state(model.encode(src, lens), beam_size=1)
    prev, got = torch.full((4,), model.bos_id), []
    for t in range(tgt.size(1)):
        lp, state = model.step(prev, state)
        got.append(lp.gather(1, tgt[:, t : t + 1].clamp_min(0)).squeeze(1))
        prev = tgt[:, t]
    got = torch.stack(got, 1).masked_fill(tgt.eq(model.pad_id), 0.0)  # (B, T)
    ref = model.token_log_probs(src, lens, tgt)  # (B, T)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)
    assert ref.lt(-1e-3).any()


@torch.no_grad()
def check_beam_reorder(model: DecoderModel) -> None:
    """K=3 hypotheses fed different tokens, reordered (with duplicates) mid-decoding."""
    torch.manual_seed(2)
    src, lens = make_batch([3, 6], pad=model.pad_id)
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
    src, lens = make_batch([6, 2, 4], pad=model.pad_id)
    tgt = make_targets([3, 5, 1], pad=model.pad_id, eos=model.eos_id)
    batch = model.score(src, lens, tgt)  # (B,)
    for b in range(3):
        s, t = src[b : b + 1, : lens[b]], tgt[b : b + 1, : int(tgt[b].ne(model.pad_id).sum())]
        alone = model.score(s, lens[b : b + 1], t)
        torch.testing.assert_close(alone, batch[b : b + 1], atol=1e-4, rtol=0)


@torch.no_grad()
def check_select_sentences(model: DecoderModel) -> None:
    """Sentences leave the batch mid-decoding; the others continue unchanged."""
    torch.manual_seed(4)
    src, lens = make_batch([4, 7, 2, 5], pad=model.pad_id)
    run = Replay(model, src, lens, beam=2)
    for _ in range(2):
        run.step()
    run.reorder(torch.tensor([1, 0, 2, 2, 5, 4, 7, 6]))
    run.select(torch.tensor([3, 0, 2]))
    run.step()
    run.select(torch.tensor([2, 1]))
    run.step()
    run.check()


@torch.no_grad()
def check_attention(model: DecoderModel) -> None:
    """Asked for (``State.asking_attention``), ``step`` reports its cross-attention
    ``(B*K, S)`` without changing its log-probs: each row a distribution over the sentence's real
    source tokens (0 at padding), carried along by ``reorder`` and ``select_sentences``, and the
    same for a hypothesis decoded alone. Unasked, or from a model without cross-attention, None."""
    torch.manual_seed(6)
    src, lens = make_batch([3, 6, 1], pad=model.pad_id)
    plain, asked = Replay(model, src, lens, beam=2), Replay(model, src, lens, beam=2)
    asked.state = asked.state.asking_attention()
    fed = [words(6, model.tgt_vocab_size, specials(model)) for _ in range(4)]
    seen = []
    for t, tokens in enumerate(fed):
        for run in (plain, asked):
            run.step(tokens)
        if t == 1:
            index = torch.tensor([1, 1, 3, 2, 5, 4])  # within each sentence
            for run in (plain, asked):
                run.reorder(index)
            seen = [a[index] for a in seen]
        assert plain.state.attention is None
        torch.testing.assert_close(asked.log_probs[-1], plain.log_probs[-1], atol=0, rtol=0)
        if not model.cross_attention:
            continue
        attn = asked.state.attention  # (B*K, S)
        assert attn is not None and attn.shape == (6, src.size(1))
        real = torch.arange(src.size(1))[None, :] < lens[asked.sent][:, None]  # (B*K, S)
        assert attn.masked_select(~real).eq(0).all()
        torch.testing.assert_close(attn.sum(1), torch.ones(6), atol=1e-5, rtol=0)
        seen.append(attn)
    if not model.cross_attention:
        return
    for row in range(6):  # each hypothesis alone: its own sentence, its own fed tokens
        b = int(asked.sent[row])
        alone = Replay(model, src[b : b + 1, : lens[b]], lens[b : b + 1], beam=1)
        alone.state = alone.state.asking_attention()
        for t in range(len(fed)):
            alone.step(asked.fed[row : row + 1, t])
            got = seen[t][row, : lens[b]]
            torch.testing.assert_close(alone.state.attention[0], got, atol=1e-5, rtol=0)
    asked.select(torch.tensor([2, 0]))
    assert asked.state.attention.shape == (4, src.size(1))


def steps_one_by_one(model: DecoderModel, tokens: Tensor, state: Any) -> tuple[Tensor, list]:
    """The reference for ``step_block``: ``step`` over the columns of ``tokens`` ``(N, L)``,
    the log-probs ``(N, L, V)`` and the state after each."""
    out, states = [], []
    for j in range(tokens.size(1)):
        lp, state = model.step(tokens[:, j], state)
        out.append(lp)
        states.append(state)
    return torch.stack(out, 1), states


def check_block_against_steps(model: DecoderModel, tokens: Tensor, state: Any) -> None:
    """``step_block(tokens, state)`` gives the log-probs of ``step`` after ``step`` (1e-5: a
    one-pass block multiplies other shapes, so not bit for bit), its ``states[j]`` are one
    ``j + 1`` tokens on (attention included, when asked) and decode on as the step-by-step
    states do. The last state is continued first: the earlier ones, which may share its
    cache, must be untouched by that."""
    got, states = model.step_block(tokens, state)  # (N, L, V)
    ref, ref_states = steps_one_by_one(model, tokens, state)
    assert got.shape == ref.shape and got.dtype == torch.float32
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)
    assert len(states) == tokens.size(1)
    nxt = words(tokens.size(0), model.tgt_vocab_size, specials(model))  # (N,)
    for j in reversed(range(tokens.size(1))):
        assert states[j].step == ref_states[j].step == state.step + j + 1
        if ref_states[j].attention is None:
            assert states[j].attention is None
        else:
            torch.testing.assert_close(
                states[j].attention, ref_states[j].attention, atol=1e-5, rtol=0
            )
        on, _ = model.step(nxt, states[j])
        torch.testing.assert_close(on, model.step(nxt, ref_states[j])[0], atol=1e-5, rtol=0)


@torch.no_grad()
def check_step_block(model: DecoderModel) -> None:
    """``step_block`` equals ``step`` by ``step``: from the first step (BOS first, as speculative
    decoding feeds it), and after beams were reordered with duplicates, blocks of 1, 3 and 5
    tokens over sentences of different source lengths, with and without attention asked."""
    torch.manual_seed(7)
    src, lens = make_batch([5, 2, 7], pad=model.pad_id)
    for asked in (False, True):
        run = Replay(model, src, lens, beam=2)
        if asked:
            run.state = run.state.asking_attention()
        first = words(6 * 3, model.tgt_vocab_size, specials(model)).view(6, 3)  # (B*K, 3)
        first[:, 0] = model.bos_id
        check_block_against_steps(model, first, run.state)
        for _ in range(2):
            run.step()
        run.reorder(torch.tensor([1, 1, 0, 3, 5, 4]))
        for n in (1, 3, 5):
            block = words(6 * n, model.tgt_vocab_size, specials(model)).view(6, n)  # (B*K, L)
            check_block_against_steps(model, block, run.state)
