"""Greedy search capped at ``max_tokens`` tokens: the smallest complete search plug-in.

It uses only the model's decoding interface (``encode``, ``init_state``, ``step``) and returns
the lab's ``SearchOutput``, so the lab decodes, scores and records it like its own searches.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.search.types import Cost, Hypothesis, SearchOutput


class CappedGreedy:
    """Greedy search whose outputs stop after max_tokens tokens (an example plug-in)."""

    def __init__(self, max_tokens: int = 5) -> None:
        if int(max_tokens) < 1:
            raise LabError(f"search.max_tokens must be >= 1, got {max_tokens}.")
        self.max_tokens = int(max_tokens)

    def __call__(self, model: DecoderModel, src: Tensor, src_lengths: Tensor) -> SearchOutput:
        with torch.inference_mode():
            n, dev = src.size(0), src.device
            cost = Cost(sentences=n, model_calls=1)
            state = model.init_state(model.encode(src, src_lengths), 1)
            prev = torch.full((n,), model.bos_id, device=dev)  # (n,)
            logprob = torch.zeros(n, device=dev)  # (n,)
            done = torch.zeros(n, dtype=torch.bool, device=dev)  # (n,)
            tokens: list[list[int]] = [[] for _ in range(n)]
            for _ in range(self.max_tokens):
                log_probs, state = model.step(prev, state)  # (n, V)
                cost.count_step(n)
                best, prev = log_probs.max(dim=-1)  # (n,), (n,)
                logprob += best.masked_fill(done, 0.0)
                for i in (~done).nonzero().squeeze(1).tolist():
                    tokens[i].append(int(prev[i]))
                done |= prev.eq(model.eos_id)
                if bool(done.all()):
                    break
        nbest = [
            [Hypothesis(tuple(t), lp, lp, len(t), bool(t) and t[-1] == model.eos_id)]
            for t, lp in zip(tokens, logprob.tolist(), strict=True)
        ]
        return SearchOutput(nbest, cost)
