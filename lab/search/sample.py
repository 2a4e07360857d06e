"""Ancestral sampling: ``num_samples`` independent outputs per source, each token drawn from the
model's next-token distribution after the logits processors (``top_p``, ``temperature``...).

Batched as ``B*N`` rows (N samples of each of B sentences). A row stops at EOS (finished), at
the sentence's length limit, or when the processors leave it no legal token (both
unfinished, with the tokens it has). A sentence leaves the batch when all its N rows have
stopped; until then its stopped rows ride along, masked, so the decoder state keeps N rows
per sentence.

Reproducible per sentence: every draw comes from the sentence's own generator
(``lab.search.rng``, seeded from ``seed`` and the sentence's key), N uniforms per step for
as long as the sentence is in the batch, stopped rows included. A sentence's samples are
therefore the same decoded alone or in any batch, in any order, padded or not.

A token is drawn by inversion: one uniform ``u`` per row, the first token whose cumulative
processed probability (summed in float64) exceeds ``u``. That costs one random number per row
and step instead of one per vocabulary entry (Gumbel-max), and has the same distribution.
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
    max_lengths,
    sentence_rows,  # noqa: I001 - one name a line keeps the list short
)
from lab.search.processors import Processors, apply
from lab.search.rng import generators, uniform


def draw(log_q: Tensor, u: Tensor) -> Tensor:
    """Inverse-CDF draws ``(N,)``: row i gets the first token whose cumulative probability
    under ``log_q`` ``(N, V)`` (normalized) exceeds ``u[i]`` ``(N, 1)``, float64, times the
    row's total.

    The probabilities are exponentiated in ``log_q``'s dtype (a relative error of one ulp per
    token, rare tokens included) and accumulated in float64, so the cumulative sums carry no
    float32 drift over a large vocabulary; the search is a binary search per row. Scaling by
    the computed total keeps the draw inside the support even when the sum is not exactly 1;
    a token of probability 0 is never drawn (its cumulative value equals its predecessor's,
    so it is never the first to exceed).
    """
    probs = log_q.exp()  # (N, V)
    cdf = probs.cumsum(dim=-1, dtype=torch.float64)  # (N, V)
    target = u * cdf[:, -1:]  # (N, 1)
    v = probs.size(-1)
    tok = torch.searchsorted(cdf, target, right=True).squeeze(1).clamp_max(v - 1)  # (N,)
    # u rounds to 1 only when target == total: then take the last token of positive mass
    empty = probs.gather(1, tok[:, None]).squeeze(1) <= 0  # (N,)
    if empty.any():
        rows = probs[empty]  # (M, V)
        tok[empty] = v - 1 - rows.gt(0).flip(-1).to(torch.uint8).argmax(dim=-1)
    return tok


@SEARCHES.register("sample")
class Sample:
    """Ancestral sampling through the logits processors, ``num_samples`` per source.

    ``nbest[i]`` holds sentence i's samples in draw order, not ranked: its first entry (what
    the evaluator scores as the output) is one sample, not the best of N. Each hypothesis
    reports ``logprob``, the model log-probability of its tokens (EOS included, before any
    processor: ``model.score``), and as ``score`` and ``info["sample_logprob"]`` the
    log-probability that the sampler drew it: the sum of the chosen tokens' log-probs after
    the processors and renormalization (PAD and BOS are always banned, so it differs from
    ``logprob`` even without processors). ``seed`` with the sentence keys the evaluator
    passes (``inputs``) fixes the draws.
    """

    inputs = ("keys",)

    def __init__(
        self,
        num_samples: int = 1,
        max_len_a: float = 1.5,
        max_len_b: int = 10,
        min_len: int = 0,
        processors: Sequence[Mapping[str, Any]] | None = None,
        seed: int = 0,
    ) -> None:
        self.num_samples = check_positive("num_samples", num_samples)
        self.max_len_a, self.max_len_b = float(max_len_a), check_positive("max_len_b", max_len_b, 0)
        min_len = check_min_len(min_len, self.max_len_a, self.max_len_b)
        self.processors = Processors(processors, min_len)
        self.seed = int(seed)

    def __call__(
        self,
        model: DecoderModel,
        src: Tensor,
        src_lengths: Tensor,
        keys: Sequence[int] | None = None,
    ) -> SearchOutput:
        with torch.inference_mode():
            return self._search(model, src, src_lengths, keys)

    def _search(
        self, model: DecoderModel, src: Tensor, src_lengths: Tensor, keys: Sequence[int] | None
    ) -> SearchOutput:
        procs, k = self.processors.for_model(model), self.num_samples
        n, dev = src.size(0), src.device
        gens = generators(self.seed, keys, n)  # on the CPU: the same draws on any device
        cost = Cost(sentences=n, model_calls=1)
        results: list[list[Hypothesis]] = [[] for _ in range(n)]
        limit = max_lengths(src_lengths, self.max_len_a, self.max_len_b, model)  # (n,)
        state = model.init_state(model.encode(src, src_lengths), k)
        alive = torch.arange(n, device=dev)  # (n,) sentence ids
        prev = torch.full((n * k,), model.bos_id, device=dev)  # (n*K,)
        tokens = prev.new_zeros(n * k, 0)  # (n*K, t) PAD after a row stopped
        length = torch.zeros(n * k, dtype=torch.long, device=dev)  # (n*K,)
        running = torch.ones(n * k, dtype=torch.bool, device=dev)  # (n*K,)
        raw_sum = torch.zeros(n * k, dtype=torch.float64, device=dev)  # (n*K,) model log-prob
        sample_sum = torch.zeros_like(raw_sum)  # (n*K,) sampling log-prob
        t = 0
        while alive.numel():
            t += 1
            log_probs, state = model.step(prev, state)  # (n*K, V)
            cost.count_step(log_probs.size(0))
            processed = apply(procs, log_probs, tokens, t)  # (n*K, V)
            stuck = processed.amax(dim=-1).isneginf()  # (n*K,) no legal token: stop unfinished
            if stuck.any():  # an all -inf row would normalize to NaN: give it a dummy mass
                processed = processed.masked_fill(stuck[:, None], 0.0)
            log_q = processed.log_softmax(dim=-1)  # (n*K, V)
            u = uniform(gens, k, 1, dev)  # (n*K, 1) K per sentence, stopped rows too
            tok = draw(log_q, u)  # (n*K,)
            take = running & ~stuck  # (n*K,) rows that add a token this step
            tok = tok.masked_fill(~take, model.pad_id)
            raw_sum += log_probs.gather(1, tok[:, None]).squeeze(1).double().masked_fill(~take, 0)
            sample_sum += log_q.gather(1, tok[:, None]).squeeze(1).double().masked_fill(~take, 0)
            tokens = torch.cat([tokens, tok[:, None]], dim=1)  # (n*K, t)
            length += take.long()
            row_limit = limit[alive].repeat_interleave(k)  # (n*K,)
            running = take & tok.ne(model.eos_id) & (row_limit > t)
            prev = tok.masked_fill(~take, model.eos_id)  # stopped rows feed EOS, then masked
            done = ~running.view(-1, k).any(dim=1)  # (n,)
            if not done.any():
                continue
            rows = sentence_rows(done.nonzero().squeeze(1), k)  # (d*K,) the rows to report
            ids = alive[done].tolist()
            for r, seq, n_tok, lp, sp in zip(
                range(len(rows)),
                tokens[rows].tolist(),
                length[rows].tolist(),
                raw_sum[rows].tolist(),
                sample_sum[rows].tolist(),
                strict=True,
            ):
                seq = seq[:n_tok]
                finished = bool(seq) and seq[-1] == model.eos_id
                results[ids[r // k]].append(
                    Hypothesis(tuple(seq), lp, sp, n_tok, finished, info={"sample_logprob": sp})
                )
            gens = [g for g, d in zip(gens, done.tolist(), strict=True) if not d]
            per_row = [prev, tokens, length, running, raw_sum, sample_sum]
            state, (alive,), per_row = drop_sentences(done, k, state, [alive], per_row)
            prev, tokens, length, running, raw_sum, sample_sum = per_row
        return SearchOutput(results, cost)
