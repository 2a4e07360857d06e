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
    cand = (run_score[:, :, None] + processed.view(n, k, vocab)).view(n, k * vocab)
    score, idx = cand.topk(min(2 * k, k * vocab), dim=1)  # (n, 2K)
    beam, token = idx // vocab, idx % vocab  # (n, 2K)
    raw = run_logp.gather(1, beam) + log_probs.view(n, -1).gather(1, idx)  # (n, 2K)
    is_eos = token.eq(eos)  # (n, 2K)
    live = torch.sort(is_eos.to(torch.int8), dim=1, stable=True).indices[:, :k]  # (n, K)
    return Candidates(score, raw, beam, token, is_eos, live)
