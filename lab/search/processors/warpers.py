"""Sampling warpers: the logits processors of Hugging Face's ``generate``, by the same names.

``temperature``, ``top_k``, ``top_p``, ``typical_p``, ``epsilon``, ``eta``, ``min_p`` and
``repetition_penalty`` keep HF's semantics (``TemperatureLogitsWarper``, ``TopKLogitsWarper``,
``TopPLogitsWarper``, ``TypicalLogitsWarper``, ``EpsilonLogitsWarper``, ``EtaLogitsWarper``,
``MinPLogitsWarper``, ``RepetitionPenaltyLogitsProcessor``): given the same tensor they keep
the same tokens and return the same values. A filtered token gets -inf; nothing is
renormalized here, the search does that when it samples. Like HF, ``min_tokens_to_keep``
protects the most probable tokens from a filter, and 0 switches a filter off where HF's
``generate`` reads 0 as off (``top_k=0``, ``epsilon=0``, ``eta=0``, ``min_p=0``); so does
``typical_p=1`` and, in effect, ``top_p=1``.

What differs from HF, whose processors usually see raw logits: the lab's models return
log-softmax, and every processor here receives log-probabilities (so does HF's beam search).

- The filters and ``temperature`` depend on the logits only up to an additive constant per
  row, so on log-probs they keep the same tokens, and after a log-softmax give the same
  distribution, as HF's on the raw logits.
- ``repetition_penalty`` is not shift-invariant: HF divides a positive logit by the penalty
  and multiplies a negative one. Log-probs are all <= 0, so here the log-prob of a repeated
  token is always multiplied: its probability ``p`` becomes ``p ** penalty`` before the
  renormalization (penalty > 1 lowers it, < 1 raises it; a token of probability 1 keeps it).
  Placed after ``temperature`` it sees ``log p / T``, still <= 0, with the same effect.
- It penalizes the generated tokens only (``tokens``: no BOS, no source or prompt), where HF's
  decoder-only models also penalize the prompt.
- Processors compose as in HF's ``LogitsProcessorList``: each sees the previous one's output,
  not renormalized (again harmless for all but ``repetition_penalty``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lab.errors import LabError
from lab.registry import PROCESSORS
from lab.search.types import NEG_INF


def _number(processor: str, key: str, value: object, example: float) -> float:
    """``value`` as a float; anything but a real number is a one-line error naming the key."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise LabError(
            f"processor {processor} needs {key} to be a number, got {value!r};"
            f" e.g. {{name: {processor}, {key}: {example}}}."
        )
    return float(value)


def _out_of_range(processor: str, key: str, value: object, valid: str, fix: str) -> LabError:
    return LabError(f"processor {processor} needs {key} in {valid}, got {value}; {fix}.")


