"""Beam search, batched over sentences x beams, built from plug-in objects: a length penalty,
a stop rule and logits processors (``beam_lp`` is the same search with another penalty).

Per step: one ``topk`` of ``2K`` over the ``K*V`` extensions of each sentence. EOS candidates
ranked within the top K enter the sentence's pool of K finished hypotheses (ranked by the
length penalty); the first K non-EOS candidates stay live. At the length limit the live
hypotheses enter the pool unfinished, and so does a live hypothesis the logits processors leave
no legal token (it stops there, with the tokens it has). A sentence leaves the batch when its
stop rule says so, or when none of its hypotheses can continue; its n-best is never empty.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.registry import SEARCHES, STOP_RULES
from lab.search.base import (
    Cost,
    Hypothesis,
    SearchOutput,
    check_min_len,
    check_positive,
    drop_sentences,
    max_lengths,  # noqa: I001 - one name a line keeps the list short
)
from lab.search.candidates import top_candidates
from lab.search.penalties import NoPenalty, Penalty
from lab.search.pool import NEG_INF, Pool
from lab.search.processors import Processors, apply
from lab.search.stop import StopView


class BeamSearch:
    """Beam search over ``beam_size`` hypotheses per sentence, returning the ``nbest`` best."""

    def __init__(
        self,
        beam_size: int,
        nbest: int,
        max_len: tuple[float, int],
        penalty: Penalty,
        stop_rule: Callable[[StopView], Tensor],
        processors: Processors,
    ) -> None:
        self.k, self.nbest = check_positive("beam_size", beam_size), check_positive("nbest", nbest)
        if self.nbest > self.k:
            raise LabError(f"search.nbest={nbest} exceeds search.beam_size={beam_size}; lower it.")
        self.max_len_a, self.max_len_b = (
            float(max_len[0]),
            check_positive("max_len_b", max_len[1], 0),
        )
        check_min_len(processors.min_len, self.max_len_a, self.max_len_b)
        self.penalty, self.stop_rule, self.processors = penalty, stop_rule, processors

    def __call__(self, model: DecoderModel, src: Tensor, src_lengths: Tensor) -> SearchOutput:
        with torch.inference_mode():
            return self._search(model, src, src_lengths)

    def _search(self, model: DecoderModel, src: Tensor, src_lengths: Tensor) -> SearchOutput:
        procs, k, n, dev = self.processors.for_model(model), self.k, src.size(0), src.device
        cost = Cost(sentences=n, model_calls=1)
        results: list[list[Hypothesis]] = [[] for _ in range(n)]
        limit = max_lengths(src_lengths, self.max_len_a, self.max_len_b, model)  # (B,)
        state = model.init_state(model.encode(src, src_lengths), k)
        alive = torch.arange(n, device=dev)  # (n,) original sentence ids
        pool = Pool(n, k, int(limit.max()), model.pad_id, dev)
        prev = torch.full((n * k,), model.bos_id, device=dev)  # (n*K,)
        tokens = prev.new_zeros(n * k, 0)  # (n*K, t) generated so far
        run_score = torch.full((n, k), NEG_INF, device=dev)  # (n, K) processed log-prob sum
        run_score[:, 0] = 0.0  # all beams start identical: expand only the first
        run_logp = torch.zeros(n, k, device=dev)  # (n, K) model log-prob sum
        t = 0
        while alive.numel():
            t += 1
            log_probs, state = model.step(prev, state)  # (n*K, V)
            cost.count_step(n * k)
            proc = apply(procs, log_probs, tokens, t)  # (n*K, V)
            c = top_candidates(run_score, run_logp, log_probs, proc, model.eos_id)
            at_limit = limit[alive].le(t)  # (n,)
            pool.add_stuck(run_score, run_logp, proc, tokens, t, self.penalty)
            pool.add_step(c, tokens, at_limit, t, self.penalty)
            live_s, live_tok = c.of_live(c.score), c.of_live(c.token)  # (n, K)
            view = StopView.of(pool, live_s[:, 0], t, limit[alive], self.penalty)
            done = self.stop_rule(view) | at_limit | live_s[:, 0].isinf()  # (n,)
            rows = (torch.arange(n, device=dev)[:, None] * k + c.of_live(c.beam)).view(-1)
            state = model.reorder(state, rows)  # rows: (n*K,)
            tokens = torch.cat([tokens.index_select(0, rows), live_tok.view(-1, 1)], dim=1)
            prev, run_score, run_logp = live_tok.view(-1), live_s, c.of_live(c.raw)
            if done.any():
                for i in done.nonzero().squeeze(1).tolist():
                    results[int(alive[i])] = pool.hypotheses(i, self.nbest, model.eos_id)
                pool.keep((~done).nonzero().squeeze(1))
                state, (alive, run_score, run_logp), (prev, tokens) = drop_sentences(
                    done, k, state, [alive, run_score, run_logp], [prev, tokens]
                )
                n = alive.numel()
        return SearchOutput(results, cost)


@SEARCHES.register("beam")
def beam(
    beam_size: int = 5,
    nbest: int = 1,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
    min_len: int = 0,
    stop_rule: str = "first_k",
    processors: Sequence[Mapping[str, Any]] | None = None,
) -> BeamSearch:
    """Beam search: beam_size, nbest, length limits, stop rule (first_k|canonical|heuristic)."""
    stop, procs = STOP_RULES.build(stop_rule), Processors(processors, min_len)
    return BeamSearch(beam_size, nbest, (max_len_a, max_len_b), NoPenalty(), stop, procs)
