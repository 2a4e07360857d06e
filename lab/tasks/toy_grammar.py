"""Sentence structures of the ``toy_mt`` languages, sampled and rendered in both languages.

:class:`Grammar` draws a sentence structure (clauses, noun phrases, PPs, relative clauses)
and renders it as an SVO source sentence and an SOV target sentence with agreement, sampling
each ambiguous word's translation independently (see :mod:`lab.tasks.toy_mt` for the
languages). Kept apart from the registered task so the generator can be used and tested on
its own; the generated pairs depend only on the random stream given to it.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field

from lab.tasks.toy_lexicon import (
    N_PREPS,
    PERSONS,
    SRC_3SG,
    SRC_CONJ,
    SRC_DET,
    SRC_PLURAL,
    SRC_PRONOUN,
    SRC_REL,
    TGT_ADJ_SUFFIX,
    TGT_CONJ,
    TGT_DET,
    TGT_NOUN_PLURAL,
    TGT_PRONOUN,
    TGT_REL,
    TGT_VERB_SUFFIX,
    Lexicon,
)

MIN_LEN, MAX_LEN = 4, 25


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
