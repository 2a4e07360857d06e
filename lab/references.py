"""The references' scores beside every output: the forced-decoding log-probability of each
example's best reference (``ref_logprob``, ``ref_length``), and, for a model whose search
objective is not its log-probability (LM fusion: a ``ReportingModel``), the parts that model
reports for an output, reported for that reference too (``ref_fused_logprob``...).

Comparing the mode's score with the reference's tells a model error from a search error
(Stahlberg & Byrne, 2019); under fusion the comparison that matters is of fused scores, so the
reference needs its fused score as the outputs have theirs (``lab analyze --score``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from lab.data import Pair, pad
from lab.models.base import DecoderModel
from lab.search.contracts import ReportingModel
from lab.search.types import Cost, Hypothesis, SearchOutput
from lab.target_ids import target_encoder
from lab.tasks.base import Example

Best = tuple[float, int, tuple[int, ...]]  # score, length (EOS included), tokens


def reference_scores(
    model: DecoderModel,
    examples: Sequence[Example],
    pairs: Sequence[Pair],
    tokenizer,
    batch_size: int,
    device: torch.device,
) -> dict[int, Best] | None:
    """The forced-decoding log-probability (natural log, EOS included, as a hypothesis'
    ``logprob``), length in tokens (EOS included) and tokens of each example's best reference,
    by pair index; None when the references cannot be tokenized for this model.

    One ``model.score`` call per ``batch_size`` references, sorted by length; a reference
    longer than the model's positions is left out (so is an example left without one).
    """
    eos, limit = getattr(tokenizer, "eos_id", model.eos_id), model.max_positions
    rows: list[tuple[Pair, tuple[int, ...]]] = []
    try:
        encode = target_encoder(tokenizer)
        for p in pairs:
            for ref in examples[p.index].refs:
                tgt = (*encode(ref), eos)
                if limit is None or len(tgt) <= limit:
                    rows.append((p, tgt))
    except (AttributeError, NotImplementedError, TypeError, ValueError):
        return None
    rows.sort(key=lambda r: (len(r[0].src), len(r[1])))
    best: dict[int, Best] = {}
    with torch.inference_mode():
        for i in range(0, len(rows), batch_size):
            chunk = rows[i : i + batch_size]
            src, src_len = pad([p.src for p, _ in chunk])  # (B, S), (B,)
            tgt, tgt_len = pad([t for _, t in chunk])  # (B, T), (B,)
            dev = [x.to(device) for x in (src, src_len, tgt, tgt_len)]
            scores = model.score(*dev).tolist()  # (B,)
            for (p, t), s in zip(chunk, scores, strict=True):
                if math.isfinite(s) and (p.index not in best or s > best[p.index][0]):
                    best[p.index] = (s, len(t), t)
    return best


def reference_rows(
    model: DecoderModel,
    examples: Sequence[Example],
    pairs: Sequence[Pair],
    tokenizer,
    batch_size: int,
    device: torch.device,
) -> dict[int, dict[str, Any]]:
    """By pair index, what a prediction row says of its reference: ``ref_logprob`` and
    ``ref_length`` (None where no reference could be scored), and ``ref_<part>`` for each part
    a ``ReportingModel`` reports. Empty when the references cannot be tokenized."""
    best = reference_scores(model, examples, pairs, tokenizer, batch_size, device)
    if best is None:
        return {}
    none: dict[str, Any] = {"ref_logprob": None, "ref_length": None}
    rows = {
        p.index: dict(none if p.index not in best else zip(none, best[p.index][:2], strict=True))
        for p in pairs
    }
    if isinstance(model, ReportingModel):
        for index, parts in _reported(model, pairs, best, batch_size, device).items():
            rows[index].update({f"ref_{k}": v for k, v in parts.items()})
    return rows


def _reported(
    model: ReportingModel,
    pairs: Sequence[Pair],
    best: dict[int, Best],
    batch_size: int,
    device: torch.device,
) -> dict[int, dict[str, float]]:
    """The parts ``model.report`` gives each best reference, as it gives an output's."""
    scored = [p for p in pairs if p.index in best]
    out: dict[int, dict[str, float]] = {}
    for i in range(0, len(scored), batch_size):
        chunk = scored[i : i + batch_size]
        src, src_len = pad([p.src for p in chunk])  # (B, S), (B,)
        nbest = []
        for p in chunk:
            score, length, tokens = best[p.index]
            nbest.append([Hypothesis(tokens, score, score, length, True)])
        reported = model.report(SearchOutput(nbest, Cost()), src.to(device), src_len.to(device))
        for p, (hyp,) in zip(chunk, reported.nbest, strict=True):
            out[p.index] = {k: float(v) for k, v in (hyp.info or {}).items()}
    return out
