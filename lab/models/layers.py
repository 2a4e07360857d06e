"""Transformer building blocks shared by the encoder-decoder and the decoder-only models."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lab.errors import LabError
from lab.models.base import Leaf, State
from lab.models.copy import masked_attention
from lab.models.linear import linear

KV = tuple[Tensor, Tensor]  # keys and values ``(N, H, T, Dh)`` each


def sinusoidal_table(n_positions: int, dim: int) -> Tensor:
    """Vaswani et al. (2017) position encodings ``(n_positions, dim)``."""
    pos = torch.arange(n_positions, dtype=torch.float32)[:, None]
    inv = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(n_positions, dim)
    table[:, 0::2] = torch.sin(pos * inv)
    table[:, 1::2] = torch.cos(pos * inv[: dim // 2])
    return table


class Positions(nn.Module):
    """Sinusoidal (fixed) or learned position embeddings, looked up by explicit position ids."""

    def __init__(self, kind: str, n_positions: int, dim: int) -> None:
        super().__init__()
        if kind not in ("sinusoidal", "learned"):
            raise LabError(f"model.positions={kind!r}; valid: sinusoidal, learned.")
        self.n_positions = n_positions
        if kind == "learned":
            self.table = nn.Embedding(n_positions, dim)
        else:
            self.register_buffer("fixed", sinusoidal_table(n_positions, dim), persistent=False)
            self.table = None

    def forward(self, positions: Tensor) -> Tensor:
        if self.table is not None:
            return self.table(positions)
        return self.fixed[positions]


def split_heads(x: Tensor, n_heads: int) -> Tensor:
    """``(N, T, D) -> (N, H, T, D/H)``."""
    n, t, d = x.shape
    return x.view(n, t, n_heads, d // n_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """``(N, H, T, Dh) -> (N, T, H*Dh)``."""
    n, h, t, dh = x.shape
    return x.transpose(1, 2).reshape(n, t, h * dh)


class Attention(nn.Module):
    """Multi-head attention softmax(QK^T/sqrt(d_k))V through torch's fused SDPA kernel."""

    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        if dim % n_heads:
            raise LabError(f"model.d_model={dim} is not divisible by model.n_heads={n_heads}.")
        self.n_heads = n_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout

    def project_kv(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values ``(N, H, T, Dh)`` of ``x`` ``(N, T, D)``; cacheable."""
        return split_heads(linear(self.k, x), self.n_heads), split_heads(
            linear(self.v, x), self.n_heads
        )

    def attend(self, query: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        """``query`` ``(N, Tq, D)`` against cached ``k, v`` ``(N, H, Tk, Dh)``; mask True=keep."""
        q = split_heads(linear(self.q, query), self.n_heads)  # (N, H, Tq, Dh)
        p = self.dropout if self.training else 0.0
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return linear(self.out, merge_heads(o))  # (N, Tq, D)

    def attend_beams(self, query: Tensor, k: Tensor, v: Tensor, mask: Tensor, beam: int) -> Tensor:
        """One decoding step of ``B*K`` hypotheses against per-sentence ``k, v`` ``(B, H, S, Dh)``.

        The K beams of a sentence become K query positions of that sentence, so encoder keys
        and values are shared by the beams instead of copied K times.
        """
        return self.attend_beams_weighted(query, k, v, mask, beam, weights=False)[0]

    def attend_beams_weighted(
        self, query: Tensor, k: Tensor, v: Tensor, mask: Tensor, beam: int, weights: bool
    ) -> tuple[Tensor, Tensor | None]:
        """``attend_beams`` for ``T`` new tokens per hypothesis ``query`` ``(B*K, T, D)`` (the
        K*T queries of a sentence share its keys), and with ``weights`` its attention averaged
        over the heads ``(B*K, T, S)`` (0 at padding). The output still comes from the fused
        kernel, which returns no weights, so asking for them adds one product and softmax and
        changes no output."""
        nk, t = query.shape[:2]  # B*K, T
        q = linear(self.q, query).reshape(nk // beam, beam * t, -1)  # (B, K*T, D)
        q = split_heads(q, self.n_heads)  # (B, H, K*T, Dh)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, K*T, Dh)
        out = linear(self.out, merge_heads(o).reshape(nk, t, -1))  # (B*K, T, D)
        if not weights:
            return out, None
        b, h, kt, dh = q.shape
        scores = (q @ k.transpose(-1, -2)).view(b, h * kt, -1) / math.sqrt(dh)  # (B, H*K*T, S)
        p = masked_attention(scores.float(), mask.view(b, -1))  # (B, H*K*T, S)
        return out, p.view(b, h, kt, -1).mean(1).reshape(nk, t, -1)  # (B*K, T, S)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )

    def forward(self, x: Tensor) -> Tensor:
        first, _, drop, second = self.net  # Linear, ReLU, Dropout, Linear
        return linear(second, drop(linear(first, x, relu=True)))


class Residual(nn.Module):
    """``x + dropout(f(norm(x)))`` (pre-norm) or ``norm(x + dropout(f(x)))`` (post-norm)."""

    def __init__(self, dim: int, dropout: float, pre_norm: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        self.pre_norm = pre_norm

    def forward(self, x: Tensor, fn) -> Tensor:  # noqa: ANN001 - fn: Tensor -> Tensor
        if self.pre_norm:
            return x + self.drop(fn(self.norm(x)))
        return self.norm(x + self.drop(fn(x)))


class SelfAttentionLayer(nn.Module):
    """Self-attention and feed-forward, each in a residual block; subclasses add ``forward``
    (and ``step``) for their mask and cache."""

    def __init__(self, d: int, heads: int, ff: int, dropout: float, pre_norm: bool) -> None:
        super().__init__()
        self.attn = Attention(d, heads, dropout)
        self.ff = FeedForward(d, ff, dropout)
        self.r1 = Residual(d, dropout, pre_norm)
        self.r2 = Residual(d, dropout, pre_norm)


def cached_self_attention(
    residual: Residual,
    x: Tensor,
    attn: Attention,
    cache: KV,
    attend: Callable[[Tensor, KV], Tensor],
) -> tuple[Tensor, KV]:
    """The residual self-attention block for T new tokens per row ``x`` ``(N, T, D)`` (T = 1
    in a step): their keys and values are appended to ``cache`` ``(N, H, t, Dh)`` (by
    ``torch.cat``, a new tensor: a cache is never written in place, so states may share one)
    and ``attend(h, grown)`` attends the block's input ``h`` over them. Returns the block's
    output and the grown cache (``(N, H, t+T, Dh)`` each)."""
    grown: list[KV] = []

    def self_attend(h: Tensor) -> Tensor:
        k, v = attn.project_kv(h)  # (N, H, T, Dh)
        k = torch.cat([cache[0], k], dim=2)  # (N, H, t+T, Dh)
        v = torch.cat([cache[1], v], dim=2)
        grown.append((k, v))
        return attend(h, (k, v))

    return residual(x, self_attend), grown[0]


def run_layers(
    layers: nn.ModuleList, x: Tensor, state: State, memory: tuple[str, str], cross: bool
) -> tuple[Tensor, list[Tensor], list[Tensor], Tensor | None]:
    """The embedded new tokens ``x`` ``(B*K, T, D)`` through every layer, called as
    ``layer.step(x, own_kv, memory_kv, mask, beam)`` with its entry of the hypotheses' caches
    (``state.hyp["k"]``, ``["v"]``) and of the per-sentence keys/values named by ``memory`` in
    ``state.shared`` (mask: ``shared["src_mask"]``). Returns the last layer's output
    ``(B*K, T, D)``, the grown caches (one per layer, ``(B*K, H, t+T, Dh)``) and, when
    ``cross`` and the state asks (``State.want_attention``), the last layer's cross-attention
    ``(B*K, T, S)`` (``layer.step(..., weights=True)`` gives it as a third value), else None."""
    sh, hyp = state.shared, state.hyp
    keys, values, attention = [], [], None
    last = len(layers) - 1
    for i, (layer, k, v, mk, mv) in enumerate(
        zip(layers, hyp["k"], hyp["v"], sh[memory[0]], sh[memory[1]], strict=True)
    ):
        args = (x, (k, v), (mk, mv), sh["src_mask"], state.beam_size)
        if cross and state.want_attention and i == last:
            x, (k, v), attention = layer.step(*args, weights=True)
        else:
            x, (k, v) = layer.step(*args)
        keys.append(k)
        values.append(v)
    return x, keys, values, attention


def step_layers(
    layers: nn.ModuleList,
    x: Tensor,
    state: State,
    memory: tuple[str, str],
    head: Callable[[Tensor], Tensor],
    cross: bool = False,
) -> tuple[Tensor, State]:
    """One cached decoding step of the embedded tokens ``x`` ``(B*K, 1, D)`` through the
    layers (``run_layers``), then through ``head`` to logits. Returns the log-probs
    ``(B*K, V)`` and the state with the grown caches, one step on (with the last layer's
    cross-attention ``(B*K, S)`` when ``cross`` and asked for)."""
    x, keys, values, attention = run_layers(layers, x, state, memory, cross)
    logits = head(x[:, 0])  # (B*K, V)
    grown: dict[str, Leaf] = {"k": keys, "v": values}
    attention = None if attention is None else attention[:, 0]  # (B*K, S)
    return torch.log_softmax(logits.float(), dim=-1), state.successor(grown, attention)


def block_layers(
    layers: nn.ModuleList,
    x: Tensor,
    state: State,
    memory: tuple[str, str],
    head: Callable[[Tensor], Tensor],
    cross: bool = False,
) -> tuple[Tensor, list[State]]:
    """``step_layers`` over a block of L tokens ``x`` ``(B*K, L, D)`` in one pass (each token
    attends to the cache and to the block's tokens before it): the log-probs ``(B*K, L, V)``
    of ``head`` ``(B*K, L, D) -> (B*K, L, V)`` and the state after each token. ``states[j]``
    holds views of the one grown cache cut after token j (``[:, :, :t+j+1]``), safe to share
    because a cache is only ever extended by ``torch.cat`` (``cached_self_attention``)."""
    x, keys, values, attention = run_layers(layers, x, state, memory, cross)
    log_probs = torch.log_softmax(head(x).float(), dim=-1)  # (B*K, L, V)
    states = []
    for j in range(x.size(1)):
        end = state.step + j + 1
        hyp: dict[str, Leaf] = {
            "k": [k[:, :, :end] for k in keys],  # (B*K, H, t+j+1, Dh)
            "v": [v[:, :, :end] for v in values],
        }
        seen = None if attention is None else attention[:, j]  # (B*K, S)
        states.append(replace(state, hyp=hyp, step=end, attention=seen))
    return log_probs, states


def init_weights(model: nn.Module, d_model: int, *embeddings: nn.Embedding) -> None:
    """Xavier-uniform for every matrix of ``model`` outside the embeddings, then N(0, 1/d_model)
    for the ``embeddings`` tables, in that order."""
    for name, p in model.named_parameters():
        if p.dim() > 1 and "embed" not in name:
            nn.init.xavier_uniform_(p)
    for table in embeddings:
        nn.init.normal_(table.weight, std=d_model**-0.5)


def causal_mask(t: int, device: torch.device) -> Tensor:
    """``(T, T)`` boolean, True where query i may attend key j (j <= i)."""
    return torch.ones(t, t, dtype=torch.bool, device=device).tril()


def cache_mask(new: int, total: int, device: torch.device) -> Tensor | None:
    """``(new, total)`` boolean for ``new`` tokens appended to a cache of ``total - new``: True
    where new token i may attend key j (j <= total - new + i). None for one new token (it sees
    the whole cache, and a step keeps the unmasked kernel)."""
    if new == 1:
        return None
    return torch.ones(new, total, dtype=torch.bool, device=device).tril(total - new)
