"""Diagnostics of n-best lists and samples: how diverse, repetitive and promising the lists are.

Each function takes ``lists``: per source sentence, its detokenized outputs (best first, as the
search ranked them; samples in draw order). Words are the whitespace tokens of a text
(``str.split``); BLEU is sacreBLEU's (13a tokens, cased). ``list_diagnostics`` bundles them
for the evaluator, which reports them whenever some list holds more than one output. A
diagnostic with nothing to measure (e.g. distinct-4 when no output has four words) is 0.0:
results are written as strict JSON, where NaN has no place.
"""

from __future__ import annotations

from collections.abc import Sequence

from sacrebleu.metrics import BLEU

from lab.metrics.translation import ref_streams

Lists = Sequence[Sequence[str]]


def word_ngrams(text: str, n: int) -> list[tuple[str, ...]]:
    """The word n-grams of ``text`` in order, overlapping, repeats kept."""
    words = text.split()
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def distinct_n(lists: Lists, n: int) -> float:
    """Mean over sentences of (distinct word n-grams / word n-grams) pooled over the entries of
    the sentence's list (Li et al., 2016, within a list rather than over the corpus).

    1.0: no n-gram occurs twice in the list; low: the entries share (or repeat) their n-grams.
    A sentence whose list has no n-gram of order n (all entries shorter than n words) is left
    out of the mean.
    """
    ratios = []
    for entries in lists:
        grams = [g for text in entries for g in word_ngrams(text, n)]
        if grams:
            ratios.append(len(set(grams)) / len(grams))
    return _mean(ratios)


def self_bleu(lists: Lists) -> float:
    """Mean over sentences with 2+ entries of: the mean over the entries of the sentence BLEU
    (effective order) of the entry against all other entries of its list as references (Zhu et
    al., 2018). 100: every entry is repeated in its list; 0: no entry shares a word with any
    other. High self-BLEU means the list offers little choice (to a reranker, to MBR)."""
    bleu = BLEU(effective_order=True)
    per_list = []
    for entries in lists:
        if len(entries) < 2:
            continue
        scores = [
            bleu.sentence_score(text, [*entries[:i], *entries[i + 1 :]]).score
            for i, text in enumerate(entries)
        ]
        per_list.append(sum(scores) / len(scores))
    return _mean(per_list)


def repeats_ngram(text: str, n: int = 4) -> bool:
    """True when some word n-gram occurs at least twice in ``text`` (occurrences may overlap:
    ``a a a a a`` repeats the 4-gram ``a a a a``): the degenerate loops of neural decoders."""
    grams = word_ngrams(text, n)
    return len(set(grams)) < len(grams)


def repetition_rate(texts: Sequence[str], n: int = 4) -> float:
    """The share of ``texts`` that repeat a word n-gram (``repeats_ngram``), in [0, 1]."""
    return _mean([float(repeats_ngram(t, n)) for t in texts])


def oracle_bleu(lists: Lists, refs: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU (sacreBLEU defaults, as the ``bleu`` metric) of an oracle's picks: per
    sentence, the entry with the highest sentence BLEU (effective order) against the sentence's
    references ``refs[i]`` (ties: the earlier entry). An upper bound on what reranking the
    lists could reach, BLEU@k for lists of k entries."""
    sentence = BLEU(effective_order=True)
    picks = []
    for entries, ref in zip(lists, refs, strict=True):
        scores = [sentence.sentence_score(text, list(ref)).score for text in entries]
        picks.append(entries[scores.index(max(scores))])
    return float(BLEU().corpus_score(picks, ref_streams([list(r) for r in refs])).score)


def dup_rate(lists: Lists) -> float:
    """The share of all entries that equal (as text) an earlier entry of the same list.

    Different token sequences can detokenize to the same text; they count as duplicates here,
    since a reader (and a text metric) cannot tell them apart."""
    dups = sum(len(entries) - len(set(entries)) for entries in lists)
    return dups / max(sum(len(entries) for entries in lists), 1)


def list_diagnostics(lists: Lists, refs: Sequence[Sequence[str]]) -> dict[str, float]:
    """The diagnostics of ``lists`` (every sentence's outputs, best first) against ``refs``
    (every sentence's references).

    Always ``repetition_rate``: of the first entries, what the run outputs (degeneration is a
    property of any output, a list or not). When some list holds more than one output, also
    ``distinct_1`` .. ``distinct_4``, ``self_bleu``, ``repetition_rate_all`` (of all entries),
    ``oracle_bleu``, ``dup_rate`` and ``nbest_size`` (mean entries per list).
    """
    out = {"repetition_rate": repetition_rate([entries[0] for entries in lists if entries])}
    if not any(len(entries) > 1 for entries in lists):
        return out
    out.update({f"distinct_{n}": distinct_n(lists, n) for n in range(1, 5)})
    out.update(
        self_bleu=self_bleu(lists),
        repetition_rate_all=repetition_rate([t for entries in lists for t in entries]),
        oracle_bleu=oracle_bleu(lists, refs),
        dup_rate=dup_rate(lists),
        nbest_size=_mean([float(len(entries)) for entries in lists]),
    )
    return out


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
