"""Length-penalized beam search: beam search ranking finished hypotheses by a length penalty.

Registered under its own name only so that a sweep can say ``search=greedy,beam,beam_lp``; the
search is ``lab.search.beam``'s with another ``Penalty`` object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lab.registry import PENALTIES, SEARCHES, STOP_RULES
from lab.search.beam import BeamSearch
from lab.search.processors import Processors


@SEARCHES.register("beam_lp")
def beam_lp(
    penalty: str = "gnmt",
    alpha: float = 0.6,
    beam_size: int = 5,
    nbest: int = 1,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
    min_len: int = 0,
    stop_rule: str = "first_k",
    processors: Sequence[Mapping[str, Any]] | None = None,
) -> BeamSearch:
    """Length-penalized beam search: penalty average|gnmt|word_reward with strength alpha."""
    scorer = PENALTIES.build(penalty, alpha=alpha)
    stop, procs = STOP_RULES.build(stop_rule), Processors(processors, min_len)
    return BeamSearch(beam_size, nbest, (max_len_a, max_len_b), scorer, stop, procs)
