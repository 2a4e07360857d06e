"""Encoder-decoder Transformer (Vaswani et al., 2017) with an incremental key/value cache.

With ``copy=True`` the output layer is a pointer-generator (``lab.models.copy``): a dedicated
single-head copy attention of the last layer's (normed) output over the encoder output.

With ``facts=True`` the source is a sequence of segments separated by ``SEP_ID`` (bAbI's
statements, ``task.facts=true``) and the encoder reads *facts*, not tokens, as the bAbI models
of Sukhbaatar et al. (2015) and Dehghani et al. (2019) do: each segment is the sum of its word
embeddings under a learned multiplicative mask per position in the segment, plus a learned
embedding of its recency (0: the last segment, the question); the encoder layers and the
decoder's cross-attention run over these facts. A copy head then copies *tokens*: each token's
memory is its embedding plus the encoder output of its fact.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from lab.errors import TooLongError
from lab.models.base import DecoderModel, Leaf, State, padding_mask
from lab.models.copy import CopyAttention, CopyHead
from lab.models.layers import (
    Attention,
    FeedForward,
    Positions,
    Residual,
    SelfAttentionLayer,
    block_layers,
    cache_mask,
    cached_self_attention,
    causal_mask,
    init_weights,
    step_layers,
)
from lab.models.linear import linear
from lab.models.packed import encode_packed, worth_packing
from lab.registry import MODELS
from lab.vocab import PAD_ID, SEP_ID


class EncoderLayer(SelfAttentionLayer):
    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = self.r1(x, lambda h: self.attn.attend(h, *self.attn.project_kv(h), mask))
        return self.r2(x, self.ff)


class DecoderLayer(nn.Module):
    """Masked self-attention, encoder-decoder attention, feed-forward."""

    def __init__(self, d: int, heads: int, ff: int, dropout: float, pre_norm: bool) -> None:
        super().__init__()
        self.self_attn = Attention(d, heads, dropout)
        self.cross_attn = Attention(d, heads, dropout)
        self.ff = FeedForward(d, ff, dropout)
        self.r1 = Residual(d, dropout, pre_norm)
        self.r2 = Residual(d, dropout, pre_norm)
        self.r3 = Residual(d, dropout, pre_norm)

    def forward(self, x: Tensor, mem_kv: tuple[Tensor, Tensor], src_mask: Tensor) -> Tensor:
        """Teacher forcing over the whole target ``x`` ``(B, T, D)``."""
        causal = causal_mask(x.size(1), x.device)  # (T, T)
        x = self.r1(x, lambda h: self.self_attn.attend(h, *self.self_attn.project_kv(h), causal))
        x = self.r2(x, lambda h: self.cross_attn.attend(h, *mem_kv, src_mask))
        return self.r3(x, self.ff)

    def step(
        self,
        x: Tensor,
        self_kv: tuple[Tensor, Tensor],
        cross_kv: tuple[Tensor, Tensor],
        src_mask: Tensor,
        beam: int,
        weights: bool = False,
    ) -> tuple[Tensor, ...]:
        """T new tokens per hypothesis ``x`` ``(B*K, T, D)`` (T = 1 in a step) against this
        layer's cached self-attention keys/values ``(B*K, H, t, Dh)`` (token i sees the cache
        and the block's tokens up to i) and the per-sentence cross-attention keys/values
        ``(B, H, S, Dh)``; returns the output and the self-attention cache grown by the
        tokens (``(B*K, H, t+T, Dh)`` each), and with ``weights`` the cross-attention averaged
        over heads ``(B*K, T, S)`` as a third value."""
        attn, seen = self.self_attn, []

        def self_attend(h: Tensor, kv: tuple[Tensor, Tensor]) -> Tensor:
            return attn.attend(h, *kv, cache_mask(h.size(1), kv[0].size(2), h.device))

        x, grown = cached_self_attention(self.r1, x, attn, self_kv, self_attend)

        def cross(h: Tensor) -> Tensor:
            out, p = self.cross_attn.attend_beams_weighted(h, *cross_kv, src_mask, beam, weights)
            seen.append(p)
            return out

        x = self.r3(self.r2(x, cross), self.ff)
        return (x, grown, seen[0]) if weights else (x, grown)


@MODELS.register("transformer")
class Transformer(DecoderModel):
    """Encoder-decoder Transformer: masked self-attn, enc-dec attn, feed-forward; KV cache."""

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        d_model: int = 256,
        n_heads: int = 8,
        enc_layers: int = 3,
        dec_layers: int = 3,
        d_ff: int = 512,
        dropout: float = 0.1,
        pre_norm: bool = True,
        positions: str = "sinusoidal",
        tie_embeddings: bool = True,
        max_positions: int = 512,
        copy: bool = False,
        facts: bool = False,
    ) -> None:
        super().__init__(src_vocab_size, tgt_vocab_size)
        self.d_model, self.n_heads, self._max_positions = d_model, n_heads, max_positions
        self.src_embed = nn.Embedding(src_vocab_size, d_model, padding_idx=self.pad_id)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_model, padding_idx=self.pad_id)
        self.positions = Positions(positions, max_positions, d_model)
        self.drop = nn.Dropout(dropout)
        args = (d_model, n_heads, d_ff, dropout, pre_norm)
        self.encoder = nn.ModuleList(EncoderLayer(*args) for _ in range(enc_layers))
        self.decoder = nn.ModuleList(DecoderLayer(*args) for _ in range(dec_layers))
        self.enc_norm = nn.LayerNorm(d_model) if pre_norm else nn.Identity()
        self.dec_norm = nn.LayerNorm(d_model) if pre_norm else nn.Identity()
        self.out = nn.Linear(d_model, tgt_vocab_size, bias=False)
        if tie_embeddings:
            self.out.weight = self.tgt_embed.weight
        # copy gate input: [decoder output; copy context; input embedding]
        self.copy_attn = CopyAttention(d_model) if copy else None
        self.copy = CopyHead(src_vocab_size, tgt_vocab_size, 3 * d_model) if copy else None
        self.scale = math.sqrt(d_model)
        init_weights(self, d_model, self.src_embed, self.tgt_embed)
        # facts: a mask per position in a segment (ones: a plain bag of words at first) and an
        # embedding per recency
        self.word_mask = nn.Parameter(torch.ones(max_positions, d_model)) if facts else None
        self.recency = nn.Embedding(max_positions, d_model) if facts else None
        if self.recency is not None:
            nn.init.normal_(self.recency.weight, std=d_model**-0.5)

    @property
    def max_positions(self) -> int:
        return self._max_positions

    @property
    def cross_attention(self) -> bool:
        """The last decoder layer's cross-attention, averaged over heads, is over the source
        tokens, except with ``facts`` (then it is over facts, not tokens)."""
        return self.word_mask is None

    def _embed(self, table: nn.Embedding, tokens: Tensor, start: int = 0) -> Tensor:
        if start + tokens.size(1) > self._max_positions:
            raise TooLongError(
                f"{start + tokens.size(1)} positions exceed model.max_positions="
                f"{self._max_positions}; raise it (model.max_positions=...) or lower train.max_len"
            )
        pos = torch.arange(start, start + tokens.size(1), device=tokens.device)
        return self.drop(table(tokens) * self.scale + self.positions(pos)[None])  # (N, T, D)

    def encode(self, src_tokens: Tensor, src_lengths: Tensor) -> dict[str, Tensor]:
        if self.word_mask is not None:
            return self._encode_facts(src_tokens)
        mask = padding_mask(src_lengths, src_tokens.size(1))[:, None, None, :]  # (B, 1, 1, S)
        x = self._embed(self.src_embed, src_tokens)  # (B, S, D)
        if not (self.training or torch.is_grad_enabled()) and worth_packing(mask[:, 0, 0]):
            x = encode_packed(self.encoder, x, mask[:, 0, 0])  # real tokens only
        else:
            for layer in self.encoder:
                x = layer(x, mask)
        memory = {"memory": self.enc_norm(x), "src_mask": mask}
        if self.copy is not None:
            memory["copy_ids"] = self.copy.target_ids(src_tokens)  # (B, S)
        return memory

    def _encode_facts(self, src: Tensor) -> dict[str, Tensor]:
        """Encoder over the ``SEP_ID``-separated segments of ``src`` ``(B, S)``: memory
        ``(B, F, D)`` with one vector per fact and ``src_mask`` ``(B, 1, 1, F)``; with copy, a
        token-level ``copy_memory`` ``(B, S, D)`` and ``copy_mask`` ``(B, S)`` too."""
        b, s = src.shape
        sep = src.eq(SEP_ID)  # (B, S)
        word = src.ne(PAD_ID) & ~sep  # (B, S) the tokens that make up facts
        seg = sep.long().cumsum(1)  # (B, S) fact index of each token
        idx = torch.arange(s, device=src.device).expand(b, s)
        start = torch.where(sep, idx + 1, 0).cummax(1).values  # first index of the token's fact
        pos = idx - start  # (B, S) position in its fact
        n_facts = int(seg.max()) + 1
        if max(n_facts, s) > self._max_positions:
            raise TooLongError(
                f"{max(n_facts, s)} facts or positions exceed model.max_positions="
                f"{self._max_positions}; raise it or keep fewer statements (task.max_facts)"
            )
        words = self.src_embed(src) * self.word_mask[pos] * word[..., None]  # (B, S, D)
        facts = words.new_zeros(b, n_facts, self.d_model).scatter_add(
            1, seg[..., None].expand(-1, -1, self.d_model), words
        )  # (B, F, D)
        real = seg.new_zeros(b, n_facts).scatter_add(1, seg, word.long()).gt(0)  # (B, F)
        real[:, 0] |= ~real.any(1)  # a source of separators only: one empty fact, not NaN
        last = seg.masked_fill(~word, -1).max(1, keepdim=True).values  # (B, 1) last real fact
        recency = (last - torch.arange(n_facts, device=src.device)).clamp_min(0)  # (B, F)
        x = self.drop(facts * self.scale + self.recency(recency))  # (B, F, D)
        mask = real[:, None, None, :]  # (B, 1, 1, F)
        for layer in self.encoder:
            x = layer(x, mask)
        memory = {"memory": self.enc_norm(x), "src_mask": mask}
        if self.copy is not None:
            tokens = memory["memory"].gather(1, seg[..., None].expand(-1, -1, self.d_model))
            memory["copy_memory"] = tokens + self.src_embed(src) * self.scale  # (B, S, D)
            memory["copy_mask"] = word  # (B, S)
            memory["copy_ids"] = self.copy.target_ids(src)  # (B, S)
        return memory

    @staticmethod
    def _copy_source(sh: dict[str, Leaf]) -> tuple[Tensor, Tensor]:
        """What the copy head attends over: token memory ``(B, S, D)`` and mask ``(B, S)``
        (the encoder output itself, unless the encoder reads facts)."""
        if "copy_memory" in sh:
            return sh["copy_memory"], sh["copy_mask"]
        return sh["memory"], sh["src_mask"][:, 0, 0, :]

    def init_state(self, memory: dict[str, Leaf], beam_size: int) -> State:
        """Cross-attention keys/values once per sentence (``shared``, one per layer); empty
        self-attention caches per hypothesis (``hyp``)."""
        mem = memory["memory"]  # (B, S, D)
        n, dh = mem.size(0) * beam_size, self.d_model // self.n_heads
        cross = [layer.cross_attn.project_kv(mem) for layer in self.decoder]  # (B, H, S, Dh)
        empty = [mem.new_zeros(n, self.n_heads, 0, dh) for _ in self.decoder]  # (B*K, H, 0, Dh)
        shared: dict[str, Leaf] = {
            "src_mask": memory["src_mask"],
            "ck": [k for k, _ in cross],
            "cv": [v for _, v in cross],
        }
        if self.copy_attn is not None:  # what the copy head reads, once per sentence
            source, copy_mask = self._copy_source(memory)  # (B, S, D), (B, S)
            shared["copy_memory"], shared["copy_mask"] = source, copy_mask
            shared["copy_ids"] = memory["copy_ids"]
            shared["copy_keys"] = self.copy_attn.prepare(source)  # (B, S, D)
        return State(hyp={"k": empty, "v": list(empty)}, shared=shared, beam_size=beam_size)

    def step(self, prev_tokens: Tensor, state: State) -> tuple[Tensor, State]:
        x = self._embed(self.tgt_embed, prev_tokens[:, None], start=state.step)  # (B*K, 1, D)
        head = self._step_head(x, state)
        return step_layers(self.decoder, x, state, ("ck", "cv"), head, cross=True)

    def step_block(self, tokens: Tensor, state: State) -> tuple[Tensor, list[State]]:
        """``DecoderModel.step_block`` in one pass: the L tokens ``(N, L)`` at positions
        ``state.step ..`` through the layers at once, each attending to the cache and to the
        block's tokens before it (``layers.block_layers``); the states after each token share
        the one grown cache (views). Log-probs ``(N, L, V)`` equal L steps' to float tolerance,
        not bit for bit: the products have other shapes. A state asking for attention gets, in
        ``states[j]``, that of token j; copy and facts models run in one pass too."""
        x = self._embed(self.tgt_embed, tokens, start=state.step)  # (N, L, D)
        head = self._step_head(x, state)
        return block_layers(self.decoder, x, state, ("ck", "cv"), head, cross=True)

    def _step_head(self, x: Tensor, state: State) -> Callable[[Tensor], Tensor]:
        """Last layer's output ``(B*K, D)`` or ``(B*K, T, D)`` -> logits ``(B*K, [T,] V)``;
        with ``copy``, the mixture's log-probabilities, the K*T positions of a sentence being
        K*T queries of its copy attention (``x`` ``(B*K, T, D)``: the embedded input tokens)."""
        if self.copy is None:
            return lambda h: linear(self.out, self.dec_norm(h))
        k, d = state.beam_size, self.d_model
        emb = x.reshape(x.size(0) // k, -1, d)  # (B, K*T, D)

        def head(h: Tensor) -> Tensor:
            out = self._copy_out(h.reshape(emb.shape), emb, state.shared)  # (B, K*T, V)
            return out.reshape(*h.shape[:-1], -1)

        return head

    def _copy_out(self, h: Tensor, emb: Tensor, sh: dict[str, Leaf]) -> Tensor:
        """Pointer-generator log-probs ``(B, N, V)`` of N last-layer outputs per sentence ``h``
        ``(B, N, D)`` fed the embedded tokens ``emb`` ``(B, N, D)``; ``sh``: the sentences'
        ``copy_memory``/``copy_mask`` (or ``memory``/``src_mask``), ``copy_keys``, ``copy_ids``."""
        f = self.dec_norm(h)  # (B, N, D)
        source, mask = self._copy_source(sh)  # (B, S, D), (B, S)
        a, ctx = self.copy_attn(f, sh["copy_keys"], source, mask)  # (B, N, S), (B, N, D)
        gate_in = torch.cat([f, ctx, emb], dim=-1)  # (B, N, 3D)
        return self.copy(linear(self.out, f), a, sh["copy_ids"], gate_in, mask)  # (B, N, V)

    def forward(self, src_tokens: Tensor, src_lengths: Tensor, prev_tokens: Tensor) -> Tensor:
        """Teacher-forced logits ``(B, T, V)``; with ``copy``, log-probabilities."""
        memory = self.encode(src_tokens, src_lengths)
        x = emb = self._embed(self.tgt_embed, prev_tokens)  # (B, T, D)
        for layer in self.decoder:
            kv = layer.cross_attn.project_kv(memory["memory"])
            x = layer(x, kv, memory["src_mask"])
        if self.copy_attn is None:
            return self.out(self.dec_norm(x))  # (B, T, V)
        keys = self.copy_attn.prepare(self._copy_source(memory)[0])  # (B, S, D)
        return self._copy_out(x, emb, {**memory, "copy_keys": keys})  # (B, T, V)
