"""A speculative run's acceptance is drafted tokens kept over drafted tokens, summed over the
run; runs of other searches get no speculative figures."""

from __future__ import annotations

import pytest

from lab.metrics.speculation import speculation_rates


def test_acceptance_is_a_ratio_of_sums() -> None:
    rows = [
        {"accepted": 1.0, "drafted": 2.0, "target_calls": 3.0, "draft_calls": 4.0},
        {"accepted": 8.0, "drafted": 8.0, "target_calls": 5.0, "draft_calls": 10.0},
    ]
    rates = speculation_rates(rows)
    assert rates["spec_acceptance"] == pytest.approx(9 / 10)  # not the mean of 0.5 and 1.0
    assert rates["spec_target_calls"] == pytest.approx(4.0)
    assert rates["spec_draft_calls"] == pytest.approx(7.0)
    assert "spec_draft_seconds" not in rates  # outputs made before the draft was timed


def test_draft_seconds_add_up_over_the_run() -> None:
    row = {"accepted": 1.0, "drafted": 2.0, "target_calls": 3.0, "draft_calls": 4.0}
    rates = speculation_rates([{**row, "draft_seconds": 0.25}, {**row, "draft_seconds": 0.5}])
    assert rates["spec_draft_seconds"] == pytest.approx(0.75)


def test_other_searches_get_nothing() -> None:
    assert speculation_rates([{"logprob": -1.0}]) == {}
    assert speculation_rates([]) == {}
