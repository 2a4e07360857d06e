"""Drawing a token by inversion: one uniform ``u`` per row, the first token whose cumulative
probability exceeds ``u`` times the row's total. That costs one random number per row and step
instead of one per vocabulary entry (Gumbel-max), and has the same distribution.

The inversion is done in two levels, so that no vocabulary-wide float64 pass is needed (a
float64 cumulative sum over the vocabulary costs about half a model step on a CPU): the
probabilities (float32) are summed in blocks of ``BLOCK`` tokens (float32), the block sums
accumulated in float64 pick the block, and one float64 cumulative sum over the ``BLOCK``
tokens of the chosen block picks the token. The remainder inside the block is rescaled by the
block's exact (float64) sum over its float32 one, so each token is drawn with probability
``p_j / S_b * B_b / T`` (``S_b``: the block's float64 sum, ``B_b``: its float32 sum, ``T`` the
sum of the ``B_b``): the only error is the float32 block sum's relative rounding (at most
``BLOCK`` ulps, ~4e-6; a few ulps in practice), relative to each token's own probability, rare
tokens included. A float32 cumulative sum over the whole vocabulary would instead carry an
absolute error of half an ulp of the running total (3e-8) on every token: tokens rarer than
that would be drawn with a wrong probability (0 or twice theirs), a total-variation error
growing with the vocabulary (~1e-4 at 30k tokens). Hence float64 where totals are accumulated.
"""

from __future__ import annotations

import torch
from torch import Tensor

BLOCK = 64  # tokens per block of the two-level inversion


def draw(log_q: Tensor, u: Tensor) -> Tensor:
    """Inverse-CDF draws ``(N,)`` from log-weights ``log_q`` ``(N, V)`` (normalized or not) with
    uniforms ``u`` ``(N, 1)`` (float64); see ``draw_with_total``."""
    return draw_with_total(log_q, u)[0]


def draw_with_total(log_q: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """Inverse-CDF draws ``(N,)`` and each row's total weight ``(N,)`` (float64, the sum of
    ``exp(log_q)``), from log-weights ``log_q`` ``(N, V)`` and uniforms ``u`` ``(N, 1)`` in
    [0, 1) (float64: a float32 uniform's 2^-24 grid would again misdraw the rarest tokens).

    Row i gets the first token whose cumulative weight exceeds ``u[i]`` times the row's
    total, by the two-level inversion of the module docstring (``invert``).
    """
    probs = log_q.exp()  # (N, V) in log_q's dtype
    sums = block_sums(probs)  # (N, nb)
    tok, _, _, total = invert(probs, sums, u)
    return tok, total


def block_sums(probs: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """The sums ``(N, ceil(V / BLOCK))`` of ``probs`` ``(N, V)`` over consecutive blocks of
    ``BLOCK`` tokens (the last block may be shorter), in ``dtype`` (None: ``probs``')."""
    n, v = probs.shape
    full = v - v % BLOCK
    sums = probs[:, :full].reshape(n, -1, BLOCK).sum(-1, dtype=dtype)  # (N, V // BLOCK)
    if full < v:  # a last, shorter block
        sums = torch.cat([sums, probs[:, full:].sum(-1, keepdim=True, dtype=dtype)], dim=1)
    return sums  # (N, nb)


def invert(probs: Tensor, sums: Tensor, u: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The two-level inversion: per row, the first token whose cumulative weight exceeds
    ``u`` ``(N, 1)`` times the row's total, from the weights ``probs`` ``(N, V)`` and their
    ``block_sums`` ``sums`` ``(N, nb)`` (each block's sum up to its own relative rounding:
    the remainder inside the chosen block is rescaled by the block's float64 sum over
    ``sums``' entry). Returns the tokens ``(N,)``, their blocks ``(N,)``, the chosen
    blocks' weights ``(N, BLOCK)`` (0 past the vocabulary) and each row's total ``(N,)``
    (float64, the sum of ``sums``).

    A token of weight 0 is never drawn (its cumulative value equals its predecessor's, so it
    is never the first to exceed), nor a block of weight 0; where rounding puts the target at
    the very end of a row or block, the last token of positive weight there is taken.
    """
    v = probs.size(1)
    cum = sums.cumsum(-1, dtype=torch.float64)  # (N, nb)
    target = u.to(torch.float64) * cum[:, -1:]  # (N, 1)
    block = _first_above(cum, target, sums.gt(0))  # (N,)
    before = cum.gather(1, (block - 1).clamp_min(0)[:, None]).squeeze(1)  # (N,)
    before = torch.where(block > 0, before, 0.0)  # (N,)
    idx = block[:, None] * BLOCK + torch.arange(BLOCK, device=probs.device)  # (N, BLOCK)
    p = probs.gather(1, idx.clamp_max(v - 1)).masked_fill(idx >= v, 0.0)  # (N, BLOCK)
    exact = p.cumsum(-1, dtype=torch.float64)  # (N, BLOCK)
    listed = sums.gather(1, block[:, None]).squeeze(1).double()  # (N,)
    ratio = exact[:, -1] / listed.clamp_min(torch.finfo(torch.float64).tiny)  # (N,)
    rest = (target.squeeze(1) - before).clamp_min(0.0) * ratio  # (N,)
    tok = block * BLOCK + _first_above(exact, rest[:, None], p.gt(0))  # (N,)
    return tok.clamp_max(v - 1), block, p, cum[:, -1]  # a row of no weight gets an index too


def _first_above(cum: Tensor, target: Tensor, positive: Tensor) -> Tensor:
    """Per row, the first index whose ``cum`` ``(N, M)`` exceeds ``target`` ``(N, 1)``; where
    none does (rounding at the very end), the last index where ``positive`` ``(N, M)``."""
    m = cum.size(1)
    idx = torch.searchsorted(cum, target.contiguous(), right=True).squeeze(1)  # (N,)
    past = idx >= m  # (N,)
    if past.any():
        last = m - 1 - positive[past].flip(-1).to(torch.uint8).argmax(dim=-1)  # (M',)
        idx = idx.masked_scatter(past, last)
    return idx
