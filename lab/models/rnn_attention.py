"""Attention of an RNN decoder's states over the encoder outputs (Bahdanau et al., 2015;
Luong et al., 2015): ``model.attention=additive|dot|general|none`` of ``lab.models.rnn``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lab.models.copy import masked_attention


class SourceAttention(nn.Module):
    """Attention of decoder states over one sentence's encoder outputs.

    ``prepare`` turns the encoder outputs into keys and values once per sentence; ``forward``
    takes N queries per sentence (the K beams while decoding, the T positions under teacher
    forcing) so the per-sentence memory is shared by all of them, never copied.
    """

    ctx_dim: int

    def prepare(self, enc: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values ``(B, S, .)`` of the encoder outputs ``enc`` ``(B, S, E)``."""
        raise NotImplementedError

    def scores(self, q: Tensor, keys: Tensor) -> Tensor:
        """Unnormalized scores ``(B, N, S)`` of queries ``q`` ``(B, N, H)``."""
        raise NotImplementedError

    def forward(
        self, q: Tensor, keys: Tensor, values: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Weights ``(B, N, S)`` and contexts ``(B, N, ctx_dim)``; ``mask`` ``(B, S)``: True at
        real tokens. An empty source gets zero weights and the zero context (``masked_attention``:
        no NaN, in the gradient either)."""
        p = masked_attention(self.scores(q, keys), mask)  # (B, N, S)
        return p, torch.bmm(p, values)  # (B, N, ctx_dim)


class AdditiveAttention(SourceAttention):
    """Bahdanau et al. (2015): ``v^T tanh(W_q q + W_k k)``; ``W_k k`` is precomputed."""

    def __init__(self, query_dim: int, enc_dim: int) -> None:
        super().__init__()
        self.w_q = nn.Linear(query_dim, query_dim, bias=False)
        self.w_k = nn.Linear(enc_dim, query_dim)
        self.v = nn.Linear(query_dim, 1, bias=False)
        self.ctx_dim = enc_dim

    def prepare(self, enc: Tensor) -> tuple[Tensor, Tensor]:
        return self.w_k(enc), enc  # (B, S, H), (B, S, E)

    def scores(self, q: Tensor, keys: Tensor) -> Tensor:
        hidden = torch.tanh(self.w_q(q)[:, :, None, :] + keys[:, None, :, :])  # (B, N, S, H)
        return self.v(hidden).squeeze(-1)  # (B, N, S)


class DotAttention(SourceAttention):
    """Luong dot: ``q . k`` with the encoder outputs projected to the decoder size once.

    The projection serves as both keys and values, so the context has the decoder size.
    """

    def __init__(self, query_dim: int, enc_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(enc_dim, query_dim, bias=False)
        self.ctx_dim = query_dim

    def prepare(self, enc: Tensor) -> tuple[Tensor, Tensor]:
        mem = self.proj(enc)  # (B, S, H)
        return mem, mem

    def scores(self, q: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(q, keys.transpose(1, 2))  # (B, N, S)


class GeneralAttention(SourceAttention):
    """Luong general: ``q^T W k`` (``W k`` precomputed); the values are the encoder outputs."""

    def __init__(self, query_dim: int, enc_dim: int) -> None:
        super().__init__()
        self.w = nn.Linear(enc_dim, query_dim, bias=False)
        self.ctx_dim = enc_dim

    def prepare(self, enc: Tensor) -> tuple[Tensor, Tensor]:
        return self.w(enc), enc  # (B, S, H), (B, S, E)

    def scores(self, q: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(q, keys.transpose(1, 2))  # (B, N, S)


ATTENTIONS: dict[str, type[SourceAttention] | None] = {
    "additive": AdditiveAttention,
    "dot": DotAttention,
    "general": GeneralAttention,
    "none": None,
}
