"""Stochastic beam search (Kool, van Hoof & Welling, 2019, "Stochastic Beams and Where to Find
Them"): k output sequences sampled *without replacement* from the model, at the cost of a beam
of size k.

Why it works (the Gumbel-top-k trick): perturb the log-probability of every complete output
with independent Gumbel noise; the k outputs with the largest perturbed scores are a sample of
k without replacement. Stochastic beam search finds them without enumerating the outputs, top
down: the perturbed score G of a prefix is the maximum of the perturbed scores of every output
below it, so its children's perturbed scores are drawn *conditioned on their maximum being the
parent's G* (a truncated Gumbel, in the numerically stable form of the paper's appendix). Every
step keeps the k prefixes with the largest G; a subtree that falls off the beam holds no output
that could have made the top k. Outputs that ended (EOS, or cut at the length limit) stay on
the beam as leaves and keep competing with the growing prefixes.

One deliberate difference from the paper's Algorithm 1, which fixes the root's G at 0: the
root's G is drawn from Gumbel(0) (the law of the maximum over all outputs, whose probabilities
sum to 1). The sampled set has the same law either way (the order of Gumbel-perturbed values is
independent of their maximum), but only with a random root are the outputs' perturbed scores
the *independent* Gumbel(log p) values that the estimators below assume.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.registry import SEARCHES
from lab.search.contracts import Processor
from lab.search.driver import Move, Step, decode
from lab.search.limits import Limits, check_positive
from lab.search.processors.chain import Processors
from lab.search.rng import generators, gumbel
from lab.search.types import NEG_INF, Hypothesis, SearchOutput


def log1mexp(a: Tensor) -> Tensor:
    """``log(1 - exp(a))`` for ``a <= 0``, accurate at both ends (Maechler, 2012): -inf at
    ``a = 0``, 0 at ``a = -inf``."""
    return torch.where(a > -math.log(2.0), torch.log(-torch.expm1(a)), torch.log1p(-torch.exp(a)))


def truncated_gumbel(parent: Tensor, perturbed: Tensor) -> Tensor:
    """Children's perturbed scores, conditioned on their maximum being the parent's.

    ``parent`` ``(N, 1)``: each row's perturbed score T; ``perturbed`` ``(N, V)``: independent
    Gumbel(phi_i) draws ``phi_i + g_i`` for the children, whose maximum is Z. Returns
    ``-log(exp(-T) - exp(-Z) + exp(-G_i))`` ``(N, V)``, computed as
    ``T - softplus(T - G_i + log1mexp(G_i - Z))`` so that nothing overflows; the arg-max child
    gets exactly T. Rows whose parent is -inf (no prefix there) or without any possible child
    get -inf everywhere, as do children of probability 0.
    """
    z = perturbed.amax(dim=-1, keepdim=True)  # (N, 1)
    v = parent - perturbed + log1mexp(perturbed - z)  # (N, V)
    out = parent - v.clamp_min(0.0) - torch.log1p(torch.exp(-v.abs()))  # (N, V)
    usable = parent.isfinite() & z.isfinite()  # (N, 1)
    return out.masked_fill(~usable | out.isnan(), NEG_INF)


@SEARCHES.register("stochastic_beam")
class StochasticBeamSearch:
    """Stochastic beam search: k outputs sampled without replacement (Gumbel-top-k).

    Samples from the model's distribution with PAD and BOS removed (and EOS before ``min_len``),
    renormalized at every step, its step log-probs divided by ``temperature``. Each sentence's
    noise comes from its own generator (``lab.search.rng``), seeded by ``seed`` and the
    sentence's key, ``beam_size`` rows of vocabulary-wide Gumbels per step (and one for the
    root), so a sentence's sample does not depend on the batch it is decoded in.

    Returns, per sentence, the ``min(k, number of outputs)`` sampled outputs, largest perturbed
    score first (the first one alone is an ordinary ancestral sample). Each hypothesis has
    ``logprob`` = the model's log-prob (``model.score``), ``score`` = its perturbed score G, and
    ``info``: ``perturbed_score`` (G), ``sample_logprob`` (its log-prob under the sampling
    distribution: the renormalized, tempered one) and ``threshold`` kappa, the (k+1)-th largest
    perturbed score over all outputs (-inf when there are at most k outputs).

    Using the threshold (Kool et al., 2019, section 4): output i was in the sample with
    inclusion probability ``q_i = 1 - exp(-exp(sample_logprob_i - kappa))`` (given the other
    outputs' noise), so ``sum_{i in sample} p_i / q_i * f(i)`` is an unbiased estimate of
    ``E_p[f]`` (``p_i = exp(sample_logprob_i)``), and dividing by ``sum p_i / q_i`` gives the
    lower-variance, consistent normalized estimate. Any weights w_i in place of p_i give an
    unbiased estimate of ``sum_i w_i f(i)`` (``w_i = exp(logprob_i)``: an expectation under
    the model itself when sampling at another temperature). With kappa = -inf every q_i is 1:
    the sample holds every output and the sum is exact.
    """

    inputs = ("keys",)

    def __init__(
        self,
        beam_size: int = 10,
        max_len_a: float = 1.5,
        max_len_b: int = 10,
        min_len: int = 0,
        seed: int = 0,
        temperature: float = 1.0,
    ) -> None:
        self.k = check_positive("beam_size", beam_size)
        self.limits = Limits(max_len_a, max_len_b, min_len)
        self.processors = Processors(None, self.limits.min_len)
        self.temperature = float(temperature)
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise LabError(
                f"search.temperature must be a positive number, got {temperature}; set"
                " search.temperature=1.0 to sample from the model's own distribution."
            )
        self.seed = int(seed)

    def __call__(
        self,
        model: DecoderModel,
        src: Tensor,
        src_lengths: Tensor,
        keys: Sequence[int] | None = None,
    ) -> SearchOutput:
        """Sample for each sentence of ``src`` ``(B, S)``; ``keys`` (one int per sentence) pick
        each sentence's random stream (None: its position in the batch)."""
        gens = generators(self.seed, keys, src.size(0))
        procs = self.processors.for_model(model)

        def start(limit: Tensor) -> StochasticStepper:
            return StochasticStepper(self, procs, gens, model.eos_id, model.pad_id, src.device)

        with torch.inference_mode():
            return decode(model, src, src_lengths, self.limits, self.k, start)


class StochasticStepper:
    """k prefixes per sentence with their perturbed scores; ended outputs stay as leaves."""

    def __init__(
        self,
        search: StochasticBeamSearch,
        procs: list[Processor],
        gens: list[torch.Generator],
        eos: int,
        pad: int,
        dev: torch.device,
    ) -> None:
        self.processors, self.gens, self.eos, self.pad = procs, gens, eos, pad
        self.k, self.temperature, n, f64 = search.k, search.temperature, len(gens), torch.float64
        self.score = torch.full((n, self.k), NEG_INF, dtype=f64, device=dev)  # (n, k) G
        self.score[:, 0] = gumbel(gens, 1, 1, dev).view(n)  # the root: G ~ Gumbel(log 1)
        self.phi = torch.zeros(n, self.k, dtype=f64, device=dev)  # (n, k) sampling log-prob
        self.logp = torch.zeros(n, self.k, dtype=f64, device=dev)  # (n, k) model log-prob
        self.ended = torch.zeros(n, self.k, dtype=torch.bool, device=dev)  # (n, k) a leaf
        self.length = torch.zeros(n, self.k, dtype=torch.long, device=dev)  # (n, k) EOS incl.
        self.kappa = torch.full((n,), NEG_INF, dtype=f64, device=dev)  # (n,) best G left behind

    def advance(self, step: Step) -> Move:
        k, (n, vocab), f64 = self.k, step.processed.shape, torch.float64
        n //= k
        step_phi = torch.log_softmax(step.processed.to(f64) / self.temperature, dim=-1)
        child_phi = self.phi.view(n * k, 1) + step_phi  # (n*k, V)
        noise = gumbel(self.gens, k, vocab, step_phi.device)  # (n*k, V) k rows per sentence
        growing = self.score.isfinite() & ~self.ended  # (n, k)
        parent = self.score.masked_fill(~growing, NEG_INF).view(n * k, 1)  # (n*k, 1)
        child_g = truncated_gumbel(parent, child_phi + noise).view(n, k * vocab)
        leaves = self.score.masked_fill(~self.ended, NEG_INF)  # (n, k) ended outputs compete
        top, idx = torch.cat([child_g, leaves], dim=1).topk(k + 1, dim=1)  # (n, k+1)
        self.kappa = torch.maximum(self.kappa, top[:, k])  # the best subtree dropped so far
        self.score, idx = top[:, :k], idx[:, :k]  # (n, k)
        child = idx < k * vocab  # (n, k) a new prefix (else: a leaf kept)
        slot = torch.where(child, idx // vocab, idx - k * vocab)  # (n, k) the row it came from
        cidx = idx.clamp_max(k * vocab - 1)  # (n, k) index into the children
        token = torch.where(child, cidx % vocab, self.pad)  # (n, k)
        step_lp = step.log_probs.to(f64).view(n, k * vocab).gather(1, cidx)  # (n, k)
        child_step_phi = step_phi.view(n, -1).gather(1, cidx)  # (n, k)
        self.phi = self.phi.gather(1, slot) + torch.where(child, child_step_phi, 0)
        self.logp = self.logp.gather(1, slot) + torch.where(child, step_lp, 0.0)
        self.length = self.length.gather(1, slot) + child.long()
        at_limit = step.limit.le(step.t)[:, None]  # (n, 1)
        self.ended = ~child | token.eq(self.eos) | at_limit  # (n, k)
        rows = (torch.arange(n, device=slot.device)[:, None] * k + slot).view(-1)  # (n*k,)
        done = (self.ended | self.score.isneginf()).all(dim=1)  # (n,)
        feed = token.masked_fill(~child, self.eos).view(-1)  # (n*k,) leaves feed EOS
        return Move(token.view(-1), done, rows=rows, feed=feed)

    def finish(self, sentences: Tensor, tokens: Tensor) -> list[list[Hypothesis]]:
        return [self._sample(i, tokens) for i in sentences.tolist()]

    def keep(self, sentences: Tensor, rows: Tensor) -> None:
        self.gens = [self.gens[i] for i in sentences.tolist()]
        self.score, self.phi, self.logp = (
            self.score[sentences],
            self.phi[sentences],
            self.logp[sentences],
        )
        self.ended, self.length = self.ended[sentences], self.length[sentences]
        self.kappa = self.kappa[sentences]

    def _sample(self, i: int, tokens: Tensor) -> list[Hypothesis]:
        """Sentence ``i``'s sampled outputs (its beam's leaves, best perturbed score first)."""
        threshold, k = float(self.kappa[i]), self.k
        out = []
        for g, sp, lp, n_tok, seq in zip(
            self.score[i].tolist(),
            self.phi[i].tolist(),
            self.logp[i].tolist(),
            self.length[i].tolist(),
            tokens[i * k : (i + 1) * k].tolist(),
            strict=True,
        ):
            if g == NEG_INF:
                continue
            toks = tuple(seq[:n_tok])
            info = {"perturbed_score": g, "sample_logprob": sp, "threshold": threshold}
            finished = bool(toks) and toks[-1] == self.eos
            out.append(Hypothesis(toks, lp, g, n_tok, finished, info=info))
        return out