def _min_keep(processor: str, value: object) -> int:
    """``min_tokens_to_keep``: a whole number >= 1, as in HF."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LabError(
            f"processor {processor} needs min_tokens_to_keep >= 1 (a whole number), got"
            f" {value!r}; set min_tokens_to_keep=1 or more."
        )
    return value


def _kth_largest(scores: Tensor, k: int) -> Tensor:
    """The ``k``-th largest entry of every row ``(N, 1)`` (``k`` is clipped to the width)."""
    return scores.topk(min(k, scores.size(-1)), dim=-1).values[:, -1:]  # (N, 1)


def _entropy(log_p: Tensor) -> Tensor:
    """Entropy ``(N, 1)`` of normalized log-probs ``(N, V)``; -inf entries add nothing."""
    return -(log_p * log_p.exp()).nansum(-1, keepdim=True)  # (N, 1)


@PROCESSORS.register("temperature")
class Temperature:
    """Divide the scores by ``temperature`` (HF TemperatureLogitsWarper): < 1 sharpens."""

    def __init__(self, temperature: float) -> None:
        t = _number("temperature", "temperature", temperature, 0.7)
        if not t > 0:
            raise _out_of_range(
                "temperature",
                "temperature",
                temperature,
                "(0, inf)",
                "use a small positive value (e.g. 0.1) for near-greedy output, or search=greedy",
            )
        self.temperature = t

    def __call__(self, log_probs: Tensor, tokens: Tensor, step: int) -> Tensor:
        return log_probs / self.temperature  # (N, V)


@PROCESSORS.register("top_k")
class TopK:
    """Keep the ``top_k`` highest-scoring tokens (HF TopKLogitsWarper); ``top_k=0``: off.

    Tokens tied with the k-th score are kept too, as in HF.
    """

    def __init__(self, top_k: int, min_tokens_to_keep: int = 1) -> None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
            raise LabError(
                f"processor top_k needs top_k to be a whole number >= 0 (0 = off), got {top_k!r};"
                " set top_k to e.g. 50, or 0 to keep every token."
            )
        keep = _min_keep("top_k", min_tokens_to_keep)
        self.top_k = max(top_k, keep) if top_k > 0 else 0

    def __call__(self, log_probs: Tensor, tokens: Tensor, step: int) -> Tensor:
        if self.top_k == 0:
            return log_probs
        floor = _kth_largest(log_probs, self.top_k)  # (N, 1)
        return log_probs.masked_fill(log_probs < floor, NEG_INF)  # (N, V)


@PROCESSORS.register("top_p")
class TopP:
    """Nucleus sampling (HF TopPLogitsWarper): keep the most probable tokens whose mass
    reaches ``top_p``.

    Computed from the bottom, as HF does: the least probable tokens are dropped while their
    total mass is at most ``1 - top_p``; the ``min_tokens_to_keep`` most probable never are.
    """

    def __init__(self, top_p: float, min_tokens_to_keep: int = 1) -> None:
        p = _number("top_p", "top_p", top_p, 0.9)
        if not 0 < p <= 1:
            raise _out_of_range(
                "top_p",
                "top_p",
                top_p,
                "(0, 1]",
                "set top_p to e.g. 0.9, or 1 to keep every token",
            )
        self.top_p, self.min_keep = p, _min_keep("top_p", min_tokens_to_keep)

    def __call__(self, log_probs: Tensor, tokens: Tensor, step: int) -> Tensor:
        ascending, order = log_probs.sort(dim=-1)  # (N, V) least probable first
        tail_mass = ascending.softmax(dim=-1).cumsum(dim=-1)  # (N, V)
        drop = tail_mass <= 1 - self.top_p  # (N, V) in sorted order
        drop[:, -self.min_keep :] = False
        return log_probs.masked_fill(drop.scatter(1, order, drop), NEG_INF)  # (N, V)


@PROCESSORS.register("typical_p")
class TypicalP:
    """Locally typical sampling (Meister et al., 2023; HF TypicalLogitsWarper).

    Tokens are ranked by how far their surprisal ``-log p`` lies from the entropy; the closest
    are kept until their mass reaches ``typical_p`` (ties with the last one kept stay too).
    ``typical_p=1`` keeps every token (HF's ``generate`` then leaves the warper out).
    """

    def __init__(self, typical_p: float, min_tokens_to_keep: int = 1) -> None:
        p = _number("typical_p", "typical_p", typical_p, 0.9)
        if not 0 < p <= 1:
            raise _out_of_range(
                "typical_p",
                "typical_p",
                typical_p,
                "(0, 1]",
                "set typical_p to e.g. 0.9, or 1 to keep every token",
            )
        self.typical_p, self.min_keep = p, _min_keep("typical_p", min_tokens_to_keep)

    def __call__(self, log_probs: Tensor, tokens: Tensor, step: int) -> Tensor:
        if self.typical_p == 1:
            return log_probs
        log_p = log_probs.log_softmax(dim=-1)  # (N, V)
        atypicality = (-log_p - _entropy(log_p)).abs()  # (N, V); nan-free: -inf -> inf
        ranked, order = atypicality.sort(dim=-1)  # (N, V) most typical first
        mass = log_p.exp().gather(1, order).cumsum(dim=-1)  # (N, V)
        last = (mass < self.typical_p).sum(dim=-1, keepdim=True).clamp_max(log_p.size(-1) - 1)
        drop = ranked > ranked.gather(1, last)  # (N, V) in sorted order
        drop[:, : self.min_keep] = False
        return log_probs.masked_fill(drop.scatter(1, order, drop), NEG_INF)  # (N, V)


def _cut_below(log_probs: Tensor, threshold: Tensor, min_keep: int) -> Tensor:
    """Drop tokens of probability below ``threshold`` ``(N, 1)``, except the ``min_keep``
    most probable (and any tied with the last of them)."""
    probs = log_probs.softmax(dim=-1)  # (N, V)
    drop = (probs < threshold) & (log_probs < _kth_largest(log_probs, min_keep))  # (N, V)
    return log_probs.masked_fill(drop, NEG_INF)


@PROCESSORS.register("epsilon")
class Epsilon:
    """Epsilon sampling (Hewitt et al., 2022; HF EpsilonLogitsWarper): drop tokens of
    probability below ``epsilon``; ``epsilon=0``: off."""

    def __init__(self, epsilon: float, min_tokens_to_keep: int = 1) -> None:
        e = _number("epsilon", "epsilon", epsilon, 0.0003)
        if not 0 <= e < 1:
            raise _out_of_range(
                "epsilon",
                "epsilon",
                epsilon,
                "[0, 1)",
                "set epsilon to e.g. 0.0003 (Hewitt et al. suggest 3e-4 to 9e-4), or 0 for off",
            )
        self.epsilon, self.min_keep = e, _min_keep("epsilon", min_tokens_to_keep)

    def __call__(self, log_probs: Tensor, tokens: Tensor, step: int) -> Tensor:
        threshold = log_probs.new_full((log_probs.size(0), 1), self.epsilon)  # (N, 1)
        return _cut_below(log_probs, threshold, self.min_keep)


@PROCESSORS.register("eta")
class Eta:
    """Eta sampling (Hewitt et al., 2022; HF EtaLogitsWarper): drop tokens of probability
    below ``min(eta, sqrt(eta) * exp(-entropy))``, a cut that loosens as the entropy grows;
    ``eta=0``: off. (HF calls the parameter ``epsilon``, ``generate`` calls it ``eta_cutoff``.)
    """

    def __init__(self, eta: float, min_tokens_to_keep: int = 1) -> None:
        e = _number("eta", "eta", eta, 0.0003)
        if not 0 <= e < 1:
            raise _out_of_range(
                "eta",
                "eta",
                eta,
                "[0, 1)",
                "set eta to e.g. 0.0003 (Hewitt et al. suggest 3e-4 to 2e-3), or 0 for off",
            )
        self.eta, self.min_keep = e, _min_keep("eta", min_tokens_to_keep)

    def __call__(self, log_probs: Tensor, tokens: Tensor, step: int) -> Tensor:
        entropy = _entropy(log_probs.log_softmax(dim=-1))  # (N, 1)
        eta = log_probs.new_tensor(self.eta)
        threshold = torch.minimum(eta, eta.sqrt() * (-entropy).exp())  # (N, 1)
        return _cut_below(log_probs, threshold, self.min_keep)


@PROCESSORS.register("min_p")
class MinP:
    """Min-p sampling (HF MinPLogitsWarper): drop tokens less probable than ``min_p`` times
    the most probable one; ``min_p=0``: off."""

    def __init__(self, min_p: float, min_tokens_to_keep: int = 1) -> None:
        m = _number("min_p", "min_p", min_p, 0.1)
        if not 0 <= m < 1:
            raise _out_of_range(
                "min_p",
                "min_p",
                min_p,
                "[0, 1)",
                "set min_p to e.g. 0.1 (0.01-0.2 is usual), or 0 for off",
            )
        self.min_p, self.min_keep = m, _min_keep("min_p", min_tokens_to_keep)

    def __call__(self, log_probs: Tensor, tokens: Tensor, step: int) -> Tensor:
        probs = log_probs.softmax(dim=-1)  # (N, V)
        drop = probs < self.min_p * probs.amax(dim=-1, keepdim=True)  # (N, V)
        best = probs.topk(min(self.min_keep, probs.size(-1)), dim=-1).indices  # (N, k)
        drop.scatter_(1, best, False)
        return log_probs.masked_fill(drop, NEG_INF)  # (N, V)


@PROCESSORS.register("repetition_penalty")
class RepetitionPenalty:
    """Penalize tokens already generated (Keskar et al., 2019; HF
    RepetitionPenaltyLogitsProcessor): a negative score is multiplied by ``penalty``, a
    positive one divided, once per token however often it occurred. On log-probs (all <= 0)
    it always multiplies: ``p`` becomes ``p ** penalty``; penalty > 1 discourages repeats."""

    def __init__(self, penalty: float) -> None:
        p = _number("repetition_penalty", "penalty", penalty, 1.2)
        if not p > 0:
            raise _out_of_range(
                "repetition_penalty",
                "penalty",
                penalty,
                "(0, inf)",
                "set penalty to e.g. 1.2 (1 = off, < 1 rewards repeats)",
            )
        self.penalty = p

    def __call__(self, log_probs: Tensor, tokens: Tensor, step: int) -> Tensor:
        if tokens.size(1) == 0:
            return log_probs
        seen = log_probs.gather(1, tokens)  # (N, t) the score of each generated token
        seen = torch.where(seen < 0, seen * self.penalty, seen / self.penalty)  # (N, t)
        return log_probs.scatter(1, tokens, seen)  # (N, V); repeats write the same value
