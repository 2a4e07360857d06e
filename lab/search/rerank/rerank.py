"""Noisy-channel reranking, ``search=rerank`` (Yee et al., 2019; fairseq ``examples/noisychannel``):
an inner search's n-best lists (``search.candidates``, duplicates dropped), re-scored by a
weighted sum of scorers (``lab.search.rerank.scorers``: direct, channel, lm, length) and ranked.

The ``nbest`` best are returned, best first (ties: the inner search's order); each keeps the
decoding model's ``logprob``, its ``score`` is the weighted sum (``lab.search.rerank.weights``)
and its ``info`` holds every scorer's value as ``rerank_<scorer>`` (before normalization)
beside what the inner search put there. The weights are ``search.weights``, or tuned on the
validation split before the run decodes (``search.tune=grid`` or ``optuna``, run by
``lab.tune``) and then recorded in ``results.json`` as ``search_settings``. Cost: the inner
search's counters, its wall time as ``generation_seconds``, scoring (channel, LM) and ranking
as ``selection_seconds``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.registry import SEARCHES
from lab.search.contracts import Detokenize
from lab.search.limits import check_positive
from lab.search.rerank.scorers import Batch, Scored, as_info, build_scorers
from lab.search.rerank.tuning import Featurized, fit
from lab.search.rerank.weights import plan_of, ranked, terms, total
from lab.search.select import Decode, Generation, Quality, build_inner, distinct
from lab.search.types import Hypothesis, SearchOutput


@SEARCHES.register("rerank")
class Rerank:
    """Noisy-channel reranking: an inner search's n-best by a weighted sum of scorers."""

    inputs = ("keys", "detokenize")

    def __init__(
        self,
        candidates: Mapping[str, Any] | None = None,
        scorers: Sequence[Any] = ("direct",),
        weights: Mapping[str, float] | None = None,
        normalize: bool = False,
        nbest: int = 1,
        tune: str | None = None,
        grid: Mapping[str, Sequence[float]] | None = None,
        tune_metric: str = "bleu",
        tune_limit: int | None = None,
        ranges: Mapping[str, Sequence[float]] | None = None,
        trials: int = 50,
        tune_seed: int = 0,
    ) -> None:
        self.candidates = build_inner("candidates", candidates)
        self.scorers = build_scorers(scorers)
        self.plan = plan_of(list(self.scorers), weights, tune, grid, ranges)
        self.tunes = bool(self.plan.grid or self.plan.ranges)
        self.trials, self.tune_seed = check_positive("trials", trials), int(tune_seed)
        self.weights = {} if self.tunes else self.plan.fixed()
        self.normalize, self.nbest = bool(normalize), check_positive("nbest", nbest)
        self.tune_metric = str(tune_metric)
        self.tune_limit = None if tune_limit is None else check_positive("tune_limit", tune_limit)
        self.settings: dict[str, Any] | None = None  # the tuned weights, once tuned

    def __call__(
        self,
        model: DecoderModel,
        src: Tensor,
        src_lengths: Tensor,
        keys: Sequence[int] | None = None,
        detokenize: Detokenize | None = None,
    ) -> SearchOutput:
        if not self.weights:
            raise LabError(
                "search.tune: the weights are not tuned yet; lab run tunes them on the "
                "validation split (in Python: lab.tune.tune_search), or set search.weights."
            )  # fmt: skip
        gen = Generation()
        inner = gen.run(self.candidates, model, src, src_lengths, keys, detokenize)
        scored = self.featurize(model, src, src_lengths, inner.nbest)
        return gen.output([self.rank(one) for one in scored], src.size(0))

    def featurize(
        self, model: DecoderModel, src: Tensor, src_lengths: Tensor, lists: list[list[Hypothesis]]
    ) -> list[list[Scored]]:
        """Every distinct candidate of every sentence with its scorers' values and terms; each
        scorer runs once over the whole batch of candidates."""
        unique = [distinct(hyps) for hyps in lists]
        flat = [(i, h) for i, hyps in enumerate(unique) for h in hyps]
        if not flat:
            return [[] for _ in unique]
        rows = torch.tensor([i for i, _ in flat], dtype=torch.long, device=src.device)  # (H,)
        batch = Batch([h for _, h in flat], rows, src, src_lengths)
        with torch.inference_mode():
            values = {n: scorer(model, batch) for n, scorer in self.scorers.items()}  # n: (H,)
        per = {n: scorer.per for n, scorer in self.scorers.items()}
        src_lens = src_lengths.tolist()
        scored: list[list[Scored]] = [[] for _ in unique]
        for j, (i, h) in enumerate(flat):
            features = {n: float(v[j]) for n, v in values.items()}
            norm = terms(features, per, self.normalize, h.length, src_lens[i])
            scored[i].append(Scored(h, features, norm))
        return scored

    def rank(self, scored: list[Scored]) -> list[Hypothesis]:
        """One sentence's ``nbest`` best candidates by the weighted sum of their terms."""
        scores = [total(s.terms, self.weights) for s in scored]
        return [
            dataclasses.replace(
                scored[c].hyp,
                score=scores[c],
                proved_optimal=None,
                info={**(scored[c].hyp.info or {}), **as_info(scored[c].features)},
            )
            for c in ranked(scores)[: self.nbest]
        ]

    def tune(self, decode: Decode, quality: Quality) -> dict[str, Any]:
        """Fit the weights by grid search (``lab.search.rerank.weights``) or Optuna
        (``tuning``) on the lists that ``decode`` returns; they rank every later call."""
        lists = decode(Featurized(self))
        self.weights, value = fit(self.plan, lists, quality, self.trials, self.tune_seed)
        self.settings = {
            "weights": dict(self.weights),
            "tuned_metric": self.tune_metric,
            "tuned_quality": value,  # the metric there (negated where lower is better)
            "tuned_sentences": len(lists),
            **({"trials": self.trials} if self.plan.ranges else {}),
        }
        return self.settings
