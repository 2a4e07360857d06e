"""The ensemble's search-error table counts the same sentences for every model: the rates of
``lab.analyze`` over the sentence ids that all analyses share, whatever else each covers."""

from __future__ import annotations

import pandas as pd
import pytest

from lab.rebuild.ensemble_errors import common_rates


def _rows(model: str, hyp: list[float], exact: list[float], ids: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run": model,
            "id": [f"s-{i}" for i in ids],
            "hyp_logprob": hyp,
            "exact_logprob": exact,
            "ref_logprob": [-50.0] * len(ids),
            "proved_optimal": True,
            "hyp_length": 5,
            "exact_length": [1 if e == -0.5 else 4 for e in exact],
            "ref_length": 6,
            "exact_is_ref": False,
        }
    )


def test_rates_are_over_the_shared_sentences_only() -> None:
    seed = _rows("seed", [-3.0, -2.0, -9.0, -9.0], [-2.0, -2.0, -1.0, -1.0], [0, 1, 2, 3])
    ensemble = _rows("ens", [-4.0, -4.0], [-4.0, -0.5], [0, 1])  # exact on the first 2 only
    table = common_rates({"seed": seed, "ensemble": ensemble}).set_index("model")
    assert list(table["n"]) == [2, 2]
    # seed: sentence 0 has a search error (exact -2 above -3), sentence 1 none
    assert table.loc["seed", "search_error"] == pytest.approx(0.5)
    assert table.loc["seed", "mean_hyp_logprob"] == pytest.approx(-2.5)
    # ensemble: sentence 1's mode is EOS alone and scores above the output
    assert table.loc["ensemble", "search_error"] == pytest.approx(0.5)
    assert table.loc["ensemble", "empty_mode"] == pytest.approx(0.5)
    assert table.loc["ensemble", "model_error"] == pytest.approx(1.0)
