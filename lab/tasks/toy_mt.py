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

import bisect
import random
from dataclasses import dataclass, field
from functools import cached_property
from itertools import accumulate
from typing import Any

from lab.registry import TASKS
from lab.tasks.base import Example, Task, int_option, resolve_options, unknown_split

MIN_LEN, MAX_LEN = 4, 25
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


# --- sentence structure -----------------------------------------------------------------
@dataclass(slots=True)
class NP:
    """A noun phrase: a noun with determiner, adjectives, a PP and a relative clause, or a
    pronoun (``person`` set; ``gender`` is the pronoun's, for the 3rd person singular)."""

    noun: int = 0
    number: str = "sg"
    definite: bool = True
    adjs: tuple[int, ...] = ()
    pp: PP | None = None
    rel: Rel | None = None
    person: int | None = None
    gender: str | None = None


@dataclass(slots=True)
class PP:
    """A prepositional phrase (a postpositional one in the target)."""

    prep: int
    np: NP


@dataclass(slots=True)
class Rel:
    """A subject relative clause: ``that <verb> <object>``; the verb agrees with the head."""

    verb: int
    obj: NP


@dataclass(slots=True)
class Clause:
    """Subject, verb, object and an optional clause-level PP (SVO+PP -> S O PP V)."""

    subj: NP
    verb: int
    obj: NP
    pp: PP | None = None


@dataclass(slots=True)
class Sentence:
    """One clause, or two joined by a conjunction; always ends with a period."""

    clauses: list[Clause] = field(default_factory=list)


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


# --- generation and rendering -------------------------------------------------------------
class Grammar:
    """Samples sentence structures and renders them in both languages."""

    def __init__(self, lexicon: Lexicon | None = None) -> None:
        self.lex = lexicon or Lexicon()

    # sampling -----------------------------------------------------------------------------
    @staticmethod
    def _draw(rng: random.Random, cum: list[float]) -> int:
        return bisect.bisect(cum, rng.random() * cum[-1])

    def sample_np(self, rng: random.Random, nested: bool, subject: bool) -> NP:
        if subject and rng.random() < 0.25:
            person, number = PERSONS[rng.randrange(len(PERSONS))]
            gender = rng.choice("mf") if (person, number) == (3, "sg") else None
            return NP(number=number, person=person, gender=gender)
        n_adj = 0 if nested and rng.random() < 0.6 else rng.choice((0, 0, 0, 1, 1, 2))
        np = NP(
            noun=self._draw(rng, self.lex.noun_cum),
            number="pl" if rng.random() < 0.35 else "sg",
            definite=rng.random() < 0.55,
            adjs=tuple(self._draw(rng, self.lex.adj_cum) for _ in range(n_adj)),
        )
        if not nested:
            if subject and rng.random() < 0.15:
                np.pp = self.sample_pp(rng)
            if rng.random() < 0.12:
                np.rel = Rel(self._draw(rng, self.lex.verb_cum), self.sample_np(rng, True, False))
        return np

    def sample_pp(self, rng: random.Random) -> PP:
        return PP(rng.randrange(N_PREPS), self.sample_np(rng, True, False))

    def sample_clause(self, rng: random.Random) -> Clause:
        return Clause(
            subj=self.sample_np(rng, False, True),
            verb=self._draw(rng, self.lex.verb_cum),
            obj=self.sample_np(rng, False, False),
            pp=self.sample_pp(rng) if rng.random() < 0.3 else None,
        )

    def sample(self, rng: random.Random) -> Sentence:
        n = 2 if rng.random() < 0.2 else 1
        return Sentence([self.sample_clause(rng) for _ in range(n)])

    # source rendering ---------------------------------------------------------------------
    def src_np(self, np: NP, out: list[str]) -> None:
        if np.person is not None:
            out.append(SRC_PRONOUN[np.person, np.number, np.gender])
            return
        out.append(SRC_DET[np.definite, np.number])
        out.extend(self.lex.adjs[a].src for a in np.adjs)
        noun = self.lex.nouns[np.noun].src
        out.append(noun + SRC_PLURAL if np.number == "pl" else noun)
        if np.pp is not None:
            self.src_pp(np.pp, out)
        if np.rel is not None:
            out.append(SRC_REL)
            out.append(self.src_verb(np.rel.verb, 3, np.number))
            self.src_np(np.rel.obj, out)

    def src_pp(self, pp: PP, out: list[str]) -> None:
        out.append(self.lex.preps[pp.prep].src)
        self.src_np(pp.np, out)

    def src_verb(self, verb: int, person: int, number: str) -> str:
        stem = self.lex.verbs[verb].src
        return stem + SRC_3SG if (person, number) == (3, "sg") else stem

    def render_source(self, sentence: Sentence) -> list[str]:
        out: list[str] = []
        for i, c in enumerate(sentence.clauses):
            if i:
                out.append(SRC_CONJ)
            self.src_np(c.subj, out)
            out.append(self.src_verb(c.verb, c.subj.person or 3, c.subj.number))
            self.src_np(c.obj, out)
            if c.pp is not None:
                self.src_pp(c.pp, out)
        out.append(".")
        return out

    # target rendering ---------------------------------------------------------------------
    def tgt_np(self, np: NP, rng: random.Random | None, out: list[str]) -> None:
        if np.person is not None:
            out.append(TGT_PRONOUN[np.person, np.number, np.gender])
            return
        entry = self.lex.nouns[np.noun]
        k = entry.pick(rng)
        gender = entry.genders[k]
        out.append(TGT_DET[np.definite, gender, np.number])
        out.append(entry.tgt[k] + TGT_NOUN_PLURAL[gender] if np.number == "pl" else entry.tgt[k])
        suffix = TGT_ADJ_SUFFIX[gender, np.number]
        for a in reversed(np.adjs):
            adj = self.lex.adjs[a]
            out.append(adj.tgt[adj.pick(rng)] + suffix)
        if np.pp is not None:
            self.tgt_pp(np.pp, rng, out)
        if np.rel is not None:
            out.append(TGT_REL)
            self.tgt_np(np.rel.obj, rng, out)
            out.append(self.tgt_verb(np.rel.verb, 3, np.number, rng))

    def tgt_pp(self, pp: PP, rng: random.Random | None, out: list[str]) -> None:
        self.tgt_np(pp.np, rng, out)
        prep = self.lex.preps[pp.prep]
        out.append(prep.tgt[prep.pick(rng)])

    def tgt_verb(self, verb: int, person: int, number: str, rng: random.Random | None) -> str:
        entry = self.lex.verbs[verb]
        return entry.tgt[entry.pick(rng)] + TGT_VERB_SUFFIX[person, number]

    def render_target(self, sentence: Sentence, rng: random.Random | None = None) -> list[str]:
        """Target tokens; translations sampled from ``rng``, or the most probable if None.

        Sampling follows target word order, so one ``rng`` stream gives one translation.
        """
        out: list[str] = []
        for i, c in enumerate(sentence.clauses):
            if i:
                out.append(TGT_CONJ)
            self.tgt_np(c.subj, rng, out)
            self.tgt_np(c.obj, rng, out)
            if c.pp is not None:
                self.tgt_pp(c.pp, rng, out)
            out.append(self.tgt_verb(c.verb, c.subj.person or 3, c.subj.number, rng))
        out.append(".")
        return out

    def generate(
        self, rng: random.Random, n: int, exclude: set[str] | None = None
    ) -> list[tuple[str, str]]:
        """``n`` (source, target) pairs of 4-25 tokens whose sources are distinct and not in
        ``exclude``."""
        pairs: list[tuple[str, str]] = []
        seen = set(exclude or ())
        while len(pairs) < n:
            sentence = self.sample(rng)
            src = self.render_source(sentence)
            if not MIN_LEN <= len(src) <= MAX_LEN:
                continue
            src_text = " ".join(src)
            if src_text in seen:
                continue
            tgt = self.render_target(sentence, rng)
            if not MIN_LEN <= len(tgt) <= MAX_LEN:
                continue
            seen.add(src_text)
            pairs.append((src_text, " ".join(tgt)))
        return pairs


