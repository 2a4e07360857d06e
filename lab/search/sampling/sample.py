"""Ancestral sampling: ``num_samples`` independent outputs per source, each token drawn from the
model's next-token distribution after the logits processors (``top_p``, ``temperature``...).

Batched as ``B*N`` rows (N samples of each of B sentences), each source encoded once. The
driver decodes the rows apart (``decode(..., apart=True)``): every row is its own entry of the
batch, so a row that stops (at EOS, finished; at the sentence's length limit, or when the
processors leave it no legal token, both unfinished) leaves the batch at once and costs no
further forward pass.

Reproducible per sentence: every draw comes from the sentence's own generator
(``lab.search.rng``, seeded from ``seed`` and the sentence's key), which draws its uniforms up
front, ``limit x N`` float64 numbers (the number of steps the sentence may take, N per step:
the same stream as N per step), and row j takes the j-th of step t's N. A sentence's samples
are therefore the same decoded alone or in any batch, in any order, padded or not.

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
from lab.search.driver import Move, Step, decode
from lab.search.limits import Limits, check_positive
from lab.search.prefix import ForcedPrefix
from lab.search.processors.chain import Processors
from lab.search.rng import generators
from lab.search.sampling.draw import block_sums, invert
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
            u = uniforms(gens, limit, k, src.device)  # (B*N, L)
            return SampleStepper(procs, u, model.eos_id, model.pad_id)

        with torch.inference_mode():
            return decode(model, src, src_lengths, self.limits, k, start, prefix, apart=True)


def uniforms(gens: Sequence[torch.Generator], limit: Tensor, k: int, device: Any) -> Tensor:
    """Every uniform the rows will use, ``(B*k, max limit)`` float64: sentence i's generator
    draws ``(limit_i, k)`` at once (its stream is the one ``k`` draws per step would give: CPU
    generators fill a tensor in order), row ``i*k + j`` holds column j; 0.5 past the limit."""
    width = int(limit.max()) if limit.numel() else 0
    u = torch.full((len(gens) * k, width), 0.5, dtype=torch.float64)  # (B*k, L)
    for i, (g, n) in enumerate(zip(gens, limit.tolist(), strict=True)):
        u[i * k : (i + 1) * k, :n] = torch.rand(n, k, generator=g, dtype=torch.float64).T
    return u.clamp(0.0, 1.0 - 2**-53).to(device)


class SampleStepper:
    """One row per sample, each its own batch entry (the driver decodes them apart): the token
    drawn through the processors, the model's and the sampler's log-probs summed."""

    def __init__(self, processors: Sequence[Processor], u: Tensor, eos: int, pad: int) -> None:
        self.processors, self.u, self.eos, self.pad = processors, u, eos, pad
        rows, device = u.size(0), u.device
        self.length = torch.zeros(rows, dtype=torch.long, device=device)  # (n,)
        self.stuck = torch.zeros(rows, dtype=torch.bool, device=device)  # (n,) no legal token
        self.raw = torch.zeros(rows, dtype=torch.float64, device=device)  # (n,) model log-prob
        self.sampled = torch.zeros_like(self.raw)  # (n,) sampling log-prob

    def advance(self, step: Step) -> Move:
        processed = step.processed  # (n, V)
        top = processed.amax(dim=-1, keepdim=True)  # (n, 1)
        self.stuck = top.squeeze(1).isneginf()  # (n,) no legal token: stop before this step
        if self.stuck.any():  # an all -inf row would give NaN weights: give it a dummy mass
            processed = processed.masked_fill(self.stuck[:, None], 0.0)
            top = top.masked_fill(self.stuck[:, None], 0.0)
        probs = (processed - top).exp_()  # (n, V) float32 weights: the largest is 1
        tok, _, _, total = invert(probs, block_sums(probs), self.u[:, step.t - 1 : step.t])
        picked = processed.gather(1, tok[:, None]) - top  # (n, 1) the token's log-weight
        picked = picked.squeeze(1).double() - total.log()  # (n,) its sampling log-prob
        take = ~self.stuck  # (n,)
        self.sampled += picked.masked_fill(self.stuck, 0.0)
        raw = step.log_probs.gather(1, tok[:, None]).squeeze(1).double()  # (n,)
        self.raw += raw.masked_fill(self.stuck, 0.0)
        self.length += take.long()
        done = self.stuck | tok.eq(self.eos) | (step.limit <= step.t)  # (n,)
        return Move(tok.masked_fill(self.stuck, self.pad), done)

    def finish(self, sentences: Tensor, tokens: Tensor) -> list[list[Hypothesis]]:
        hyps = []
        for seq, n_tok, lp, sp in zip(
            tokens[sentences].tolist(),
            self.length[sentences].tolist(),
            self.raw[sentences].tolist(),
            self.sampled[sentences].tolist(),
            strict=True,
        ):
            seq = seq[:n_tok]
            finished = bool(seq) and seq[-1] == self.eos
            info = {"sample_logprob": sp}
            hyps.append([Hypothesis(tuple(seq), lp, sp, n_tok, finished, info=info)])
        return hyps

    def keep(self, sentences: Tensor, rows: Tensor) -> None:
        self.u, self.length, self.stuck = self.u[rows], self.length[rows], self.stuck[rows]
        self.raw, self.sampled = self.raw[rows], self.sampled[rows]
