"""One step of beam-style search: the best extensions of every live hypothesis of a sentence.

Shared by the searches that keep K live hypotheses per sentence (beam, beam_lp, and the beams
built on them): they differ in what they rank by, not in how a step's candidates are chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lab.search.types import NEG_INF


@dataclass(frozen=True)
class Candidates:
    """The 2K best extensions of each of n sentences, in rank order, and the K that stay live.

    ``score``: processed running score; ``raw``: model log-prob sum (before any processor);
    ``beam``: the live hypothesis each extends; ``token``: the new token; ``eos``: whether that
    token is EOS (all ``(n, 2K)``). ``live`` ``(n, K)``: positions of the first K non-EOS
    candidates, which continue.
    """

    score: Tensor
    raw: Tensor
    beam: Tensor
    token: Tensor
    eos: Tensor
    live: Tensor

    def of_live(self, values: Tensor) -> Tensor:
        """``values`` ``(n, 2K)`` at the live positions: ``(n, K)``."""
        return values.gather(1, self.live)

    def live_scores(self, refill: bool) -> Tensor:
        """Running scores ``(n, K)`` of the hypotheses that go on; without ``refill`` only
        those ranked within the top K (the others' slots stay empty this step)."""
        live_s = self.of_live(self.score)
        if refill:
            return live_s
        return live_s.masked_fill(self.live >= self.live.size(1), NEG_INF)


BLOCK = 64  # vocabulary entries per block of ``top_extensions``' first level


def top_extensions(run_score: Tensor, processed: Tensor, m: int) -> tuple[Tensor, Tensor]:
    """The ``m`` best extensions of each sentence: scores ``(n, m)`` (``run_score`` ``(n, K)``
    plus ``processed`` ``(n*K, V)``, best first) and their flat indices ``beam * V + token``.

    The same as one ``topk`` over the ``(n, K*V)`` sums, in two levels that never form them:
    the best of each block of ``BLOCK`` tokens of a row (a sum's maximum is the running score
    plus the block's maximum), the ``m`` best blocks of each sentence, then the ``m`` best sums
    inside those blocks (a block outside them has ``m`` blocks above it, each holding a sum
    at least as good as its best). Sums are the same float additions, so scores are equal bit
    for bit; only the order of exactly equal scores may differ. Where a sentence has fewer than
    ``m`` finite sums, or too few blocks for the levels to pay, it takes the single ``topk``.
    """
    n, k = run_score.shape
    vocab = processed.size(1)
    blocks = -(-vocab // BLOCK)
    if k * blocks < 4 * m:
        return _top_of_sums(run_score, processed, m)
    whole = vocab // BLOCK * BLOCK
    peaks = processed[:, :whole].reshape(n * k, -1, BLOCK).amax(-1)  # (n*K, V // BLOCK)
    if whole < vocab:
        peaks = torch.cat([peaks, processed[:, whole:].amax(-1, keepdim=True)], 1)  # (n*K, C)
    best = (run_score[:, :, None] + peaks.view(n, k, blocks)).view(n, k * blocks)  # (n, K*C)
    chosen = best.topk(m, dim=1).indices  # (n, m) the m best blocks of each sentence
    beam = chosen // blocks  # (n, m)
    token = (chosen % blocks * BLOCK)[:, :, None] + torch.arange(BLOCK, device=chosen.device)
    flat = (beam * vocab)[:, :, None] + token.clamp_max(vocab - 1)  # (n, m, BLOCK)
    sums = processed.reshape(n, k * vocab).gather(1, flat.view(n, -1)).view(n, m, BLOCK)
    sums = (run_score.gather(1, beam)[:, :, None] + sums).masked_fill(token >= vocab, NEG_INF)
    score, j = sums.view(n, -1).topk(m, dim=1)  # (n, m)
    if not score[:, -1].isfinite().all():
        return _top_of_sums(run_score, processed, m)
    return score, flat.view(n, -1).gather(1, j)


def _top_of_sums(run_score: Tensor, processed: Tensor, m: int) -> tuple[Tensor, Tensor]:
    """``top_extensions`` by one ``topk`` over every sum ``(n, K*V)``."""
    n, k = run_score.shape
    cand = (run_score[:, :, None] + processed.view(n, k, -1)).view(n, -1)  # (n, K*V)
    return cand.topk(m, dim=1)


def top_candidates(
    run_score: Tensor, run_logp: Tensor, log_probs: Tensor, processed: Tensor, eos: int
) -> Candidates:
    """Rank the ``K*V`` extensions of each sentence's K hypotheses by running score plus the
    processed step log-probs ``processed`` ``(n*K, V)``, with one ``topk`` of 2K per sentence.

    ``run_score``/``run_logp`` ``(n, K)``: running processed score and model log-prob;
    ``log_probs`` ``(n*K, V)``: the model's step log-probs. 2K candidates always hold K that
    are not EOS, unless the vocabulary is smaller than that.
    """
    n, k = run_score.shape
    vocab = log_probs.size(1)
    score, idx = top_extensions(run_score, processed, min(2 * k, k * vocab))  # (n, 2K)
    beam, token = idx // vocab, idx % vocab  # (n, 2K)
    raw = run_logp.gather(1, beam) + log_probs.view(n, -1).gather(1, idx)  # (n, 2K)
    is_eos = token.eq(eos)  # (n, 2K)
    live = torch.sort(is_eos.to(torch.int8), dim=1, stable=True).indices[:, :k]  # (n, K)
    return Candidates(score, raw, beam, token, is_eos, live)
