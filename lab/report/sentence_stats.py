"""A run's per-sentence sufficient statistics of BLEU and chrF (and, for a question-answering
run, of EM, F1 and accuracy): what a paired test needs of it.

sacreBLEU scores a corpus from per-sentence counts (BLEU: n-gram matches and totals, lengths;
chrF: character and word n-gram counts). Kept per sentence with the example ids, they let
``lab report --baseline`` resample a run without its text, so a committed run summary
(``results.json`` + ``sentence_stats.json.gz``, about 25 kB for 1,000 sentences, no text of
the data) supports the same intervals as the full predictions. ``lab report`` reads this file
where a run directory has no ``predictions.jsonl``; ``python -m lab.rebuild.add --stats``
writes it beside the summary it adds to a report.

A question-answering run (its ``results.json`` reports ``f1`` or, without ``bleu``,
``accuracy``) also gets ``[value, 1]`` rows per example of the metrics it is tested on and
their ``qa`` settings (``lab.report.qa_stats``); a translation run's file is as it always was.
Older files of QA runs lack those rows, and a test that needs them names the command that
rewrites them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.metrics.base import Metric

from lab.errors import LabError
from lab.io import atomic_write_bytes
from lab.metrics.translation import periods_set_apart, ref_streams
from lab.report.predictions import Prediction, read_run
from lab.report.qa_stats import QA_METRICS, qa_stats
from lab.results import load_results

STATS = "sentence_stats.json.gz"
FORMAT = 1


def metrics(nrefs: int | None = None) -> dict[str, Metric]:
    """The metrics a paired test scores, with sacreBLEU's defaults: column name -> metric.
    (``force``: the tokenized-period check is the report's, said once, not per resample.)
    ``nrefs``: the references per sentence of statistics computed before, which sacreBLEU's
    signature names."""
    out: dict[str, Metric] = {"bleu": BLEU(force=True), "chrf": CHRF()}
    if nrefs is not None:
        for metric in out.values():
            metric.num_refs = nrefs
    return out


def sentence_stats(
    preds: list[Prediction], results: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The statistics of ``preds``: ids, per metric a row of counts per sentence, the
    references' fingerprints and number, and what the tokenized-period check needs
    (``tokenized_periods``: outputs ending in `` .``; ``periods_set_apart``: the references'
    own convention); with ``results`` (the run's ``results.json``) of a question-answering run,
    the rows of its QA metrics too."""
    hyps = [p.hyp for p in preds]
    refs = [list(p.refs) for p in preds]
    streams = ref_streams(refs)
    out: dict[str, Any] = {"format": FORMAT, "ids": [p.id for p in preds]}
    for name, metric in metrics().items():
        rows = metric._extract_corpus_statistics(hyps, streams)
        out[name] = [[int(v) for v in row] for row in rows]
    out["refs"] = [_digest(r) for r in refs]
    out["nrefs"] = metric.num_refs  # sacreBLEU's count (-1: it varies), for the signatures
    out["tokenized_periods"] = sum(h.endswith(" .") for h in hyps)
    out["periods_set_apart"] = periods_set_apart(refs)
    return out | qa_stats(preds, results or {})


def _digest(refs: list[str]) -> str:
    """A short fingerprint of one example's references: runs are compared on equal ones."""
    return hashlib.sha1("\n".join(refs).encode("utf-8")).hexdigest()[:12]


def write_stats(run_dir: str | Path, dest: str | Path) -> Path:
    """Write ``sentence_stats.json.gz`` of the run in ``run_dir`` into the directory ``dest``
    (gzip without a time stamp: the same run gives the same bytes); returns its path."""
    stats = sentence_stats(read_run(run_dir), run_results(run_dir))
    data = json.dumps(stats, separators=(",", ":")) + "\n"
    packed = gzip.compress(data.encode("utf-8"), compresslevel=9, mtime=0)
    return atomic_write_bytes(Path(dest) / STATS, packed)


def read_stats(run_dir: str | Path) -> dict[str, Any]:
    """The statistics of ``run_dir``: its ``sentence_stats.json``, else computed from its
    ``predictions.jsonl``; ``LabError`` naming the fix when it has neither."""
    path = Path(run_dir) / STATS
    if not path.is_file():
        return sentence_stats(read_run(run_dir), run_results(run_dir))
    try:
        data = json.loads(gzip.decompress(path.read_bytes()).decode("utf-8"))
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabError(
            f"cannot read {path} ({exc}); rewrite it with `{_COMMAND} RUN_DIR`."
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise LabError(f"{path} is not format {FORMAT}; rewrite it with `{_COMMAND} RUN_DIR`.")
    return data


def run_results(run_dir: str | Path) -> dict[str, Any]:
    """The run's ``results.json`` (empty when it has none: its statistics are BLEU's and
    chrF's only)."""
    try:
        return load_results(Path(run_dir))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}


def aligned(
    stats: dict[str, Any], base: dict[str, Any], name: str, run: Path, base_run: Path
) -> np.ndarray:
    """``stats``' rows of metric ``name`` in ``base``'s order of ids: (n, k) integers, or
    floats for the QA metrics (``[value, 1]`` rows; F1's values are fractions).

    Raises ``LabError`` unless both runs decoded the same examples with the same references.
    """
    for data, path in ((stats, run), (base, base_run)):
        if name not in data:
            raise LabError(
                f"{path / STATS} has no {name} statistics (written before they were kept); "
                f"rewrite it with `{_COMMAND} RUN_DIR`."
            )
    index = {str(i): k for k, i in enumerate(stats["ids"])}
    unmatched = sorted({str(i) for i in base["ids"]}.symmetric_difference(index))
    if unmatched:
        raise LabError(
            f"{run} and its baseline {base_run} decoded different examples ({len(unmatched)} "
            f"ids in only one of them, e.g. {unmatched[0]!r}); compare runs of the same "
            "eval.split and eval.limit."
        )
    order = [index[str(i)] for i in base["ids"]]
    for j, (i, k) in enumerate(zip(base["ids"], order, strict=True)):
        if stats["refs"][k] != base["refs"][j]:
            raise LabError(
                f"{run} and its baseline {base_run} have different references for example "
                f"{i!r}; compare runs of the same task and split."
            )
    dtype = np.float64 if name in QA_METRICS else np.int64
    return np.array([stats[name][k] for k in order], dtype=dtype)


_COMMAND = "python -m lab.rebuild.add --stats"
