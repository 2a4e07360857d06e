"""Lexical constraints for beam search: how far each hypothesis is through its sentence's
phrases, and dynamic beam allocation over that progress (Post & Vilar, 2018, "Fast lexically
constrained decoding with dynamic beam allocation"; vectorized as Hu et al., 2019, and
fairseq's ``LexicallyConstrainedBeamSearch``).

Progress is counted in constraint tokens, as Post & Vilar's banks are: the tokens of the phrases
a hypothesis already contains, plus the longest partial phrase its last tokens begin. It is
recomputed from the tokens every step (no per-hypothesis state to reorder), for every candidate
next token at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


class Phrases:
    """The include-phrases of a batch, ``ids`` ``(B, C, L)`` (``-1`` past each phrase's end; a
    sentence with fewer than C phrases has empty ones, always met) and ``lengths`` ``(B, C)``."""

    def __init__(self, phrases: Sequence[Sequence[Sequence[int]]], device: torch.device) -> None:
        c = max((len(p) for p in phrases), default=1) or 1  # one empty phrase at least
        length = max((len(x) for p in phrases for x in p), default=0)
        self.ids = torch.full((len(phrases), c, length), -1, dtype=torch.long, device=device)
        for i, sent in enumerate(phrases):
            for j, phrase in enumerate(sent):
                self.ids[i, j, : len(phrase)] = torch.tensor(list(phrase), dtype=torch.long)
        self.lengths = (self.ids >= 0).sum(-1)  # (B, C)
        self.total = self.lengths.sum(-1)  # (B,) constraint tokens of each sentence

    def keep(self, sentences: Tensor) -> None:
        self.ids, self.lengths = self.ids[sentences], self.lengths[sentences]
        self.total = self.total[sentences]


def contained(tokens: Tensor, ids: Tensor, lengths: Tensor) -> Tensor:
    """Whether each row's ``tokens`` ``(N, T)`` contain each of its phrases ``ids``
    ``(N, C, L)`` of ``lengths`` ``(N, C)``: ``(N, C)``; an empty phrase is always contained."""
    n, c, length = ids.shape
    if length == 0:
        return torch.ones(n, c, dtype=torch.bool, device=ids.device)
    padded = torch.cat([tokens, tokens.new_full((n, length), -2)], dim=1)  # (N, T+L)
    windows = padded.unfold(1, length, 1)  # (N, W, L)
    inside = torch.arange(length, device=ids.device) < lengths[:, :, None]  # (N, C, L)
    same = windows[:, None] == ids[:, :, None]  # (N, C, W, L)
    return (same | ~inside[:, :, None]).all(-1).any(-1)  # (N, C)


def ends_with(tokens: Tensor, ids: Tensor, p: int) -> Tensor:
    """Whether each row's ``tokens`` ``(N, T)`` end with the first ``p`` tokens of each of its
    phrases ``ids`` ``(N, C, L)``: ``(N, C)``."""
    n, c, _ = ids.shape
    if p == 0:
        return torch.ones(n, c, dtype=torch.bool, device=ids.device)
    if tokens.size(1) < p:
        return torch.zeros(n, c, dtype=torch.bool, device=ids.device)
    return (tokens[:, None, -p:] == ids[:, :, :p]).all(-1)  # (N, C)


def progress(tokens: Tensor, phrases: Phrases, k: int, vocab: int) -> tuple[Tensor, Tensor]:
    """For each of the ``N = n*K`` rows, the constraint tokens met after appending each token
    ``(N, V)``, and whether the row already contains every phrase ``(N,)``."""
    ids = phrases.ids.repeat_interleave(k, 0)  # (N, C, L)
    lengths = phrases.lengths.repeat_interleave(k, 0)  # (N, C)
    met = contained(tokens, ids, lengths)  # (N, C)
    base = (lengths * met).sum(-1)  # (N,)
    n, c = tokens.size(0), ids.size(1)
    completed = torch.zeros(n, c, vocab, dtype=torch.long, device=tokens.device)  # (N, C, V)
    partial = torch.zeros_like(completed)  # (N, C, V) tokens of each phrase begun
    for p in range(ids.size(-1)):
        idx = ids[:, :, p : p + 1].clamp(min=0)  # (N, C, 1) the phrase's (p+1)-th token
        go = ends_with(tokens, ids, p) & ~met & (lengths > p)  # (N, C)
        done = go & (lengths == p + 1)  # (N, C) the token completes the phrase
        completed.scatter_reduce_(2, idx, (lengths * done)[:, :, None], "amax")
        partial.scatter_reduce_(2, idx, ((p + 1) * (go & ~done).long())[:, :, None], "amax")
    begun = partial.masked_fill(completed > 0, 0).amax(1)  # (N, V) of phrases still unmet
    return base[:, None] + completed.sum(1) + begun, met.all(-1)


def allocate(scores: Tensor, banks: Tensor, k: int) -> Tensor:
    """Dynamic beam allocation: the ``k`` candidates ``(n, k)`` (indices into dim 1) chosen from
    ``scores`` ``(n, M)`` by striping over ``banks`` ``(n, M)`` (constraint tokens met): the best
    of each bank, most advanced bank first, then the second best of each, and so on, so an
    empty bank's slots go to the others. -inf candidates come last."""
    n, m = scores.shape
    nb = int(banks.max()) + 1
    order = scores.sort(dim=1, descending=True, stable=True).indices  # (n, M) best first
    bank_sorted, perm = banks.gather(1, order).sort(dim=1, stable=True)  # (n, M) grouped by bank
    cand = order.gather(1, perm)  # (n, M) candidates by bank, best first within each
    counts = torch.zeros(n, nb, dtype=torch.long, device=scores.device)
    counts.scatter_add_(1, banks, torch.ones_like(banks))  # (n, nb)
    first = (counts.cumsum(1) - counts).gather(1, bank_sorted)  # (n, M) bank's first position
    rank = torch.arange(m, device=scores.device) - first  # (n, M) rank within the bank
    key = rank * nb + (nb - 1 - bank_sorted)  # (n, M) stripe: rank, then the higher bank
    key = key.masked_fill(scores.gather(1, cand).isneginf(), n * m * nb + 1)
    pick = key.sort(dim=1, stable=True).indices[:, :k]  # (n, k)
    return cand.gather(1, pick)
