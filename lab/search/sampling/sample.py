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

A token is drawn by inversion (``lab.search.sampling.draw``): one uniform per row and step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from lab.models.base import DecoderModel
from lab.registry import SEARCHES
from lab.search.contracts import Processor
from lab.search.driver import Move, Step, decode, sentence_rows
from lab.search.limits import Limits, check_positive
from lab.search.prefix import ForcedPrefix
from lab.search.processors.chain import Processors
from lab.search.rng import generators, uniform
from lab.search.sampling.draw import draw
from lab.search.types import Constraints, Hypothesis, SearchOutput


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

    inputs = ("keys", "constraints")

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
        self.limits = Limits(max_len_a, max_len_b, min_len)
        self.processors = Processors(processors, self.limits.min_len)
        self.constraint_kinds = ("prefix", *self.processors.constraint_kinds)
        self.seed = int(seed)

    def __call__(
        self,
        model: DecoderModel,
        src: Tensor,
        src_lengths: Tensor,
        keys: Sequence[int] | None = None,
        constraints: Sequence[Constraints | None] | None = None,
    ) -> SearchOutput:
        procs, k = self.processors.for_call(model, constraints), self.num_samples
        prefix = ForcedPrefix.of(constraints, src.device)  # forced in every sample
        gens = generators(self.seed, keys, src.size(0))  # on the CPU: the same draws anywhere

        def start(limit: Tensor) -> SampleStepper:
            return SampleStepper(procs, gens, k, model.eos_id, model.pad_id, src.device)

        with torch.inference_mode():
            return decode(model, src, src_lengths, self.limits, k, start, prefix)


class SampleStepper:
    """K rows per sentence, each a sample; a stopped row rides along, masked, feeding EOS."""

    def __init__(
        self,
        processors: Sequence[Processor],
        gens: list[torch.Generator],
        k: int,
        eos: int,
        pad: int,
        device: torch.device,
    ) -> None:
        self.processors, self.gens, self.k, self.eos, self.pad = processors, gens, k, eos, pad
        rows = len(gens) * k
        self.length = torch.zeros(rows, dtype=torch.long, device=device)  # (n*K,)
        self.running = torch.ones(rows, dtype=torch.bool, device=device)  # (n*K,)
        self.raw = torch.zeros(rows, dtype=torch.float64, device=device)  # (n*K,) model log-prob
        self.sampled = torch.zeros_like(self.raw)  # (n*K,) sampling log-prob

    def advance(self, step: Step) -> Move:
        processed = step.processed  # (n*K, V)
        stuck = processed.amax(dim=-1).isneginf()  # (n*K,) no legal token: stop unfinished
        if stuck.any():  # an all -inf row would normalize to NaN: give it a dummy mass
            processed = processed.masked_fill(stuck[:, None], 0.0)
        log_q = processed.log_softmax(dim=-1)  # (n*K, V)
        u = uniform(self.gens, self.k, 1, processed.device)  # (n*K, 1) K per sentence, all rows
        take = self.running & ~stuck  # (n*K,) rows that add a token this step
        tok = draw(log_q, u).masked_fill(~take, self.pad)  # (n*K,)
        self.raw += step.log_probs.gather(1, tok[:, None]).squeeze(1).double().masked_fill(~take, 0)
        self.sampled += log_q.gather(1, tok[:, None]).squeeze(1).double().masked_fill(~take, 0)
        self.length += take.long()
        row_limit = step.limit.repeat_interleave(self.k)  # (n*K,)
        self.running = take & tok.ne(self.eos) & (row_limit > step.t)
        done = ~self.running.view(-1, self.k).any(dim=1)  # (n,)
        return Move(tok, done, feed=tok.masked_fill(~take, self.eos))  # stopped rows feed EOS

    def finish(self, sentences: Tensor, tokens: Tensor) -> list[list[Hypothesis]]:
        rows = sentence_rows(sentences, self.k)  # (d*K,)
        hyps = []
        for seq, n_tok, lp, sp in zip(
            tokens[rows].tolist(),
            self.length[rows].tolist(),
            self.raw[rows].tolist(),
            self.sampled[rows].tolist(),
            strict=True,
        ):
            seq = seq[:n_tok]
            finished = bool(seq) and seq[-1] == self.eos
            info = {"sample_logprob": sp}
            hyps.append(Hypothesis(tuple(seq), lp, sp, n_tok, finished, info=info))
        return [hyps[i : i + self.k] for i in range(0, len(hyps), self.k)]

    def keep(self, sentences: Tensor, rows: Tensor) -> None:
        self.gens = [self.gens[i] for i in sentences.tolist()]
        self.length, self.running = self.length[rows], self.running[rows]
        self.raw, self.sampled = self.raw[rows], self.sampled[rows]
