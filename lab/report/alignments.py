"""The dashboard's per-sentence alignment view: each output's cross-attention as a heatmap.

A run decoded with ``eval.save_attention=true`` has, in each row of its ``predictions.jsonl``,
``attention``: the source and output pieces and the weights (output tokens x source tokens,
``lab.alignment``). Each becomes a small table, one cell per (output, source) token whose
shade is the weight (HTML and CSS only), inside a ``<details>`` the drill-down shows under
that run's hypothesis; the page has no such view for runs without the data.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

MAX_PER_RUN = 200  # alignments shown per run (the first sentences); each is a table


@dataclass(frozen=True)
class Alignment:
    """Source pieces ``src`` (S), output pieces ``tgt`` (T) and ``weights`` (T rows of S)."""

    src: list[str]
    tgt: list[str]
    weights: list[list[float]]


def alignment_of(row: dict[str, Any]) -> Alignment | None:
    """The row's ``attention`` as an ``Alignment``; None when absent or not a T x S matrix of
    finite numbers (a hand-edited or truncated file shows no view rather than a broken one)."""
    value = row.get("attention")
    if not isinstance(value, dict):
        return None
    src, tgt, weights = value.get("src"), value.get("tgt"), value.get("weights")
    if not (isinstance(src, list) and isinstance(tgt, list) and isinstance(weights, list)):
        return None
    if len(weights) != len(tgt) or any(
        not isinstance(r, list) or len(r) != len(src) or not all(_finite(w) for w in r)
        for r in weights
    ):
        return None
    return Alignment([str(s) for s in src], [str(t) for t in tgt], weights)


def _finite(w: Any) -> bool:
    return isinstance(w, int | float) and not isinstance(w, bool) and math.isfinite(w)


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def heatmap(a: Alignment) -> str:
    """The alignment as a table: source pieces across, output pieces down, each cell shaded
    by its weight (clipped to [0, 1]) and titled with it."""
    head = "".join(f"<th class='src'><span>{_esc(s)}</span></th>" for s in a.src)
    rows = []
    for tok, ws in zip(a.tgt, a.weights, strict=True):
        cells = "".join(
            f"<td style='background:rgba(9,105,218,{min(max(w, 0.0), 1.0):.2f})'"
            f" title='{_esc(tok)} / {_esc(s)}: {w:.3f}'></td>"
            for s, w in zip(a.src, ws, strict=True)
        )
        rows.append(f"<tr><th>{_esc(tok)}</th>{cells}</tr>")
    return f"<table class='align'><tr><th></th>{head}</tr>{''.join(rows)}</table>"


def alignment_id(run: int, k: int) -> str:
    """The element id of run ``run``'s alignment of its ``k``-th shown sentence (the page's
    script finds it by the same rule)."""
    return f"align-{run}-{k}"


def alignment_section(views: list[tuple[int, str, int, str, Alignment]]) -> str:
    """The page's alignments: ``(run index, run name, k, example id, alignment)`` each; "" when
    no run has any, so a page without the data has no such section."""
    if not views:
        return ""
    items = "".join(
        f"<details class='alignment' id='{alignment_id(run, k)}'>"
        f"<summary>alignment: {_esc(name)}, {_esc(ex_id)}</summary>{heatmap(a)}</details>"
        for run, name, k, ex_id, a in views
    )
    return (
        "<section id='alignment-section'><h2>alignments</h2><p class='caption'>Cross-attention"
        " of each output token (rows) over the source tokens (columns), saved with"
        " eval.save_attention=true; darker is more. The comparison above shows each under its"
        f" hypothesis.</p>{items}</section>"
    )
