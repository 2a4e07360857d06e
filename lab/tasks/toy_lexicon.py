"""The two invented languages of the ``toy_mt`` task: closed-class words and the lexicon.

The closed-class words (determiners, pronouns, suffixes) are fixed tables; the open-class
words are pseudo-words generated once from ``LEXICON_SEED``, so every seed of the task speaks
the same two languages. Some source words have two or three translations with fixed
probabilities: that ambiguity is what makes search matter (see :mod:`lab.tasks.toy_mt`).
Kept apart from the grammar so the vocabulary can be read (and changed) in one place.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate

LEXICON_SEED = "toy_mt-lexicon-v1"

# (person, number) keys; gender matters only for 3rd-person pronouns.
PERSONS = [(1, "sg"), (2, "sg"), (3, "sg"), (1, "pl"), (2, "pl"), (3, "pl")]

# --- closed-class words -----------------------------------------------------------------------
SRC_DET = {(True, "sg"): "da", (True, "pl"): "da", (False, "sg"): "en", (False, "pl"): "som"}
SRC_PRONOUN = {
    (1, "sg", None): "mo",
    (2, "sg", None): "tu",
    (3, "sg", "m"): "hal",
    (3, "sg", "f"): "hel",
    (1, "pl", None): "wem",
    (2, "pl", None): "jum",
    (3, "pl", None): "dai",
}
SRC_REL, SRC_CONJ, SRC_PLURAL, SRC_3SG = "kwa", "ind", "s", "s"

TGT_DET = {
    (True, "m", "sg"): "il",
    (True, "f", "sg"): "ja",
    (True, "m", "pl"): "ilo",
    (True, "f", "pl"): "jai",
    (False, "m", "sg"): "nu",
    (False, "f", "sg"): "na",
    (False, "m", "pl"): "nuo",
    (False, "f", "pl"): "nai",
}
TGT_PRONOUN = {
    (1, "sg", None): "ego",
    (2, "sg", None): "ty",
    (3, "sg", "m"): "ono",
    (3, "sg", "f"): "ona",
    (1, "pl", None): "nos",
    (2, "pl", None): "vos",
    (3, "pl", None): "oni",
}
TGT_REL, TGT_CONJ = "ke", "yo"
TGT_NOUN_PLURAL = {"m": "i", "f": "en"}
TGT_ADJ_SUFFIX = {("m", "sg"): "", ("f", "sg"): "a", ("m", "pl"): "i", ("f", "pl"): "e"}
TGT_VERB_SUFFIX = {
    (1, "sg"): "om",
    (2, "sg"): "es",
    (3, "sg"): "a",
    (1, "pl"): "omi",
    (2, "pl"): "eti",
    (3, "pl"): "an",
}

# --- lexicon shape --------------------------------------------------------------------------
N_NOUNS, N_VERBS, N_ADJS, N_PREPS = 100, 40, 30, 6
# Translation distributions; the three-way one is the greedy-vs-beam trap described above.
SINGLE, SKEWED, BALANCED, TRAP = (1.0,), (0.7, 0.3), (0.6, 0.4), (0.4, 0.35, 0.25)
NOUN_PATTERNS = [SINGLE] * 11 + [SKEWED] * 3 + [BALANCED] * 3 + [TRAP] * 3  # 55/15/15/15 %
VERB_PATTERNS = [SINGLE] * 13 + [SKEWED] * 4 + [BALANCED] * 3
ADJ_PATTERNS = [SINGLE] * 7 + [SKEWED] * 3
PREP_PATTERNS = [SINGLE] * 2 + [SKEWED]

SRC_SOUNDS = (
    ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "t", "v", "z", "br", "tr", "pl", "gr"],
    ["a", "e", "i", "o", "u"],
    ["", "", "", "n", "r", "l", "m"],
)
TGT_SOUNDS = (
    ["h", "j", "k", "kh", "l", "m", "n", "q", "sh", "t", "ts", "v", "y", "z", "zh", "x"],
    ["a", "e", "i", "o", "u", "y"],
    ["", "", "", "", "k", "sh", "t"],
)


# --- lexicon ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """A source word and its target translations (stems) with their probabilities."""

    src: str
    tgt: tuple[str, ...]
    probs: tuple[float, ...]
    genders: tuple[str, ...] = ()  # nouns only: the gender of each translation

    @cached_property
    def cum(self) -> list[float]:
        return list(accumulate(self.probs))

    def pick(self, rng: random.Random | None) -> int:
        """Index of a sampled translation; the most probable one when ``rng`` is None."""
        if rng is None or len(self.probs) == 1:
            return 0
        return min(bisect.bisect(self.cum, rng.random() * self.cum[-1]), len(self.probs) - 1)


class _WordMaker:
    """Distinct pseudo-words from a syllable inventory, none of which is already taken."""

    def __init__(self, rng: random.Random, sounds: tuple[list[str], ...], taken: set[str]):
        self.rng, self.sounds, self.taken = rng, sounds, taken

    def make(self, forms: tuple[str, ...] = ("",)) -> str:
        """A new stem such that ``stem + suffix`` is unused for every suffix in ``forms``."""
        onsets, vowels, codas = self.sounds
        while True:
            n = self.rng.choice((2, 2, 3))
            stem = "".join(
                self.rng.choice(onsets) + self.rng.choice(vowels) + self.rng.choice(codas)
                for _ in range(n)
            )
            surface = {stem + s for s in forms}
            if len(surface) == len(forms) and not surface & self.taken:
                self.taken |= surface
                return stem


class Lexicon:
    """The fixed vocabulary of both languages (built from ``LEXICON_SEED``)."""

    def __init__(self) -> None:
        rng = random.Random(LEXICON_SEED)
        src_taken = set(SRC_DET.values()) | set(SRC_PRONOUN.values()) | {SRC_REL, SRC_CONJ, "."}
        tgt_taken = set(TGT_DET.values()) | set(TGT_PRONOUN.values()) | {TGT_REL, TGT_CONJ, "."}
        src = _WordMaker(rng, SRC_SOUNDS, src_taken)
        tgt = _WordMaker(rng, TGT_SOUNDS, tgt_taken)
        noun_forms = ("", *TGT_NOUN_PLURAL.values())
        adj_forms = tuple(TGT_ADJ_SUFFIX.values())
        verb_forms = tuple(TGT_VERB_SUFFIX.values())

        def entries(n: int, patterns: list, src_forms: tuple, tgt_forms: tuple) -> list[Entry]:
            kinds = [patterns[i % len(patterns)] for i in range(n)]  # exact proportions
            rng.shuffle(kinds)
            out = []
            for probs in kinds:
                word = src.make(src_forms)
                out.append(Entry(word, tuple(tgt.make(tgt_forms) for _ in probs), probs))
            return out

        self.nouns = [
            _with_genders(e, rng)
            for e in entries(N_NOUNS, NOUN_PATTERNS, ("", SRC_PLURAL), noun_forms)
        ]
        self.verbs = entries(N_VERBS, VERB_PATTERNS, ("", SRC_3SG), verb_forms)
        self.adjs = entries(N_ADJS, ADJ_PATTERNS, ("",), adj_forms)
        self.preps = entries(N_PREPS, PREP_PATTERNS, ("",), ("",))
        # Mildly Zipfian word frequencies: the most frequent noun is ~10x the rarest.
        self.noun_cum = _zipf_cum(N_NOUNS)
        self.verb_cum = _zipf_cum(N_VERBS)
        self.adj_cum = _zipf_cum(N_ADJS)

    def ambiguous(self) -> dict[str, tuple[str, ...]]:
        """Source word -> its target stems, for every word with more than one translation."""
        return {
            e.src: e.tgt
            for e in (*self.nouns, *self.verbs, *self.adjs, *self.preps)
            if len(e.tgt) > 1
        }


def _with_genders(entry: Entry, rng: random.Random) -> Entry:
    """Assign genders; in the three-way pattern the top choice differs from the other two."""
    if entry.probs == TRAP:
        first = rng.choice("mf")
        other = "f" if first == "m" else "m"
        genders = (first, other, other)
    else:
        genders = tuple(rng.choice("mf") for _ in entry.probs)
    return Entry(entry.src, entry.tgt, entry.probs, genders)


def _zipf_cum(n: int, offset: float = 5.0, exponent: float = 0.8) -> list[float]:
    return list(accumulate(1.0 / (rank + offset) ** exponent for rank in range(n)))
