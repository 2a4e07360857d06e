"""Corpus figures of speculative decoding, from the counters each output carries in its info
(``lab.search.speculative.draft``): a run's acceptance is a ratio of sums, not a mean of
per-sentence ratios, so long sentences weigh as many tokens as they draft."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

COUNTERS = ("accepted", "drafted", "target_calls", "draft_calls")


def speculation_rates(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """``spec_acceptance`` (drafted tokens the target kept, over all drafted),
    ``spec_target_calls`` and ``spec_draft_calls`` (per sentence, the encode call included),
    ``spec_draft_seconds`` (wall time on the draft's side, all sentences; absent from outputs
    older than that counter); nothing for a run whose outputs carry no speculative counters."""
    if not rows or not all("drafted" in r for r in rows):
        return {}
    total = {c: sum(float(r[c]) for r in rows) for c in COUNTERS}
    n = len(rows)
    acceptance = total["accepted"] / total["drafted"] if total["drafted"] else 0.0
    out = {
        "spec_acceptance": acceptance,
        "spec_target_calls": total["target_calls"] / n,
        "spec_draft_calls": total["draft_calls"] / n,
    }
    if all("draft_seconds" in r for r in rows):
        out["spec_draft_seconds"] = sum(float(r["draft_seconds"]) for r in rows)
    return out
