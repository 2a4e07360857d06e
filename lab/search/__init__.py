"""Search algorithms and their plug-ins (penalties, stop rules, logits processors)."""

from lab.search import (  # noqa: F401  (registration)
    beam,
    beam_lp,
    best_first,
    diverse_beam,
    exact,
    greedy,
    mbr,
    penalties,
    presets,
    processors,
    regularizers,
    sample,
    stochastic_beam,
    stop,
    warpers,
)
from lab.search.base import Cost, Hypothesis, SearchOutput

__all__ = ["Cost", "Hypothesis", "SearchOutput"]
