"""Decoder-only Transformer prefix LM: reads the source as a prefix, then continues with the target.

One embedding table covers both vocabularies (source ids are offset by ``tgt_vocab_size``), so
source and target may use different vocabularies; the output layer predicts target tokens only.
The sequence is ``[src_1..src_S] [BOS y_1 ... y_{T-1}]``; prefix positions attend to every real
prefix token (bidirectional), target positions attend to the real prefix and causally to the
targets. Positions count real tokens only (target t of sentence b sits at ``src_len_b + t``),
so the padding of a batch changes nothing.

Decoding runs the prefix once per sentence (``encode``) and keeps its per-layer keys/values in
``State.shared``; each hypothesis only caches the keys/values of its own target tokens.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lab.errors import TooLongError
from lab.models.base import DecoderModel, Leaf, State, padding_mask
from lab.models.layers import (
    Attention,
    Positions,
    SelfAttentionLayer,
    cached_self_attention,
    causal_mask,
    init_weights,
    merge_heads,
    split_heads,
    step_layers,
)
from lab.models.linear import linear
from lab.registry import MODELS


def prefix_lm_mask(src_lengths: Tensor, s: int, t: int) -> Tensor:
    """Boolean attention mask ``(B, 1, S+T, S+T)``, True where query i may attend key j.

    Every query sees the real prefix tokens; target queries also see earlier targets. Padded
    prefix queries additionally see themselves, so no row is fully masked (a fully masked row
    gives NaN, which would leak into real rows through 0 * NaN at the next layer).
    """
    device = src_lengths.device
    real = padding_mask(src_lengths, s)  # (B, S)
    to_prefix = real[:, None, :].expand(-1, s + t, -1).clone()  # (B, S+T, S)
    to_prefix[:, :s] |= torch.eye(s, dtype=torch.bool, device=device)
    to_target = torch.zeros(s + t, t, dtype=torch.bool, device=device)  # (S+T, T)
    to_target[s:] = causal_mask(t, device)
    to_target = to_target[None].expand(real.size(0), -1, -1)  # (B, S+T, T)
    return torch.cat([to_prefix, to_target], dim=-1)[:, None]  # (B, 1, S+T, S+T)


def prefix_cached_attention(
    attn: Attention,
    query: Tensor,
    prefix_kv: tuple[Tensor, Tensor],
    prefix_mask: Tensor,
    own_kv: tuple[Tensor, Tensor],
    beam: int,
) -> Tensor:
    """One decoding step of ``B*K`` hypotheses ``query`` ``(B*K, 1, D)``.

    Keys are the sentence's prefix ``(B, H, S, Dh)`` (shared by its K beams, which become K
    query rows of that sentence) together with the hypothesis' own target keys
    ``(B*K, H, t, Dh)``. Both score blocks go through one joint softmax, which is exactly the
    attention over the concatenated sequence. ``prefix_mask`` ``(B, 1, 1, S)``: True=keep.
    """
    nk = query.size(0)  # B*K
    q = split_heads(attn.q(query), attn.n_heads)  # (B*K, H, 1, Dh)
    _, h, _, dh = q.shape
    b, s, t = nk // beam, prefix_kv[0].size(2), own_kv[0].size(2)
    q = q * dh**-0.5
    q_beams = q.view(b, beam, h, dh).transpose(1, 2)  # (B, H, K, Dh)
    s_prefix = q_beams @ prefix_kv[0].transpose(-1, -2)  # (B, H, K, S)
    s_prefix = s_prefix.masked_fill(~prefix_mask, float("-inf"))
    s_own = (q @ own_kv[0].transpose(-1, -2)).view(b, beam, h, t).transpose(1, 2)  # (B, H, K, t)
    p = torch.softmax(torch.cat([s_prefix, s_own], dim=-1), dim=-1)  # (B, H, K, S+t)
    p = F.dropout(p, attn.dropout, attn.training)
    p_prefix, p_own = p.split([s, t], dim=-1)
    o_prefix = (p_prefix @ prefix_kv[1]).transpose(1, 2).reshape(nk, h, 1, dh)  # (B*K, H, 1, Dh)
    p_own = p_own.transpose(1, 2).reshape(nk, h, 1, t)  # (B*K, H, 1, t)
    o = o_prefix + p_own @ own_kv[1]  # (B*K, H, 1, Dh)
    return attn.out(merge_heads(o))  # (B*K, 1, D)


class PrefixLMLayer(SelfAttentionLayer):
    """Self-attention (prefix-LM mask) and feed-forward, each in a residual block."""

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Whole sequence ``x`` ``(B, L, D)``; also returns this layer's keys/values."""
        kv: list[tuple[Tensor, Tensor]] = []

        def self_attend(h: Tensor) -> Tensor:
            kv.append(self.attn.project_kv(h))  # (B, H, L, Dh) each
            return self.attn.attend(h, *kv[0], mask)

        x = self.r1(x, self_attend)
        return self.r2(x, self.ff), kv[0]

    def step(
        self,
        x: Tensor,
        own_kv: tuple[Tensor, Tensor],
        prefix_kv: tuple[Tensor, Tensor],
        prefix_mask: Tensor,
        beam: int,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One token per hypothesis ``x`` ``(B*K, 1, D)`` against the sentence's prefix
        keys/values ``(B, H, S, Dh)`` and the hypothesis' own ``(B*K, H, t, Dh)``; returns the
        output and its own keys/values grown by this token (``(B*K, H, t+1, Dh)`` each)."""
        x, grown = cached_self_attention(
            self.r1,
            x,
            self.attn,
            own_kv,
            lambda h, kv: prefix_cached_attention(self.attn, h, prefix_kv, prefix_mask, kv, beam),
        )
        return self.r2(x, self.ff), grown


@MODELS.register("decoder_only")
class DecoderOnly(DecoderModel):
    """Decoder-only Transformer prefix LM over [source; target] with a key/value cache."""

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        d_model: int = 256,
        n_heads: int = 8,
        n_layers: int = 6,
        d_ff: int = 1024,
        dropout: float = 0.1,
        pre_norm: bool = True,
        positions: str = "sinusoidal",
        tie_embeddings: bool = True,
        max_positions: int = 1024,
    ) -> None:
        super().__init__(src_vocab_size, tgt_vocab_size)
        self.d_model, self.n_heads, self._total_positions = d_model, n_heads, max_positions
        self.tie_embeddings = tie_embeddings
        self.embed = nn.Embedding(tgt_vocab_size + src_vocab_size, d_model)
        self.positions = Positions(positions, max_positions, d_model)
        self.drop = nn.Dropout(dropout)
        args = (d_model, n_heads, d_ff, dropout, pre_norm)
        self.layers = nn.ModuleList(PrefixLMLayer(*args) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model) if pre_norm else nn.Identity()
        self.out = None if tie_embeddings else nn.Linear(d_model, tgt_vocab_size, bias=False)
        self.scale = math.sqrt(d_model)
        init_weights(self, d_model, self.embed)

    @property
    def max_source_positions(self) -> int:
        """Longest source accepted: the first half of the position table."""
        return self._total_positions // 2

    @property
    def max_positions(self) -> int:
        """Longest target guaranteed to fit after any accepted source (the target starts after
        the source, so it gets what the longest source leaves of the position table)."""
        return self._total_positions - self.max_source_positions

    def _logits(self, x: Tensor) -> Tensor:
        """Target-vocabulary logits ``(..., V_tgt)``; tied to the first ``V_tgt`` embedding rows."""
        if self.out is None:
            return F.linear(x, self.embed.weight[: self.tgt_vocab_size])
        return linear(self.out, x)

    def _embed(self, tokens: Tensor, positions: Tensor) -> Tensor:
        return self.drop(self.embed(tokens) * self.scale + self.positions(positions))  # (N, T, D)

    def _check_source(self, src_tokens: Tensor) -> None:
        if src_tokens.size(1) > self.max_source_positions:
            raise TooLongError(
                f"source of {src_tokens.size(1)} tokens exceeds max_source_positions="
                f"{self.max_source_positions}; raise model.max_positions (to 2x the source)"
            )

    def _embed_source(self, src_tokens: Tensor) -> Tensor:
        pos = torch.arange(src_tokens.size(1), device=src_tokens.device)
        return self._embed(src_tokens + self.tgt_vocab_size, pos[None])  # (B, S, D)

    def encode(self, src_tokens: Tensor, src_lengths: Tensor) -> dict[str, Leaf]:
        """Run the prefix once; keep every layer's prefix keys/values ``(B, H, S, Dh)``."""
        self._check_source(src_tokens)
        s = src_tokens.size(1)
        mask = prefix_lm_mask(src_lengths, s, 0)  # (B, 1, S, S)
        x = self._embed_source(src_tokens)  # (B, S, D)
        keys, values = [], []
        for layer in self.layers:
            x, (k, v) = layer(x, mask)  # (B, H, S, Dh) each
            keys.append(k)
            values.append(v)
        return {
            "src_mask": padding_mask(src_lengths, s),
            "src_lengths": src_lengths,
            "pk": keys,
            "pv": values,
        }

    def init_state(self, memory: dict[str, Leaf], beam_size: int) -> State:
        shared = dict(memory)
        shared["src_mask"] = memory["src_mask"][:, None, None, :]  # (B, 1, 1, S)
        n, dh = memory["src_lengths"].size(0) * beam_size, self.d_model // self.n_heads
        empty = memory["pk"][0].new_zeros(n, self.n_heads, 0, dh)  # (B*K, H, 0, Dh)
        hyp: dict[str, Leaf] = {"k": [empty] * len(self.layers), "v": [empty] * len(self.layers)}
        return State(hyp=hyp, shared=shared, beam_size=beam_size)

    def step(self, prev_tokens: Tensor, state: State) -> tuple[Tensor, State]:
        if state.step >= self.max_positions:
            raise TooLongError(f"target longer than model.max_positions={self.max_positions}")
        k, sh = state.beam_size, state.shared
        pos = sh["src_lengths"].repeat_interleave(k) + state.step  # (B*K,)
        x = self._embed(prev_tokens[:, None], pos[:, None])  # (B*K, 1, D)
        return step_layers(
            self.layers, x, state, ("pk", "pv"), lambda h: self._logits(self.norm(h))
        )

    def forward(self, src_tokens: Tensor, src_lengths: Tensor, prev_tokens: Tensor) -> Tensor:
        """Teacher forcing over the whole ``[source; target]`` sequence with an explicit mask."""
        self._check_source(src_tokens)
        s, t = src_tokens.size(1), prev_tokens.size(1)
        if t > self.max_positions:
            raise TooLongError(
                f"target of {t} tokens exceeds model.max_positions={self.max_positions}"
            )
        tgt_pos = src_lengths[:, None] + torch.arange(t, device=prev_tokens.device)  # (B, T)
        x = torch.cat([self._embed_source(src_tokens), self._embed(prev_tokens, tgt_pos)], 1)
        mask = prefix_lm_mask(src_lengths, s, t)  # (B, 1, S+T, S+T)
        for layer in self.layers:
            x, _ = layer(x, mask)
        return self._logits(self.norm(x[:, s:]))  # (B, T, V)
