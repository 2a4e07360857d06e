"""Forced target prefixes, applied by the decoding driver for every step-by-step search.

At step ``t`` a row whose sentence has a prefix longer than ``t - 1`` may choose only the
prefix's ``t``-th token. The token keeps its score (processed, or the model's log-prob where a
processor had ruled it out), so a search ranks, and reports, the whole output: ``logprob``
stays the model's log-prob of prefix and continuation together (CTranslate2's
``target_prefix`` and fairseq's ``--prefix-size`` score the prefix the same way).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lab.search.types import NEG_INF, Constraints


class ForcedPrefix:
    """The prefixes ``(B, P)`` of a batch (``-1`` past each one's end) and their lengths."""

    def __init__(self, prefixes: Sequence[Sequence[int]], device: torch.device) -> None:
        width = max((len(p) for p in prefixes), default=0)
        self.ids = torch.full((len(prefixes), width), -1, dtype=torch.long, device=device)
        for i, p in enumerate(prefixes):
            self.ids[i, : len(p)] = torch.tensor(list(p), dtype=torch.long)  # (B, P)
        self.lengths = (self.ids >= 0).sum(1)  # (B,)

    @classmethod
    def of(
        cls, constraints: Sequence[Constraints | None] | None, device: torch.device
    ) -> ForcedPrefix | None:
        """The batch's prefixes, or None when no sentence has one."""
        prefixes = [c.prefix if c is not None else () for c in constraints or ()]
        return cls(prefixes, device) if any(prefixes) else None

    def limits(self, limit: Tensor) -> Tensor:
        """Each sentence's output limit ``(B,)`` raised to fit its prefix and EOS."""
        return torch.maximum(limit, self.lengths + 1)

    def __call__(
        self, processed: Tensor, log_probs: Tensor, t: int, alive: Tensor, width: int
    ) -> Tensor:
        """``processed`` ``(n*K, V)`` with only the prefix token left where step ``t`` is inside
        the prefix of the row's sentence (``alive`` ``(n,)``: the batch positions)."""
        if t > self.ids.size(1):
            return processed
        tok = self.ids[alive, t - 1].repeat_interleave(width)  # (n*K,)
        forced = tok >= 0  # (n*K,)
        if not forced.any():
            return processed
        idx = tok.clamp(min=0)[:, None]  # (n*K, 1)
        keep = processed.gather(1, idx)  # (n*K, 1)
        keep = torch.where(keep.isneginf(), log_probs.gather(1, idx), keep)
        only = torch.full_like(processed, NEG_INF).scatter(1, idx, keep)  # (n*K, V)
        return torch.where(forced[:, None], only, processed)

    def per_row(self, k: int) -> ForcedPrefix:
        """The prefixes with each sentence's repeated ``k`` times: one entry per row, for a
        batch decoded with its rows apart (``lab.search.driver.decode``)."""
        out = ForcedPrefix([], self.ids.device)
        out.ids, out.lengths = self.ids.repeat_interleave(k, 0), self.lengths.repeat_interleave(k)
        return out
