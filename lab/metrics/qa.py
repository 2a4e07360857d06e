"""Question-answering metrics: SQuAD v1.1 EM/F1 and bAbI set accuracy."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Hashable

from lab.metrics.base import MetricValues, check_inputs
from lab.registry import METRICS

_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """SQuAD v1.1 normalization: lowercase, drop punctuation, articles and extra whitespace."""
    text = s.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def squad_f1(prediction: str, ground_truth: str) -> float:
    """Token-bag F1 between normalized answers; 0 when they share no token (official script)."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(ground_truth).split()
    num_same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_em(prediction: str, ground_truth: str) -> float:
    """1.0 when the normalized answers are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


@METRICS.register("squad")
class Squad:
    """SQuAD v1.1 exact match and F1 (max over gold answers, mean x 100).

    Follows the official evaluate-v1.1.py: each example scores the maximum over its gold
    answers; the corpus score is the mean times 100. Keys: ``em``, ``f1``.
    """

    def compute(self, hyps: list[str], refs: list[list[str]]) -> MetricValues:
        check_inputs(hyps, refs, "squad")
        em = sum(max(squad_em(h, g) for g in golds) for h, golds in zip(hyps, refs, strict=True))
        f1 = sum(max(squad_f1(h, g) for g in golds) for h, golds in zip(hyps, refs, strict=True))
        n = len(hyps)
        return {"em": 100.0 * em / n, "f1": 100.0 * f1 / n}


def answer_set(answer: str) -> frozenset[str]:
    """A bAbI answer as a set of items: split on commas, whitespace trimmed and collapsed.

    ``"football, apple"`` and ``"apple,football"`` give the same set; case is kept.
    """
    return frozenset(answer_items(answer))


def answer_items(answer: str) -> tuple[str, ...]:
    """A bAbI answer as its comma-separated items in order, whitespace trimmed and collapsed."""
    return tuple(" ".join(item.split()) for item in answer.split(","))


def _accuracy(
    hyps: list[str], refs: list[list[str]], name: str, key: Callable[[str], Hashable]
) -> MetricValues:
    """Percent of hypotheses whose ``key`` equals that of any reference, and its complement."""
    check_inputs(hyps, refs, name)
    correct = sum(any(key(h) == key(r) for r in rs) for h, rs in zip(hyps, refs, strict=True))
    accuracy = 100.0 * correct / len(hyps)
    return {"accuracy": accuracy, "error": 100.0 - accuracy}


@METRICS.register("babi")
class Babi:
    """bAbI accuracy, comparing comma-separated answers as sets (x 100).

    An example is correct when its answer set equals the set of any of its references (task
    8's ``apple,football`` is a set: any order is right). Keys: ``accuracy`` and ``error``
    (= 100 - accuracy).
    """

    def compute(self, hyps: list[str], refs: list[list[str]]) -> MetricValues:
        return _accuracy(hyps, refs, "babi", answer_set)


@METRICS.register("babi_ordered")
class BabiOrdered:
    """bAbI accuracy for answers whose order matters (x 100): task 19's path ``s,e`` (south,
    then east) is not ``e,s``. Same keys as ``babi``, so tables mix the two.
    """

    def compute(self, hyps: list[str], refs: list[list[str]]) -> MetricValues:
        return _accuracy(hyps, refs, "babi_ordered", answer_items)
