"""Stochastic beam search (Kool, van Hoof & Welling, 2019, "Stochastic Beams and Where to Find
Them"): k output sequences sampled *without replacement* from the model, at the cost of a beam
of size k.

Why it works (the Gumbel-top-k trick): perturb the log-probability of every complete output
with independent Gumbel noise; the k outputs with the largest perturbed scores are a sample of
k without replacement. Stochastic beam search finds them without enumerating the outputs, top
down: the perturbed score G of a prefix is the maximum of the perturbed scores of every output
below it, so its children's perturbed scores are drawn *conditioned on their maximum being the
parent's G* (truncated Gumbels; only each prefix's k+1 best children are drawn, in order, as
``lab.search.sampling.children`` explains, not a Gumbel per vocabulary entry). Every
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
from lab.search.driver import decode
from lab.search.limits import Limits, check_positive
from lab.search.processors.chain import Processors
from lab.search.rng import generators
from lab.search.sampling.gumbel_top_k import StochasticStepper
from lab.search.types import SearchOutput


@SEARCHES.register("stochastic_beam")
class StochasticBeamSearch:
    """Stochastic beam search: k outputs sampled without replacement (Gumbel-top-k).

    Samples from the model's distribution with PAD and BOS removed (and EOS before ``min_len``),
    renormalized at every step, its step log-probs divided by ``temperature``. Each sentence's
    noise comes from its own generator (``lab.search.rng``), seeded by ``seed`` and the
    sentence's key, ``2 * beam_size + 1`` uniforms per row and step (``children``: the
    k+1 best children of each row, drawn in order, and their scores; one Gumbel for the
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
        gens = generators(self.seed, keys, src.size(0))  # on the CPU: the same draws anywhere
        procs = self.processors.for_model(model)

        def start(limit: Tensor) -> StochasticStepper:
            ids = (model.eos_id, model.pad_id)
            return StochasticStepper(self.k, self.temperature, procs, gens, ids, src.device)

        with torch.inference_mode():
            return decode(model, src, src_lengths, self.limits, self.k, start)
