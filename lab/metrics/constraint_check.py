"""Whether outputs meet their examples' constraints, checked on the output ids themselves.

A search that enforces constraints says so in each output's ``info``; these rates do not take
its word for it: they look for the forced prefix at the start of the output and for every
``include`` phrase as a contiguous run of its ids (EOS excluded). ``allowed`` lists and spans
are enforced step by step by the ``trie`` processor and are not counted here.
"""

from __future__ import annotations

from collections.abc import Sequence

from lab.search.types import Constraints, Ids


def contains(tokens: Ids, phrase: Ids) -> bool:
    """Whether ``phrase`` occurs in ``tokens`` as a contiguous run."""
    n = len(phrase)
    return any(tuple(tokens[i : i + n]) == tuple(phrase) for i in range(len(tokens) - n + 1))


def constraint_rates(
    constraints: Sequence[Constraints | None], outputs: Sequence[Ids]
) -> dict[str, float]:
    """``constraints_met``: the share of outputs with a prefix or phrases to meet that meet all
    of them; ``phrases_met``: the share of ``include`` phrases found. Empty when no example has
    a prefix or a phrase."""
    met, judged, found, phrases = 0, 0, 0, 0
    for c, tokens in zip(constraints, outputs, strict=True):
        if c is None or not (c.prefix or c.include):
            continue
        hits = [contains(tokens, p) for p in c.include]
        starts = tuple(tokens[: len(c.prefix)]) == tuple(c.prefix)
        judged += 1
        met += starts and all(hits)
        found += sum(hits)
        phrases += len(hits)
    rates = {"constraints_met": met / judged} if judged else {}
    if phrases:
        rates["phrases_met"] = found / phrases
    return rates


def prefix_rests(
    prefixes: Sequence[str], hyps: Sequence[str], refs: Sequence[Sequence[str]]
) -> tuple[list[str], list[list[str]]]:
    """What follows the forced prefix, in the outputs and in the references, of the examples
    that have a prefix (interactive translation: the translator typed the prefix, the system
    completes it). A text that does not start with its prefix is kept whole."""

    def rest(text: str, prefix: str) -> str:
        return text[len(prefix) :].strip() if text.startswith(prefix) else text

    rest_hyps, rest_refs = [], []
    for prefix, hyp, ref in zip(prefixes, hyps, refs, strict=True):
        if prefix:
            rest_hyps.append(rest(hyp, prefix))
            rest_refs.append([rest(r, prefix) for r in ref])
    return rest_hyps, rest_refs
