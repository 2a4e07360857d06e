"""Rerank's weights tuned by Optuna (``search.tune=optuna``): a seeded TPE sampler proposes
``search.trials`` weight settings, each drawn within ``search.ranges`` (``{scorer: [low,
high]}``; the other scorers keep their configured weight), and the setting whose picks score
best by the run's metric wins (ties: the earlier trial).

As with the grid (``weights.grid_search``), the candidates and their terms are computed once;
a trial only re-ranks them, so a hundred trials cost about as much as a hundred grid points.
With the sampler's seed fixed, the trials, and so the tuned weights, are the same on every run.
Optuna comes with the lab's ``sweep`` extra.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence

from lab.errors import LabError
from lab.search.rerank.weights import pick
from lab.search.types import Hypothesis


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
