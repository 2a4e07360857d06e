"""Per-sentence data of runs for the dashboard's drill-down: texts, log-probs and scores (and
alignments, where the run saved its attention: ``lab.report.alignments``).

The dashboard compares two runs sentence by sentence. Sources and references are the same for
every run of one split, so they are kept once (a ``SentenceTable``) and each run keeps only its
hypotheses, log-probs and sentence scores, with the index of each sentence in that table; any
pair of runs is then matched in the page without embedding each pair. A sentence is known by
its example id and references, so runs of different tasks never share one by accident.

Scores are sacreBLEU's sentence BLEU (``effective_order=True``, as ``sentence_bleu``) and
sentence chrF (``sentence_chrf``), computed here once per run. A run without a usable
``predictions.jsonl`` gets a reason instead of data, and the page says it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from sacrebleu.metrics import BLEU, CHRF

from lab.report.alignments import MAX_PER_RUN, Alignment, alignment_of
from lab.results import PREDICTIONS, read_predictions

DIGITS = 2  # sentence scores are shown to two decimals; more only bloats the page
LOGPROB_DIGITS = 3


@dataclass
class SentenceTable:
    """Every distinct sentence of the reported runs: id, source and references, in order."""

    ids: list[str] = field(default_factory=list)
    src: list[str] = field(default_factory=list)
    refs: list[list[str]] = field(default_factory=list)
    _index: dict[tuple[str, tuple[str, ...]], int] = field(default_factory=dict, repr=False)

    def add(self, example_id: str, src: str, refs: tuple[str, ...]) -> int:
        """The index of this sentence, added when new."""
        key = (example_id, refs)
        if key not in self._index:
            self._index[key] = len(self.ids)
            self.ids.append(example_id)
            self.src.append(src)
            self.refs.append(list(refs))
        return self._index[key]

    def as_json(self) -> dict[str, Any]:
        return {"id": self.ids, "src": self.src, "ref": self.refs}


@dataclass(frozen=True)
class RunSentences:
    """One run's sentences: indices into the ``SentenceTable`` and the values for each."""

    idx: list[int]
    hyp: list[str]
    logprob: list[float | None]
    bleu: list[float]
    chrf: list[float]
    total: int  # sentences in the run's predictions, before the cap
    alignments: dict[int, Alignment] = field(default_factory=dict)  # by position in ``idx``

    def as_json(self) -> dict[str, Any]:
        return {
            "idx": self.idx,
            "hyp": self.hyp,
            "logprob": self.logprob,
            "bleu": self.bleu,
            "chrf": self.chrf,
            "total": self.total,
        }


_BLEU, _CHRF = BLEU(effective_order=True), CHRF()


@lru_cache(maxsize=1 << 16)
def sentence_scores(hyp: str, refs: tuple[str, ...]) -> tuple[float, float]:
    """Sentence BLEU and chrF of ``hyp``, rounded; cached, since the runs of a sweep mostly
    share their outputs."""
    bleu = _BLEU.sentence_score(hyp, list(refs)).score
    chrf = _CHRF.sentence_score(hyp, list(refs)).score
    return round(bleu, DIGITS), round(chrf, DIGITS)


def _logprob(row: dict[str, Any]) -> float | None:
    value = row.get("logprob")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return round(float(value), LOGPROB_DIGITS)


def _refs(row: dict[str, Any]) -> tuple[str, ...]:
    ref = row["ref"]
    return tuple(str(r) for r in ref) if isinstance(ref, list) else (str(ref),)


def read_sentences(run_dir: Path, table: SentenceTable, limit: int | None) -> RunSentences | str:
    """The first ``limit`` sentences (all with ``None``) of ``run_dir``, their sources and
    references added to ``table``; a one-line reason instead when the run has none to show."""
    if limit == 0:
        return "sentences left out of this page (--max-sentences 0)"
    path = Path(run_dir) / PREDICTIONS
    if not path.is_file():
        return f"no {PREDICTIONS} in this run directory"
    try:
        rows = read_predictions(Path(run_dir))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"cannot read {PREDICTIONS} ({exc})"
    usable = [r for r in rows if isinstance(r, dict) and {"id", "hyp", "ref"} <= r.keys()]
    if not usable:
        return f"{PREDICTIONS} holds no row with id, hyp and ref"
    shown = usable if limit is None else usable[:limit]
    out = RunSentences([], [], [], [], [], total=len(usable))
    for row in shown:
        refs, hyp = _refs(row), str(row["hyp"])
        bleu, chrf = sentence_scores(hyp, refs)
        out.idx.append(table.add(str(row["id"]), str(row.get("src") or ""), refs))
        out.hyp.append(hyp)
        out.logprob.append(_logprob(row))
        out.bleu.append(bleu)
        out.chrf.append(chrf)
        alignment = alignment_of(row)
        if alignment is not None and len(out.alignments) < MAX_PER_RUN:
            out.alignments[len(out.idx) - 1] = alignment
    return out
