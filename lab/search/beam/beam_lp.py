"""Length-penalized beam search: beam search ranking finished hypotheses by a length penalty.

Registered under its own name only so that a sweep can say ``search=greedy,beam,beam_lp``; the
search is ``lab.search.beam.beam_search``'s with another ``Penalty`` object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lab.registry import SEARCHES
from lab.search.beam.beam import build_beam
from lab.search.beam.beam_search import BeamSearch
from lab.search.beam.rules import BeamRules


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
    length_offset: int = 0,
    refill: bool = True,
    finalize: str = "best",
    forced_eos: str = "off",
    patience: float = 1.0,
    coverage: str = "none",
    beta: float = 0.0,
) -> BeamSearch:
    """Length-penalized beam search: penalty average|gnmt|word_reward with strength alpha, and
    a coverage penalty none|wu|summary with strength beta (GNMT's rescoring: both)."""
    return build_beam(
        beam_size=beam_size, nbest=nbest, max_len_a=max_len_a, max_len_b=max_len_b,
        min_len=min_len, stop_rule=stop_rule, processors=processors, penalty=penalty,
        alpha=alpha, length_offset=length_offset,
        rules=BeamRules(refill, finalize, forced_eos, patience), coverage=coverage, beta=beta,
    )  # fmt: skip
