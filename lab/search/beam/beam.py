"""Beam search, registered as ``beam``: ``build_beam`` makes a ``BeamSearch`` from its settings,
the one place ``beam``, ``beam_lp`` and the toolkit presets build theirs."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from lab.errors import LabError
from lab.registry import PENALTIES, SEARCHES, STOP_RULES
from lab.search.beam.beam_search import BeamSearch
from lab.search.beam.coverage import coverage_penalty
from lab.search.beam.rules import BeamRules
from lab.search.processors.chain import Processors


def build_beam(
    *,
    beam_size: int,
    nbest: int,
    max_len_a: float,
    max_len_b: int,
    min_len: int,
    stop_rule: str,
    processors: Sequence[Mapping[str, Any]] | None,
    penalty: str = "none",
    alpha: float = 0.0,
    length_offset: int = 0,
    rules: BeamRules | None = None,
    preset: str | None = None,
    coverage: str = "none",
    beta: float = 0.0,
) -> BeamSearch:
    """A beam search from its settings: the one place ``beam``, ``beam_lp`` and the toolkit
    presets build theirs. The search keeps the settings (``preset`` too, and a coverage penalty
    when there is one) as ``settings``."""
    rules = rules or BeamRules()
    settings = {
        "beam_size": beam_size, "nbest": nbest, "max_len_a": max_len_a, "max_len_b": max_len_b,
        "min_len": min_len, "stop_rule": stop_rule, "processors": list(processors or ()),
        "penalty": penalty, "alpha": alpha, "length_offset": length_offset,
        **dataclasses.asdict(rules), **({"preset": preset} if preset else {}),
        **({"coverage": coverage, "beta": beta} if coverage != "none" else {}),
    }  # fmt: skip
    if stop_rule == "patience" and math.floor(beam_size * rules.patience + 0.5) < 1:
        raise LabError(
            f"search.patience={rules.patience} x search.beam_size={beam_size} rounds to 0"
            " finished hypotheses; raise search.patience (1 waits for beam_size of them)."
        )
    if stop_rule != "patience" and rules.patience != 1:
        raise LabError(
            f"search.patience={rules.patience} applies only to stop_rule=patience (it is"
            f" {stop_rule}); set search.stop_rule=patience or drop search.patience."
        )
    offset = {"offset": length_offset} if length_offset else {}
    scorer = PENALTIES.build(penalty, alpha=alpha, **offset)
    stop, procs = STOP_RULES.build(stop_rule), Processors(processors, min_len, limits=True)
    cov = coverage_penalty(coverage, beta)
    return BeamSearch(
        beam_size, nbest, (max_len_a, max_len_b), scorer, stop, procs, rules, settings, cov
    )


@SEARCHES.register("beam")
def beam(
    beam_size: int = 5,
    nbest: int = 1,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
    min_len: int = 0,
    stop_rule: str = "first_k",
    processors: Sequence[Mapping[str, Any]] | None = None,
    refill: bool = True,
    finalize: str = "best",
    forced_eos: str = "off",
    patience: float = 1.0,
    coverage: str = "none",
    beta: float = 0.0,
) -> BeamSearch:
    """Beam search: beam_size, nbest, length limits, stop rule; BeamRules for toolkit rules;
    a coverage penalty none|wu|summary of strength beta (``lab.search.beam.coverage``)."""
    return build_beam(
        beam_size=beam_size, nbest=nbest, max_len_a=max_len_a, max_len_b=max_len_b,
        min_len=min_len, stop_rule=stop_rule, processors=processors,
        rules=BeamRules(refill, finalize, forced_eos, patience), coverage=coverage, beta=beta,
    )  # fmt: skip