_GRAMMAR: Grammar | None = None


def grammar() -> Grammar:
    """The shared grammar (the lexicon is fixed, so one instance serves every task)."""
    global _GRAMMAR
    if _GRAMMAR is None:
        _GRAMMAR = Grammar()
    return _GRAMMAR


@TASKS.register("toy_mt")
class ToyMT(Task):
    """Generated SVO->SOV translation with agreement and ambiguous words (built in, no download).

    Options: ``n_train`` (20000), ``n_valid`` (500), ``n_test`` (500). Splits: train, valid,
    test. Deterministic given ``seed``; see the module docstring for the languages.
    """

    kind = "translation"
    default_metrics = ("bleu", "chrf", "ter")
    DEFAULTS: dict[str, Any] = {"n_train": 20000, "n_valid": 500, "n_test": 500}

    def __init__(self, data_dir: Any, cache_dir: Any, seed: int = 0, **options: Any) -> None:
        opts = resolve_options("toy_mt", options, self.DEFAULTS)
        opts = {k: int_option("toy_mt", k, v) for k, v in opts.items()}
        super().__init__(data_dir, cache_dir, seed, **opts)
        self.grammar = grammar()

    def splits(self) -> list[str]:
        return ["train", "valid", "test"]

    @cached_property
    def _data(self) -> dict[str, list[tuple[str, str]]]:
        # Held-out splits first, each from its own stream, so train can exclude their sources.
        g, o = self.grammar, self.options
        test = g.generate(random.Random(f"toy_mt:{self.seed}:test"), o["n_test"])
        seen = {s for s, _ in test}
        valid = g.generate(random.Random(f"toy_mt:{self.seed}:valid"), o["n_valid"], seen)
        seen |= {s for s, _ in valid}
        train = g.generate(random.Random(f"toy_mt:{self.seed}:train"), o["n_train"], seen)
        return {"train": train, "valid": valid, "test": test}

    def examples(self, split: str) -> list[Example]:
        if split not in self.splits():
            raise unknown_split("toy_mt", split, self.splits())
        return [
            Example(f"{split}-{i}", src, tgt, (tgt,))
            for i, (src, tgt) in enumerate(self._data[split])
        ]
