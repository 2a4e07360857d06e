"""Greedy search: the arg-max token at every step, batched, finished sentences dropped."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lab.models.base import DecoderModel
from lab.registry import SEARCHES
from lab.search.base import Cost, Hypothesis, SearchOutput, check_positive, max_lengths
from lab.search.processors import apply, build_processors


@SEARCHES.register("greedy")
class Greedy:
    """Greedy search: pick the most probable token at every step."""

    def __init__(
        self,
        max_len_a: float = 1.5,
        max_len_b: int = 10,
        min_len: int = 0,
        processors: Sequence[dict] | None = None,
    ) -> None:
        self.max_len_a, self.max_len_b = float(max_len_a), check_positive("max_len_b", max_len_b, 0)
        self.min_len, self.processor_specs = int(min_len), processors

    def __call__(
        self, model: DecoderModel, src_tokens: Tensor, src_lengths: Tensor
    ) -> SearchOutput:
        procs = build_processors(
            self.processor_specs, self.min_len, [model.pad_id, model.bos_id], model.eos_id
        )
        n_sent = src_tokens.size(0)
        cost = Cost(sentences=n_sent, model_calls=1)
        results: list[list[Hypothesis]] = [[] for _ in range(n_sent)]
        with torch.inference_mode():
            limit = max_lengths(src_lengths, self.max_len_a, self.max_len_b, model)  # (B,)
            state = model.init_state(model.encode(src_tokens, src_lengths), 1)
            alive = torch.arange(n_sent, device=src_tokens.device)  # (n,) sentence ids
            prev = torch.full((n_sent,), model.bos_id, device=src_tokens.device)  # (n,)
            tokens = prev.new_zeros(n_sent, 0)  # (n, t)
            raw_sum = torch.zeros(n_sent, device=src_tokens.device)  # (n,)
            score_sum = torch.zeros(n_sent, device=src_tokens.device)  # (n,)
            t = 0
            while alive.numel():
                t += 1
                log_probs, state = model.step(prev, state)  # (n, V)
                cost.steps, cost.model_calls = cost.steps + 1, cost.model_calls + 1
                cost.expanded += alive.numel()
                proc = apply(procs, log_probs, tokens, t)  # (n, V)
                best, tok = proc.max(dim=-1)  # (n,), (n,)
                raw_sum += log_probs.gather(1, tok[:, None]).squeeze(1)
                score_sum += best
                tokens = torch.cat([tokens, tok[:, None]], dim=1)  # (n, t)
                prev = tok
                done = tok.eq(model.eos_id) | (limit[alive] <= t)  # (n,)
                if not done.any():
                    continue
                idx = done.nonzero().squeeze(1)
                for i, seq, lp, sc in zip(
                    alive[idx].tolist(),
                    tokens[idx].tolist(),
                    raw_sum[idx].tolist(),
                    score_sum[idx].tolist(),
                    strict=True,
                ):
                    results[i] = [Hypothesis(tuple(seq), lp, sc, len(seq), seq[-1] == model.eos_id)]
                keep = (~done).nonzero().squeeze(1)  # (n',)
                alive, prev, tokens = alive[keep], prev[keep], tokens[keep]
                raw_sum, score_sum = raw_sum[keep], score_sum[keep]
                if keep.numel():
                    state = state.select_sentences(keep)
        return SearchOutput(results, cost)
