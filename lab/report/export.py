"""Export a run as plain text files that the sacreBLEU command line rescores.

``hyp.txt`` holds one hypothesis per line and ``ref.txt`` the first reference of each example,
in the order of ``predictions.jsonl``; with several references per example, ``ref2.txt``,
``ref3.txt``... hold the second, third... so that ``sacrebleu ref.txt ref2.txt -i hyp.txt``
gives the ``bleu`` of ``results.json``. Two things keep the files faithful to the run's scores:

* an example with fewer references than the others repeats its first one in the files it has
  no reference for: a repeated reference changes neither BLEU (the closest reference length,
  the most matches of an n-gram in any reference) nor chrF (the best-matching reference),
  whereas a blank line would be an empty reference (TER, which averages the references'
  lengths, can change);
* a line break inside a text (which would shift every later line) becomes a space, which
  sacreBLEU's default tokenizers treat alike.

Both are said in a ``ReportNote``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lab.errors import LabError
from lab.io import atomic_write_text
from lab.report.notes import note
from lab.report.predictions import Prediction, read_run
from lab.results import PREDICTIONS, load_results

_BREAK = re.compile(r"\r\n|\r|\n")


def ref_file(j: int) -> str:
    """The name of the file of the ``j``-th reference (0-based): ``ref.txt``, ``ref2.txt``..."""
    return "ref.txt" if j == 0 else f"ref{j + 1}.txt"


def _lines(texts: list[str]) -> tuple[str, int]:
    """``texts`` as the text of a file, one per line, and how many held a line break."""
    broken = sum(bool(_BREAK.search(t)) for t in texts)
    return "".join(_BREAK.sub(" ", t) + "\n" for t in texts), broken


def _streams(preds: list[Prediction]) -> tuple[list[list[str]], int]:
    """The reference streams, padded with each example's first reference, and how many
    examples needed padding."""
    width = max(len(p.refs) for p in preds)
    streams = [[p.refs[j] if j < len(p.refs) else p.refs[0] for p in preds] for j in range(width)]
    return streams, sum(len(p.refs) < width for p in preds)


def check_completed(run_dir: Path) -> None:
    """Refuse a run whose ``results.json`` is not ``completed``: a ``predictions.jsonl`` beside
    a failed or interrupted run is left from an earlier run, not this one's output."""
    try:
        status = load_results(run_dir).get("status")
    except (OSError, ValueError):
        return  # no results.json: read_run says what is missing
    if status != "completed":
        raise LabError(
            f"{run_dir} holds a {status} run; its {PREDICTIONS} is not that run's output. "
            "Rerun it (force=true) and export it once it completes."
        )


def export_run(
    run_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
) -> list[Path]:
    """Write ``hyp.txt`` and ``ref.txt`` (``ref2.txt``...) of ``run_dir`` into ``out``
    (default ``<run_dir>/export``); returns the written paths, ``hyp.txt`` first.

    Raises ``LabError`` when ``run_dir`` holds no usable ``predictions.jsonl``.
    """
    check_completed(Path(run_dir))
    preds = read_run(run_dir)
    out = Path(out) if out is not None else Path(run_dir) / "export"
    streams, padded = _streams(preds)
    files = {"hyp.txt": [p.hyp for p in preds]}
    files |= {ref_file(j): stream for j, stream in enumerate(streams)}
    written, broken = [], 0
    for name, texts in files.items():
        text, n = _lines(texts)
        broken += n
        written.append(atomic_write_text(out / name, text))
    if padded:
        note(
            f"{padded} of {len(preds)} examples have fewer than {len(streams)} references; "
            "their missing lines repeat their first reference (BLEU and chrF are unchanged)"
        )
    if broken:
        note(f"{broken} texts held line breaks, written as spaces to keep one example a line")
    return written
