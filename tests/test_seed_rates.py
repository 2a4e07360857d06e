"""Search-error rates over seeds: each beam every seed ran becomes one row of mean ± std over
the seeds, and the mode one row of its own."""

import pandas as pd

from lab.rebuild.seed_rates import BEAM_COLS, MODE_COLS, pooled, rates_over_seeds


def rates(beams: list[int], error: float, exact_bleu: float) -> pd.DataFrame:
    rows = [
        {
            **dict.fromkeys(BEAM_COLS, 0.5),
            **dict.fromkeys(MODE_COLS, 0.25),
            "beam_size": b,
            "search_error": error / b,
            "exact_bleu": exact_bleu,
        }
        for b in beams
    ]
    return pd.DataFrame(rows)


def test_beams_run_by_every_seed_are_pooled_with_their_spread():
    seeds = {0: rates([1, 2, 4, 64], 0.6, 33.0), 1: rates([1, 4, 64], 0.4, 34.0)}
    beams, mode = pooled(seeds)
    assert list(beams["beam"]) == [1, 4, 64]  # beam 2: one seed only
    assert beams.loc[0, "search_error"] == "0.500 ± 0.141 (n=2)"
    assert beams.loc[1, "search_error"] == "0.125 ± 0.035 (n=2)"
    assert mode.loc[0, "exact_bleu"] == "33.50 ± 0.71 (n=2)"
    assert mode.loc[0, "search"] == "exact" and mode.loc[0, "empty_mode"] == "0.250 ± 0.000 (n=2)"


def test_nothing_is_written_until_every_seed_has_its_analysis(tmp_path):
    assert rates_over_seeds(tmp_path) == []
