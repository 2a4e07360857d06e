"""``--baseline key=value``: the run that every other run of its group is compared with.

The baseline keys must be keys of the pivot (rows or columns). A group is one combination of
the pivot's other keys: with ``--rows model --cols search --baseline search=beam``, each
model's runs are compared with that model's ``search=beam`` run. Paired tests compare single
runs, so every cell must hold one run (seeds apart: add ``seed`` to the rows or columns), and
every group must hold exactly one baseline run; anything else is a one-line ``LabError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from lab.errors import LabError
from lab.report.checks import check_keys
from lab.report.pooling import describe, groups
from lab.report.render import fmt_key
from lab.report.settings import SEED_KEYS


@dataclass(frozen=True)
class Baseline:
    """The ``key=value`` pairs (one or more, comma-separated) that select a baseline run."""

    pairs: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, text: str) -> Baseline:
        """``search=beam`` or ``search=beam,search.beam_size=5``; ``LabError`` otherwise."""
        pairs = []
        for item in (p.strip() for p in text.split(",")):
            key, sep, value = item.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise LabError(
                    f"--baseline takes key=value pairs such as search=beam, not '{text}'."
                )
            pairs.append((key.strip(), value.strip()))
        return cls(tuple(pairs))

    @property
    def keys(self) -> list[str]:
        """The baseline's keys, in the order given."""
        return [key for key, _ in self.pairs]

    def __str__(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.pairs)

    def matches(self, df: pd.DataFrame) -> pd.Series:
        """Which rows of ``df`` are baseline runs (values compared as shown in tables)."""
        hit = pd.Series(True, index=df.index)
        for key, value in self.pairs:
            want = value.lower()
            hit &= pd.Series([_same(v, want) for v in df[key]], index=df.index)
        return hit


def _same(value: object, want: str) -> bool:
    return want in (fmt_key(value).lower(), str(value).lower())


def check_baseline(df: pd.DataFrame, baseline: Baseline, pivot_keys: Sequence[str]) -> None:
    """Raise ``LabError`` for an unknown key, a key outside the pivot, or a value no run has."""
    check_keys(df, baseline.keys, "baseline key")
    for key, value in baseline.pairs:
        if key not in pivot_keys:
            raise LabError(
                f"baseline key '{key}' is not a key of the pivot; add it to --rows or --cols "
                f"(keys now: {', '.join(pivot_keys) or 'none'})."
            )
        taken = sorted({fmt_key(v) for v in df[key]})
        if value.lower() not in {t.lower() for t in taken} | {str(v).lower() for v in df[key]}:
            raise LabError(
                f"--baseline {key}={value} matches no run; {key} takes: {', '.join(taken)}."
            )


def _seeds(rows: pd.DataFrame) -> str:
    seed = next((c for c in SEED_KEYS if c in rows.columns), None)
    return f" (seeds {', '.join(fmt_key(s) for s in rows[seed])})" if seed else ""


def _check_single_runs(df: pd.DataFrame, pivot_keys: Sequence[str]) -> None:
    for values, rows in groups(df, pivot_keys):
        if len(rows) > 1:
            raise LabError(
                f"paired tests compare single runs, but the cell {describe(pivot_keys, values)} "
                f"holds {len(rows)} runs{_seeds(rows)}; add seed to --rows or --cols."
            )


def baseline_groups(
    df: pd.DataFrame, baseline: Baseline, pivot_keys: Sequence[str]
) -> list[tuple[str, pd.Series, pd.DataFrame]]:
    """Per group: (its ``key=value`` text, the baseline run, the other runs), in table order.

    Raises ``LabError`` (see ``check_baseline``) when a group has no baseline run or several,
    or when a cell holds several runs.
    """
    check_baseline(df, baseline, pivot_keys)
    group_keys = [k for k in pivot_keys if k not in baseline.keys]
    found = []
    for values, rows in groups(df, group_keys):
        where = describe(group_keys, values)
        at = f" where {where}" if group_keys else ""
        base = rows[baseline.matches(rows)]
        if base.empty:
            present = "; ".join(
                f"{k} there: {', '.join(sorted({fmt_key(v) for v in rows[k]}))}"
                for k in baseline.keys
            )
            raise LabError(
                f"--baseline {baseline} matches no run{at} ({present}); choose a "
                "baseline that every group has, or leave the other runs out of the report."
            )
        if len(base) > 1:
            raise LabError(
                f"--baseline {baseline} matches {len(base)} runs{at}{_seeds(base)}; "
                "add seed to --rows or --cols so that each cell holds one run."
            )
        found.append((where, base.iloc[0], rows[~baseline.matches(rows)]))
    _check_single_runs(df, pivot_keys)
    return found
