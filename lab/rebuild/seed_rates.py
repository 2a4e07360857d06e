"""Search-error rates over seeds: the ``lab analyze`` rates of each seed's Transformer pooled
into one table (mean ± std over the seeds, n), for the beams every seed ran and for the mode.

Each seed's rates are its own ``analysis_rates.csv`` (rebuilt from its per-sentence file
first); a rate is a share of that seed's sentences, so the spread is between models trained
with different seeds on the same 1000 sentences.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lab.io import atomic_write_text
from lab.report.render import Table

SEED_DIRS = {0: "search_errors", 1: "search_errors/seeds/seed1", 2: "search_errors/seeds/seed2"}
OUT = "search_errors/seeds"
BEAM_COLS = ("search_error", "ref_above_hyp", "model_error", "bleu", "len_ratio")
MODE_COLS = ("exact_proved", "empty_mode", "exact_bleu", "exact_len_ratio")


def _cell(values: pd.Series, digits: int) -> str:
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f} (n={len(values)})"


def _digits(column: str) -> int:
    return 2 if "bleu" in column else 3


def pooled(rates: dict[int, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per beam size that every seed ran, one row for the mode), as formatted cells."""
    beams = sorted(set.intersection(*(set(r["beam_size"]) for r in rates.values())))
    rows = []
    for beam in beams:
        at = pd.DataFrame([r[r["beam_size"] == beam].iloc[0] for r in rates.values()])
        rows.append({"beam": beam, **{c: _cell(at[c], _digits(c)) for c in BEAM_COLS}})
    first = pd.DataFrame([r.iloc[0] for r in rates.values()])  # the mode: the same in each row
    mode = {"search": "exact", **{c: _cell(first[c], _digits(c)) for c in MODE_COLS}}
    return pd.DataFrame(rows), pd.DataFrame([mode])


def rates_over_seeds(out: Path) -> list[Path]:
    """``search_errors/seeds/rates_over_seeds.{md,csv}`` from the seeds' rebuilt rates in
    ``out``; nothing when a seed's analysis is missing."""
    paths = {s: out / d / "analysis_rates.csv" for s, d in SEED_DIRS.items()}
    if not all(p.is_file() for p in paths.values()):
        return []
    beams, mode = pooled({s: pd.read_csv(p) for s, p in paths.items()})
    seeds = ", ".join(str(s) for s in SEED_DIRS)
    caption = f"search-error rates over seeds {seeds} (mean ± std, n=seeds): beams"
    beam_t = Table(beams, BEAM_COLS, caption, counts=("beam",))
    mode_t = Table(mode, MODE_COLS, f"the mode (exact search) over seeds {seeds}")
    text = f"{beam_t.markdown()}\n\n{mode_t.markdown()}\n"
    target = out / OUT
    target.mkdir(parents=True, exist_ok=True)
    csv = pd.concat([beams, mode], ignore_index=True)
    return [
        atomic_write_text(target / "rates_over_seeds.md", text),
        atomic_write_text(target / "rates_over_seeds.csv", csv.to_csv(index=False)),
    ]
