"""Tuning rerank's weights: the lists it tunes on (``Featurized``: every distinct candidate with
its terms) and the fit, by the grid (``weights.grid_search``) or by Optuna.

Optuna (``search.tune=optuna``): a seeded TPE sampler proposes
``search.trials`` weight settings, each drawn within ``search.ranges`` (``{scorer: [low,
high]}``; the other scorers keep their configured weight), and the setting whose picks score
best by the run's metric wins (ties: the earlier trial).

As with the grid (``weights.grid_search``), the candidates and their terms are computed once;
a trial only re-ranks them, so a hundred trials cost about as much as a hundred grid points.
With the sampler's seed fixed, the trials, and so the tuned weights, are the same on every run.
Optuna comes with the lab's ``sweep`` extra.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from torch import Tensor

from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.search.contracts import Detokenize, call_search
from lab.search.rerank.weights import Plan, grid_search, pick
from lab.search.types import Hypothesis, SearchOutput

if TYPE_CHECKING:
    from lab.search.rerank.rerank import Rerank


def optuna_search(
    lists: Sequence[Sequence[Hypothesis]],
    fixed: Mapping[str, float],
    names: Sequence[str],
    ranges: Mapping[str, tuple[float, float]],
    quality: Callable[[list[Hypothesis]], float],
    trials: int,
    seed: int,
) -> tuple[dict[str, float], float]:
    """The best of ``trials`` TPE-proposed weight settings and its quality; ties keep the
    earlier trial."""
    try:
        with warnings.catch_warnings():  # optuna 2's SQLAlchemy 2 deprecation notes
            warnings.simplefilter("ignore")
            import optuna
    except ImportError:
        raise LabError(
            'search.tune=optuna needs Optuna: pip install -e ".[sweep]" (or search.tune=grid).'
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    best: tuple[dict[str, float], float] | None = None
    for _ in range(trials):
        trial = study.ask()
        drawn = {n: trial.suggest_float(n, low, high) for n, (low, high) in ranges.items()}
        point = {n: (fixed | drawn)[n] for n in names}
        value = quality(pick(lists, point))
        study.tell(trial, value)
        if best is None or value > best[1]:
            best = (point, value)
    assert best is not None, "at least one trial"
    return best


def fit(
    plan: Plan,
    lists: Sequence[Sequence[Hypothesis]],
    quality: Callable[[list[Hypothesis]], float],
    trials: int,
    seed: int,
) -> tuple[dict[str, float], float]:
    """The tuned weights and their quality: Optuna over ``plan.ranges``, else the grid."""
    if plan.ranges:
        return optuna_search(lists, plan.weights, plan.names, plan.ranges, quality, trials, seed)
    return grid_search(lists, plan.points(), quality)


class Featurized:
    """What tuning decodes with: every distinct candidate, its terms as its ``info``."""

    inputs = ("keys", "detokenize")  # Rerank's

    def __init__(self, rerank: Rerank) -> None:
        self.rerank = rerank

    def __call__(
        self,
        model: DecoderModel,
        src: Tensor,
        src_lengths: Tensor,
        keys: Sequence[int] | None = None,
        detokenize: Detokenize | None = None,
    ) -> SearchOutput:
        r = self.rerank
        inner = call_search(r.candidates, model, src, src_lengths, keys, detokenize)
        lists = r.featurize(model, src, src_lengths, inner.nbest)
        return SearchOutput(
            [[dataclasses.replace(s.hyp, info=s.terms) for s in one] for one in lists], inner.cost
        )
