"""The ensemble's search errors beside its members': ``multimodel/ensemble_search_errors.*``.

Each model's ``lab analyze`` of its beam-5 run against its exact search is committed under
``multimodel/search_errors/<model>/`` (the seeds' exact searches cover all 1000 test
sentences, the ensemble's the first 200: exact search costs three models' steps there). The
rates are recomputed (``lab.analyze.rates``) over the sentences every analysis covers, so the
four rows count the same sentences; exact search is batch-invariant, so a seed's rates on
those sentences are what an exact run limited to them would give.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lab.analyze import RATES
from lab.io import atomic_write_text
from lab.rebuild.derived import rate_rows
from lab.report.render import Table

SECTION = "multimodel/search_errors"
MODELS = ("seed0", "seed1", "seed2", "ensemble")
OUT = "multimodel/ensemble_search_errors"
LOGPROBS = ("hyp_logprob", "exact_logprob")


def common_rates(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per model: its rates and mean log-probs over the sentence ids all share."""
    ids = set.intersection(*(set(f["id"]) for f in frames.values()))
    rows = []
    for model, frame in frames.items():
        sub = frame[frame["id"].isin(ids)]
        (found,) = rate_rows(sub).to_dict("records")  # one run per analysis
        means = {f"mean_{c}": sub[c].mean() for c in LOGPROBS}
        rows.append({"model": model, **{k: v for k, v in found.items() if k != "run"}, **means})
    return pd.DataFrame(rows)


def ensemble_errors(root: Path, out: Path) -> list[Path]:
    """``ensemble_search_errors.{md,csv}`` from the committed per-sentence analyses."""
    frames = {m: pd.read_csv(root / SECTION / m / "analysis_sentences.csv") for m in MODELS}
    table = common_rates(frames)
    n = int(table["n"].iloc[0])
    caption = (
        f"beam 5 against exact search, each model on the same {n} test2016 sentences: the share "
        "of sentences with a search error (exact scores above the output), a model error (the "
        "mode scores above the reference), an empty mode, the reference above the output"
    )
    cols = [*RATES, "mean_hyp_logprob", "mean_exact_logprob"]
    t = Table(table, cols, caption, counts=("n", "n_proved", "hyp_above_exact"))
    target = out / OUT
    target.parent.mkdir(parents=True, exist_ok=True)
    return [
        atomic_write_text(target.with_suffix(".md"), t.markdown() + "\n"),
        atomic_write_text(target.with_suffix(".csv"), t.csv()),
    ]
