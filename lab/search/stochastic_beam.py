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
from lab.search.rng import generators, gumbel

NEG_INF = float("-inf")


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
        self.max_len_a = float(max_len_a)
        self.max_len_b = check_positive("max_len_b", max_len_b, 0)
        self.processors = Processors(None, check_min_len(min_len, self.max_len_a, self.max_len_b))
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
        gens = generators(self.seed, keys, src.size(0), src.device)  # V-wide noise: on device
        with torch.inference_mode():
            return self._search(model, src, src_lengths, gens)

    def _search(
        self,
        model: DecoderModel,
        src: Tensor,
        src_lengths: Tensor,
        gens: list[torch.Generator],
    ) -> SearchOutput:
        procs, k, n, dev = self.processors.for_model(model), self.k, src.size(0), src.device
        f64 = torch.float64
        cost = Cost(sentences=n, model_calls=1)
        results: list[list[Hypothesis]] = [[] for _ in range(n)]
        limit = max_lengths(src_lengths, self.max_len_a, self.max_len_b, model)  # (B,)
        state = model.init_state(model.encode(src, src_lengths), k)
        alive = torch.arange(n, device=dev)  # (n,) original sentence ids
        score = torch.full((n, k), NEG_INF, dtype=f64, device=dev)  # (n, k) perturbed score G
        score[:, 0] = gumbel(gens, 1, 1, dev).view(n)  # the root: G ~ Gumbel(log 1)
        phi = torch.zeros(n, k, dtype=f64, device=dev)  # (n, k) sampling log-prob
        logp = torch.zeros(n, k, dtype=f64, device=dev)  # (n, k) model log-prob
        ended = torch.zeros(n, k, dtype=torch.bool, device=dev)  # (n, k) a leaf: EOS or cut
        length = torch.zeros(n, k, dtype=torch.long, device=dev)  # (n, k) tokens, EOS included
        kappa = torch.full((n,), NEG_INF, dtype=f64, device=dev)  # (n,) best G left behind
        prev = torch.full((n * k,), model.bos_id, device=dev)  # (n*k,)
        tokens = prev.new_zeros(n * k, 0)  # (n*k, t) generated so far (PAD after a leaf's end)
        t = 0
        while alive.numel():
            t += 1
            log_probs, state = model.step(prev, state)  # (n*k, V)
            cost.count_step(n * k)
            vocab = log_probs.size(1)
            proc = apply(procs, log_probs, tokens, t)  # (n*k, V)
            step_phi = torch.log_softmax(proc.to(f64) / self.temperature, dim=-1)  # (n*k, V)
            child_phi = phi.view(n * k, 1) + step_phi  # (n*k, V)
            noise = gumbel(gens, k, vocab, dev)  # (n*k, V) k rows from each sentence's stream
            growing = score.isfinite() & ~ended  # (n, k)
            parent = score.masked_fill(~growing, NEG_INF).view(n * k, 1)  # (n*k, 1)
            child_g = truncated_gumbel(parent, child_phi + noise).view(n, k * vocab)
            leaves = score.masked_fill(~ended, NEG_INF)  # (n, k) ended outputs compete as is
            cand = torch.cat([child_g, leaves], dim=1)  # (n, k*V + k)
            top, idx = cand.topk(k + 1, dim=1)  # (n, k+1)
            kappa = torch.maximum(kappa, top[:, k])  # the best subtree dropped so far
            score, idx = top[:, :k], idx[:, :k]  # (n, k)
            child = idx < k * vocab  # (n, k) a new prefix (else: a leaf kept)
            slot = torch.where(child, idx // vocab, idx - k * vocab)  # (n, k) the row it came from
            cidx = idx.clamp_max(k * vocab - 1)  # (n, k) index into the children
            token = torch.where(child, cidx % vocab, model.pad_id)  # (n, k)
            step_lp = log_probs.to(f64).view(n, k * vocab).gather(1, cidx)  # (n, k)
            phi = phi.gather(1, slot) + torch.where(child, step_phi.view(n, -1).gather(1, cidx), 0)
            logp = logp.gather(1, slot) + torch.where(child, step_lp, 0.0)
            length = length.gather(1, slot) + child.long()
            at_limit = limit[alive].le(t)[:, None]  # (n, 1)
            ended = ~child | token.eq(model.eos_id) | at_limit  # (n, k)
            rows = (torch.arange(n, device=dev)[:, None] * k + slot).view(-1)  # (n*k,)
            state = model.reorder(state, rows)
            tokens = torch.cat([tokens.index_select(0, rows), token.view(-1, 1)], dim=1)
            prev = token.masked_fill(~child, model.eos_id).view(-1)  # (n*k,) leaves feed EOS
            done = (ended | score.isneginf()).all(dim=1)  # (n,)
            if done.any():
                for i in done.nonzero().squeeze(1).tolist():
                    results[int(alive[i])] = self._sample(
                        i, k, score, phi, logp, length, kappa, tokens, model.eos_id
                    )
                keep = (~done).nonzero().squeeze(1).tolist()
                gens = [gens[i] for i in keep]
                state, sentence_wise, (prev, tokens) = drop_sentences(
                    done, k, state, [alive, score, phi, logp, ended, length, kappa], [prev, tokens]
                )
                alive, score, phi, logp, ended, length, kappa = sentence_wise
                n = alive.numel()
        return SearchOutput(results, cost)

    @staticmethod
    def _sample(
        i: int,
        k: int,
        score: Tensor,
        phi: Tensor,
        logp: Tensor,
        length: Tensor,
        kappa: Tensor,
        tokens: Tensor,
        eos: int,
    ) -> list[Hypothesis]:
        """Sentence ``i``'s sampled outputs (its beam's leaves, best perturbed score first)."""
        threshold = float(kappa[i])
        out = []
        for g, sp, lp, n_tok, seq in zip(
            score[i].tolist(),
            phi[i].tolist(),
            logp[i].tolist(),
            length[i].tolist(),
            tokens[i * k : (i + 1) * k].tolist(),
            strict=True,
        ):
            if g == NEG_INF:
                continue
            toks = tuple(seq[:n_tok])
            info = {"perturbed_score": g, "sample_logprob": sp, "threshold": threshold}
            finished = bool(toks) and toks[-1] == eos
            out.append(Hypothesis(toks, lp, g, n_tok, finished, info=info))
        return out
