"""Per-example statistics of the question-answering metrics, for the paired bootstrap.

SQuAD's EM and F1 and bAbI's accuracy are means over examples (x 100), so an example's
sufficient statistics are its value and a count of one: the row ``[value, 1]``. Summed over a
resample (``lab.report.bootstrap``) the rows give (sum of values, examples drawn), whose ratio
x 100 is the resample's score; ``MeanMetric`` scores them in the interface of a sacreBLEU
metric, so EM, F1 and accuracy get the very resamples, CI rule, p-value and difference CI that
BLEU gets. Each value is the lab's own metric of one example (``lab.metrics.qa``): ``em`` and
``f1`` the maximum over the gold answers (the ``squad`` metric), ``accuracy`` 1 when the answer
equals any reference, 0 otherwise.

Which accuracy: bAbI's ``babi`` metric compares answers as sets of comma-separated items, its
``babi_ordered`` metric (task 19, path finding) in order. The rule is the task's own: a run of
the ``babi`` task whose ``task_id`` is in ``lab.tasks.babi.ORDERED_ANSWERS`` compares in
order, every other run as sets. The statistics record which (``qa.answers``), and the
signature says it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lab.metrics.qa import answer_items, answer_set, squad_em, squad_f1
from lab.report.predictions import Prediction
from lab.tasks.babi import ORDERED_ANSWERS

QA_METRICS = ("em", "f1", "accuracy")  # the per-example means a paired test can resample


def qa_metrics(metrics: Mapping[str, Any]) -> tuple[str, ...]:
    """The QA metrics a run is tested on, from its ``results.json`` ``metrics``: ``em`` and
    ``f1`` where it reports ``f1`` (the ``squad`` metric), ``accuracy`` where it reports
    ``accuracy`` and no ``bleu`` (``babi``); none for a translation run."""
    names = ["em", "f1"] if "f1" in metrics else []
    if "accuracy" in metrics and "bleu" not in metrics:
        names.append("accuracy")
    return tuple(names)


def ordered_answers(results: Mapping[str, Any]) -> bool:
    """True for a run (its ``results.json``) of the bAbI task whose answers are ordered."""
    config = results.get("config") if isinstance(results.get("config"), Mapping) else {}
    task = config.get("task") if isinstance(config.get("task"), Mapping) else {}
    name = results.get("task") if isinstance(results.get("task"), str) else task.get("name")
    return name == "babi" and task.get("task_id", 1) in ORDERED_ANSWERS


def _value(name: str, pred: Prediction, ordered: bool) -> float:
    """One example's ``em``, ``f1`` or ``accuracy`` (0 to 1), as the lab's metrics score it."""
    if name == "em":
        return max(squad_em(pred.hyp, gold) for gold in pred.refs)
    if name == "f1":
        return max(squad_f1(pred.hyp, gold) for gold in pred.refs)
    key = answer_items if ordered else answer_set
    return float(any(key(pred.hyp) == key(ref) for ref in pred.refs))


def qa_stats(preds: Sequence[Prediction], results: Mapping[str, Any]) -> dict[str, Any]:
    """The QA statistics of ``preds``, a run with ``results`` (its ``results.json``): per
    tested metric a ``[value, 1]`` row per example (whole numbers for ``em`` and ``accuracy``),
    and ``qa``: the references per example (``var`` where it varies) and how answers compare.
    Empty for a translation run."""
    metrics = results.get("metrics") if isinstance(results.get("metrics"), Mapping) else {}
    names = qa_metrics(metrics)
    if not names:
        return {}
    ordered = ordered_answers(results)
    out: dict[str, Any] = {}
    for name in names:
        values = [_value(name, p, ordered) for p in preds]
        out[name] = [[v if name == "f1" else int(v), 1] for v in values]
    counts = {len(p.refs) for p in preds}
    out["qa"] = {
        "nrefs": counts.pop() if len(counts) == 1 else "var",
        "answers": "ordered" if ordered else "set",
    }
    return out


@dataclass(frozen=True)
class MeanScore:
    """The score of summed ``[value, 1]`` rows: 100 x their mean."""

    score: float


class MeanSignature:
    """A signature in sacreBLEU's style (``key:value`` joined by ``|``, unset values left out)
    for a mean metric: what it is, then its settings (sacreBLEU's order: ``nrefs``, the
    bootstrap's ``bs`` and ``seed`` that ``update`` sets, then the metric's own)."""

    def __init__(self, name: str, info: dict[str, Any]) -> None:
        self.name = name
        self.info = dict(info)

    def update(self, key: str, value: Any) -> None:
        self.info[key] = value

    def __str__(self) -> str:
        pairs = [f"{k}:{v}" for k, v in self.info.items() if v is not None]
        return "|".join([self.name, "bootstrap-mean", *pairs])


class MeanMetric:
    """A per-example mean (x 100) in the interface ``lab.report.bootstrap.paired_test`` uses
    of a sacreBLEU metric: a score from summed statistics, and a signature."""

    def __init__(self, name: str, qa: Mapping[str, Any]) -> None:
        self.name = name
        self.info: dict[str, Any] = {"nrefs": qa.get("nrefs", "var"), "bs": None, "seed": None}
        if name == "accuracy":
            self.info["answers"] = qa.get("answers", "set")
        else:
            self.info["norm"] = "squad-v1.1"  # lab.metrics.qa.normalize_answer

    def _compute_score_from_stats(self, stats: Sequence[float]) -> MeanScore:
        """100 x sum / count of a resample's summed ``[value, 1]`` rows."""
        total, count = stats
        return MeanScore(100.0 * float(total) / float(count))

    def get_signature(self) -> MeanSignature:
        return MeanSignature(self.name, self.info)
