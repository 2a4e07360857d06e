"""Greedy search: the arg-max token at every step, batched, finished sentences dropped.

A sentence ends at EOS, at its length limit, or when the processors leave it no legal token
(every step log-prob -inf): then its output is the prefix so far, unfinished.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from lab.models.base import DecoderModel
from lab.registry import SEARCHES
from lab.search.base import (
    Cost,
    Hypothesis,
    SearchOutput,
    check_min_len,
    check_positive,
    drop_sentences,
    max_lengths,  # noqa: I001 - one name a line keeps the list short
)
from lab.search.processors import Processors, apply


@SEARCHES.register("greedy")
class Greedy:
    """Greedy search: pick the most probable token at every step."""

    def __init__(
        self,
        max_len_a: float = 1.5,
        max_len_b: int = 10,
        min_len: int = 0,
        processors: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        self.max_len_a, self.max_len_b = float(max_len_a), check_positive("max_len_b", max_len_b, 0)
        min_len = check_min_len(min_len, self.max_len_a, self.max_len_b)
        self.processors = Processors(processors, min_len)

    def __call__(self, model: DecoderModel, src: Tensor, src_lengths: Tensor) -> SearchOutput:
        with torch.inference_mode():
            return self._search(model, src, src_lengths)

    def _search(self, model: DecoderModel, src: Tensor, src_lengths: Tensor) -> SearchOutput:
        procs, n, dev = self.processors.for_model(model), src.size(0), src.device
        cost = Cost(sentences=n, model_calls=1)
        results: list[list[Hypothesis]] = [[] for _ in range(n)]
        limit = max_lengths(src_lengths, self.max_len_a, self.max_len_b, model)  # (B,)
        state = model.init_state(model.encode(src, src_lengths), 1)
        alive = torch.arange(n, device=dev)  # (n,) sentence ids
        prev = torch.full((n,), model.bos_id, device=dev)  # (n,)
        tokens = prev.new_zeros(n, 0)  # (n, t)
        raw_sum = torch.zeros(n, device=dev)  # (n,) model log-prob
        score_sum = torch.zeros(n, device=dev)  # (n,) processed log-prob
        t = 0
        while alive.numel():
            t += 1
            log_probs, state = model.step(prev, state)  # (n, V)
            cost.count_step(alive.numel())
            best, tok = apply(procs, log_probs, tokens, t).max(dim=-1)  # (n,), (n,)
            stuck = best.isneginf()  # (n,) no legal token: stop before this step, unfinished
            raw_sum += log_probs.gather(1, tok[:, None]).squeeze(1).masked_fill(stuck, 0.0)
            score_sum += best.masked_fill(stuck, 0.0)
            tokens, prev = torch.cat([tokens, tok[:, None]], dim=1), tok  # (n, t)
            done = tok.eq(model.eos_id) | (limit[alive] <= t) | stuck  # (n,)
            if not done.any():
                continue
            idx = done.nonzero().squeeze(1)
            for i, seq, lp, sc, no_token in zip(
                alive[idx].tolist(),
                tokens[idx].tolist(),
                raw_sum[idx].tolist(),
                score_sum[idx].tolist(),
                stuck[idx].tolist(),
                strict=True,
            ):
                seq = seq[:-1] if no_token else seq
                finished = bool(seq) and seq[-1] == model.eos_id
                results[i] = [Hypothesis(tuple(seq), lp, sc, len(seq), finished)]
            state, (alive, prev, tokens, raw_sum, score_sum), _ = drop_sentences(
                done, 1, state, [alive, prev, tokens, raw_sum, score_sum], []
            )
        return SearchOutput(results, cost)
