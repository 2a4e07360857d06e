"""A generated translation task between two small invented languages.

The source language is SVO with prenominal adjectives and prepositions; the target language is
SOV with postnominal adjectives (in mirror order), postpositions, relative clauses that end in
their verb, determiners that agree with the noun in gender and number, adjectives that agree by
suffix, and verbs that agree with their subject in person and number. So translating needs
reordering (over a whole object phrase and over relative clauses) and agreement at a distance.

Translation is genuinely ambiguous: some source words have two or three target words with
different frequencies (70/30, 60/40, or 40/35/25), sampled independently at every occurrence,
in every split. In the three-way case the most frequent translation has one gender and the two
others share the other gender, so the determiner (which comes before the noun and agrees with
it) is more often of the *other* gender: greedy decoding commits to that determiner and ends up
with a less probable sentence than beam search finds. References are the single sampled
translation, so BLEU measures how well a system tracks the distribution's mode.

The lexicon (a few hundred pseudo-words per language) is fixed: every seed speaks the same two
languages; ``seed`` only changes which sentences are drawn. Valid and test sources never occur
in train, and test sources never occur in valid.
"""

from __future__ import annotations

import random
from typing import Any

from lab.registry import TASKS
from lab.tasks.toy_grammar import NP, PP, Clause, Grammar, Rel, Sentence, grammar
from lab.tasks.toy_lexicon import (
    TGT_ADJ_SUFFIX,
    TGT_DET,
    TGT_NOUN_PLURAL,
    TGT_VERB_SUFFIX,
    TRAP,
    Entry,
    Lexicon,
)
from lab.tasks.toy_splits import GeneratedTask

# The generator and lexicon live in toy_grammar / toy_lexicon; re-exported for existing users.
__all__ = [
    "NP",
    "PP",
    "TGT_ADJ_SUFFIX",
    "TGT_DET",
    "TGT_NOUN_PLURAL",
    "TGT_VERB_SUFFIX",
    "TRAP",
    "Clause",
    "Entry",
    "Grammar",
    "Lexicon",
    "Rel",
    "Sentence",
    "ToyMT",
    "grammar",
]


@TASKS.register("toy_mt")
class ToyMT(GeneratedTask):
    """Generated SVO->SOV translation with agreement and ambiguous words (built in, no download).

    Options: ``n_train`` (20000), ``n_valid`` (500), ``n_test`` (500). Splits: train, valid,
    test. Deterministic given ``seed``; see the module docstring for the languages.
    """

    name = "toy_mt"
    default_metrics = ("bleu", "chrf", "ter")
    DEFAULTS: dict[str, Any] = {"n_train": 20000, "n_valid": 500, "n_test": 500}

    def __init__(self, data_dir: Any, cache_dir: Any, seed: int = 0, **options: Any) -> None:
        super().__init__(data_dir, cache_dir, seed, **options)
        self.grammar = grammar()

    def generate(
        self, rng: random.Random, n: int, exclude: set[str] | None = None
    ) -> list[tuple[str, str]]:
        return self.grammar.generate(rng, n, exclude)
