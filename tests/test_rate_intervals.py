"""Two models' search-error rates on the same sentences compare with a paired bootstrap
interval (``lab.rebuild.rate_intervals``): pairs by sentence and beam, drops the sentences a
verdict cannot tell, matches a bootstrap written out by hand, and every interval the reports
quote is the committed table's."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lab.analyze import RATES
from lab.rebuild.rate_intervals import compare
from tests.report_data import REPORTS, said


def _frame(values: dict[str, list[float]], beam: int = 4) -> pd.DataFrame:
    n = len(next(iter(values.values())))
    cols = {r: values.get(r, [0.0] * n) for r in RATES}
    return pd.DataFrame({"id": [f"s{i}" for i in range(n)], "beam_size": beam, **cols})


def _row(rows: list[dict], rate: str) -> dict:
    (row,) = [r for r in rows if r["rate"] == rate]
    return row


def test_a_model_against_itself_differs_by_nothing() -> None:
    a = _frame({"search_error": [1, 0, 1, 1, 0, 0, 1, 0]})
    row = _row(compare(a, a), "search_error")
    assert row["delta"] == row["delta_low"] == row["delta_high"] == 0.0
    assert row["system_pct"] == row["baseline_pct"] == 50.0


def test_only_sentences_both_verdicts_know_are_paired() -> None:
    base = _frame({"search_error": [1, 0, np.nan, 1]})
    system = _frame({"search_error": [np.nan, 0, 1, 0]})
    row = _row(compare(system, base), "search_error")
    assert row["n"] == 2 and row["baseline_pct"] == 50.0 and row["system_pct"] == 0.0


def test_pairs_are_matched_by_sentence_and_beam_not_by_position() -> None:
    one, four = _frame({"search_error": [1, 1, 0]}, 1), _frame({"search_error": [0, 0, 0]}, 4)
    base = pd.concat([one, four])
    system = base.iloc[::-1].reset_index(drop=True)  # the same rows, in another order
    rows = compare(system, base)
    assert {r["beam"] for r in rows} == {1, 4}
    assert all(r["delta"] == 0.0 for r in rows)


def test_the_interval_is_sacrebleus_bootstrap_of_the_paired_difference() -> None:
    g = np.random.default_rng(7)
    base, system = g.random(300) < 0.3, g.random(300) < 0.45
    rows = compare(_frame({"model_error": system}), _frame({"model_error": base}))
    row = _row(rows, "model_error")
    # by hand: sacreBLEU's resamples (seed 12345), the difference of the resampled means
    idx = np.random.default_rng(12345).choice(300, size=(1000, 300), replace=True)
    diffs = np.sort(100 * (system[idx].mean(1) - base[idx].mean(1)))
    assert np.isclose(row["delta"], 100 * (system.mean() - base.mean()))
    assert np.isclose(row["delta_low"], diffs[25]) and np.isclose(row["delta_high"], diffs[974])


def _table(section: str) -> pd.DataFrame:
    return pd.read_csv(REPORTS / section / "rate_intervals.csv")


def _pts(t: pd.DataFrame, comparison: str, beam: int, rate: str = "search_error") -> str:
    (row,) = t[(t.comparison == comparison) & (t.beam == beam) & (t.rate == rate)].itertuples()
    return f"{row.delta:+.2f} [{row.delta_low:+.2f}, {row.delta_high:+.2f}]"


def _shown(t: pd.DataFrame, comparison: str, beam: int, rate: str = "search_error") -> bool:
    (row,) = t[(t.comparison == comparison) & (t.beam == beam) & (t.rate == rate)].itertuples()
    return row.delta_low > 0 or row.delta_high < 0


def test_label_smoothing_and_gru_rates_quoted_with_their_intervals() -> None:
    t = _table("search_errors")
    ls = "label smoothing 0 - 0.1"
    assert _shown(t, ls, 4) and _shown(t, ls, 64) and not _shown(t, ls, 1)
    b4, b64 = _pts(t, ls, 4).split(" ", 1), _pts(t, ls, 64)
    assert said(f"{b4[0]} points {b4[1]} at beam 4 and {b64} at beam 64")
    assert said(f"greedy's, {_pts(t, ls, 1)}, is not shown")
    gru = "GRU - Transformer"
    shown = {b: _shown(t, gru, b) for b in sorted(set(t[t.comparison == gru].beam))}
    assert [b for b, s in shown.items() if not s] == [2]
    g1, g4, g64 = (_pts(t, gru, b).split(" ", 1) for b in (1, 4, 64))
    assert said(f"greedy, {g1[0]} points {g1[1]}, at beam 4, {' '.join(g4)}, and at beam 64,")
    assert said(f"{' '.join(g64)}, at every beam size but 2 ({_pts(t, gru, 2)}, not shown)")
    assert not _shown(t, gru, 1, "empty_mode") and said(f"none ({_pts(t, gru, 1, 'empty_mode')})")


def test_ensemble_and_fusion_rates_quoted_with_their_intervals() -> None:
    t = _table("multimodel/search_errors")
    seeds = [f"ensemble - seed {s}" for s in range(3)]
    assert [_shown(t, s, 5) for s in seeds] == [False, False, True]
    e2 = _pts(t, seeds[2], 5).split(" ", 1)
    assert said(f"than seed 2's, {e2[0]} points {e2[1]}, and is not shown to differ")
    assert said(f"seeds 0 and 1 ({_pts(t, seeds[0], 5)} and {_pts(t, seeds[1], 5)})")
    assert _shown(t, seeds[1], 5, "empty_mode")
    assert said(f"less often than seed 1's, {_pts(t, seeds[1], 5, 'empty_mode')}")
    fu = "fusion w 0.2 - 0.0 (fused score)"
    assert _shown(t, fu, 5) and _shown(t, fu, 1) and not _shown(t, fu, 5, "model_error")
    beam, greedy = _pts(t, fu, 5).split(" ", 1), _pts(t, fu, 1)
    assert said(f"{beam[0]} points {beam[1]} for beam and {greedy} for greedy")
    assert said(f"at both weights ({_pts(t, fu, 5, 'model_error')})")
