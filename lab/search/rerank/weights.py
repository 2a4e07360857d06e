"""Rerank's weights: checked against its scorers, applied to a candidate's terms, and fitted by a
grid search on held-out data (as fairseq's ``examples/noisychannel`` tunes its weights).

A candidate's *terms* are its scorers' values, each divided, when ``normalize`` is on, by the
length its scorer names (``Scorer.per``: Yee et al. (2019) divide log p(y|x) by the output's
length and log p(x|y), log p(y) by the source's); its score is the weighted sum of its terms,
``sum_n weights[n] * terms[n]`` in the order of ``search.scorers``.

Tuning (``search.tune=grid``): every point of the product of ``search.grid``'s value lists
(scorers without a grid keep their configured weight) picks one candidate per sentence, and the
point whose picks score best by the run's metric wins (ties: the earlier point in grid order).
The candidates and their terms are computed once; each point only re-ranks them.
``search.tune=optuna`` draws the points from ``search.ranges`` instead (``tuning``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lab.errors import LabError
from lab.search.types import Hypothesis

TUNERS = ("grid", "optuna")


@dataclass(frozen=True)
class Plan:
    """The scorers' names (config order), the fixed weights and the grid to tune (may be
    empty)."""

    names: tuple[str, ...]
    weights: dict[str, float]
    grid: dict[str, tuple[float, ...]] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # search.tune=optuna

    def points(self) -> list[dict[str, float]]:
        """Every weight setting of the grid, first grid key slowest; fixed weights as set."""
        keys, out = list(self.grid), []
        for values in itertools.product(*(self.grid[k] for k in keys)):
            w = self.weights | dict(zip(keys, values, strict=True))
            out.append({n: w[n] for n in self.names})
        return out

    def fixed(self) -> dict[str, float]:
        """The configured weights in the scorers' order (every scorer has one unless tuned)."""
        return {n: self.weights[n] for n in self.names}


def number(key: str, value: Any) -> float:
    """A finite number, or one line naming the key."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LabError(f"{key} must be a finite number, got {value!r}; e.g. {key}=0.5.")
    return float(value)


def unlisted(key: str, names: Sequence[str], given: Mapping[str, Any]) -> None:
    """Refuse keys of ``given`` (search.weights / search.grid) that name no listed scorer."""
    for name in given:
        if name not in names:
            raise LabError(
                f"{key}.{name}: {name} is not in search.scorers ({', '.join(names)}); add it "
                f"there or drop {key}.{name}."
            )


def ranges_of(names: Sequence[str], ranges: Any) -> dict[str, tuple[float, float]]:
    """``search.ranges`` checked: listed scorers only, each ``[low, high]`` with low < high."""
    if not isinstance(ranges, Mapping) or not ranges:
        raise LabError("search.tune=optuna needs search.ranges, e.g. {channel: [0, 2]}.")
    out = {}
    for n, pair in ranges.items():
        if n not in names:
            raise LabError(
                f"search.ranges.{n}: {n} is not in search.scorers ({', '.join(names)}); add it "
                f"there or drop search.ranges.{n}."
            )
        if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise LabError(f"search.ranges.{n} must be [low, high], e.g. [0, 2].")
        low, high = (number(f"search.ranges.{n}", v) for v in pair)
        if not low < high:
            raise LabError(f"search.ranges.{n}=[{low:g}, {high:g}]: low must be below high.")
        out[str(n)] = (low, high)
    return out


def plan_of(names: Sequence[str], weights: Any, tune: Any, grid: Any, ranges: Any = None) -> Plan:
    """The weights and grid (or Optuna's ranges) of the config, checked against the scorers
    ``names``; no weights (None): every scorer weighs 1, the noisy channel's log p(y|x) +
    log p(x|y) + log p(y)."""

    weights = dict.fromkeys(names, 1.0) if weights is None else weights
    grid = grid or {}
    if not isinstance(weights, Mapping) or not isinstance(grid, Mapping):
        raise LabError("search.weights and search.grid must map scorer names to values.")
    if tune is not None and tune not in TUNERS:
        raise LabError(f"search.tune={tune!r}: valid choices are null, {', '.join(TUNERS)}.")
    unlisted("search.weights", names, weights)
    fixed = {n: number(f"search.weights.{n}", w) for n, w in weights.items()}
    tuned: dict[str, tuple[float, ...]] = {}
    if tune == "grid":
        unlisted("search.grid", names, grid)
        for n, values in grid.items():
            if isinstance(values, str) or not isinstance(values, Sequence) or not values:
                raise LabError(f"search.grid.{n} must be a non-empty list, e.g. [0, 0.5, 1].")
            tuned[n] = tuple(number(f"search.grid.{n}", v) for v in values)
        if not tuned:
            raise LabError("search.tune=grid needs search.grid, e.g. {channel: [0, 0.5, 1]}.")
    drawn = ranges_of(names, ranges) if tune == "optuna" else {}
    missing = [n for n in names if n not in fixed and n not in tuned and n not in drawn]
    if missing:
        raise LabError(
            f"search.weights has no weight for {', '.join(missing)}; set one (0: reported, not "
            "ranked by), or tune it (search.tune=grid with search.grid, or search.tune=optuna "
            "with search.ranges)."
        )
    return Plan(tuple(names), fixed, tuned, drawn)


def terms(
    features: Mapping[str, float],
    per: Mapping[str, str | None],
    normalize: bool,
    out_len: int,
    src_len: int,
) -> dict[str, float]:
    """The features as ranked: divided by the length ``per`` names when ``normalize``."""
    length = {"output": max(out_len, 1), "source": max(src_len, 1), None: 1}
    return {n: v / length[per[n]] if normalize else v for n, v in features.items()}


def total(terms: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """The weighted sum of the terms, in the weights' (the scorers') order."""
    return sum(w * terms[n] for n, w in weights.items())


def ranked(scores: Sequence[float]) -> list[int]:
    """Indices by descending score (a stable sort: ties keep their order)."""
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def grid_search(
    lists: Sequence[Sequence[Hypothesis]],
    points: Sequence[dict[str, float]],
    quality: Callable[[list[Hypothesis]], float],
) -> tuple[dict[str, float], float]:
    """The grid point whose picks (each list's best by ``total`` of the terms in ``info``)
    have the highest ``quality``, and that quality; ties keep the earlier point."""
    best: tuple[dict[str, float], float] | None = None
    for point in points:
        value = quality(pick(lists, point))
        if best is None or value > best[1]:
            best = (point, value)
    assert best is not None, "a grid has at least one point"
    return best


def pick(lists: Sequence[Sequence[Hypothesis]], weights: Mapping[str, float]) -> list[Hypothesis]:
    """Each list's best candidate by ``total`` of the terms in its ``info`` (ties: the first)."""
    return [hyps[ranked([total(h.info or {}, weights) for h in hyps])[0]] for hyps in lists]
