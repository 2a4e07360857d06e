"""The generated tasks: determinism, shape of the data, and the linguistic properties claimed."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from lab.errors import LabError
from lab.registry import TASKS
from lab.tasks import toy_mt, toy_qa
from lab.tasks.toy_mt import NP, PP, Clause, Rel, Sentence, ToyMT
from lab.tasks.toy_qa import ToyQA

SMALL = {"n_train": 3000, "n_valid": 200, "n_test": 200}


@pytest.fixture(scope="module")
def mt() -> ToyMT:
    return ToyMT("unused-data", "unused-cache", seed=0)


@pytest.fixture(scope="module")
def lex() -> toy_mt.Lexicon:
    return toy_mt.grammar().lex


def test_registered_with_description():
    assert TASKS.get("toy_mt") is ToyMT and TASKS.get("toy_qa") is ToyQA
    descriptions = {e.name: e.description for e in TASKS.entries()}
    assert descriptions["toy_mt"].startswith("Generated SVO->SOV translation")


# --- toy_mt -------------------------------------------------------------------------------
def test_mt_splits_and_default_sizes(mt: ToyMT):
    assert mt.splits() == ["train", "valid", "test"]
    assert [len(mt.examples(s)) for s in mt.splits()] == [20000, 500, 500]
    assert mt.default_metrics == ("bleu", "chrf", "ter")
    ex = mt.examples("test")[0]
    assert ex.id == "test-0" and ex.refs == (ex.tgt,)


def test_mt_deterministic_by_seed():
    a = ToyMT("d", "c", seed=0, **SMALL).examples("train")
    b = ToyMT("d", "c", seed=0, **SMALL).examples("train")
    c = ToyMT("d", "c", seed=1, **SMALL).examples("train")
    assert a == b
    assert sum(x.src == y.src for x, y in zip(a, c, strict=True)) < len(a) // 100


def test_mt_signature_fills_defaults():
    assert ToyMT("d", "c").signature() == ToyMT("d", "c", n_train=20000).signature()
    assert ToyMT("d", "c").signature() != ToyMT("d", "c", seed=1).signature()


def test_mt_lengths_and_vocabulary(mt: ToyMT):
    for split in mt.splits():
        for ex in mt.examples(split):
            assert 4 <= len(ex.src.split()) <= 25 and 4 <= len(ex.tgt.split()) <= 25
            assert ex.src == ex.src.lower() and ex.src.endswith(" .") and ex.tgt.endswith(" .")
    train = mt.examples("train")
    src_vocab = {w for ex in train for w in ex.src.split()}
    tgt_vocab = {w for ex in train for w in ex.tgt.split()}
    assert 100 <= len(src_vocab) < 1000 and 100 <= len(tgt_vocab) < 1000
    lengths = Counter(len(ex.src.split()) for ex in train)
    assert min(lengths) <= 6 and max(lengths) >= 20  # a real spread of lengths


def test_mt_splits_disjoint(mt: ToyMT):
    train = {ex.src for ex in mt.examples("train")}
    valid = {ex.src for ex in mt.examples("valid")}
    test = {ex.src for ex in mt.examples("test")}
    assert not train & test and not train & valid and not valid & test
    assert len(test) == 500  # no duplicate within a split either


def test_mt_ambiguity_in_training_data(mt: ToyMT, lex: toy_mt.Lexicon):
    """Ambiguous nouns show every translation, in about the lexicon's proportions."""
    counts: dict[str, Counter] = {}
    traps = [e for e in lex.nouns if e.probs == toy_mt.TRAP]
    assert traps
    stems = {t: e.src for e in traps for t in e.tgt}
    for ex in mt.examples("train"):
        for token in ex.tgt.split():
            if token in stems:  # singular nouns appear as the bare stem
                counts.setdefault(stems[token], Counter())[token] += 1
    for entry in traps:
        seen = counts[entry.src]
        assert set(seen) == set(entry.tgt)
        total = sum(seen.values())
        if total >= 300:
            assert abs(seen[entry.tgt[0]] / total - entry.probs[0]) < 0.08
    assert len(lex.ambiguous()) >= 30


def test_mt_trap_makes_greedy_differ_from_mode(lex: toy_mt.Lexicon):
    """In the three-way pattern the best translation's determiner is the less likely one."""
    for e in lex.nouns:
        if e.probs == toy_mt.TRAP:
            assert e.genders[0] != e.genders[1] == e.genders[2]
            pairs = zip(e.probs, e.genders, strict=True)
            p_first_gender = sum(p for p, g in pairs if g == e.genders[0])
            assert e.probs[0] == max(e.probs) and p_first_gender < 0.5


def test_mt_word_order_and_agreement_hand_built(lex: toy_mt.Lexicon):
    """SVO -> SOV, prenominal -> postnominal adjectives, agreement on det/adj/verb."""
    g = toy_mt.grammar()
    n0, n1, v0, a0 = lex.nouns[0], lex.nouns[1], lex.verbs[0], lex.adjs[0]
    subj = NP(noun=0, number="sg", definite=True, adjs=(0,))
    obj = NP(noun=1, number="pl", definite=False)
    sentence = Sentence([Clause(subj=subj, verb=0, obj=obj)])

    assert g.render_source(sentence) == [
        "da",
        a0.src,
        n0.src,
        v0.src + "s",
        "som",
        n1.src + "s",
        ".",
    ]
    g0, g1 = n0.genders[0], n1.genders[0]
    assert g.render_target(sentence) == [
        toy_mt.TGT_DET[True, g0, "sg"],
        n0.tgt[0],
        a0.tgt[0] + toy_mt.TGT_ADJ_SUFFIX[g0, "sg"],
        toy_mt.TGT_DET[False, g1, "pl"],
        n1.tgt[0] + toy_mt.TGT_NOUN_PLURAL[g1],
        v0.tgt[0] + toy_mt.TGT_VERB_SUFFIX[3, "sg"],
        ".",
    ]


def test_mt_pronoun_pp_and_relative_clause_hand_built(lex: toy_mt.Lexicon):
    g = toy_mt.grammar()
    we = NP(person=1, number="pl")
    house = NP(noun=2, number="sg", definite=True)
    obj = NP(noun=1, number="sg", definite=True, rel=Rel(verb=1, obj=NP(noun=3, number="pl")))
    sentence = Sentence([Clause(subj=we, verb=0, obj=obj, pp=PP(prep=0, np=house))])
    src = g.render_source(sentence)
    tgt = g.render_target(sentence)
    v0, v1, p0 = lex.verbs[0], lex.verbs[1], lex.preps[0]
    # source: we V the N1 that V1-s the N3-s P the N2 .
    assert src[:2] == ["wem", v0.src] and src[4:6] == ["kwa", v1.src + "s"]
    assert src[-4] == p0.src
    # target: we [N1 that N3-pl V1-3sg] [N2 P] V-1pl .  (verbs last, postposition)
    assert tgt[0] == "nos" and tgt[-1] == "." and tgt[-2] == v0.tgt[0] + "omi"
    assert tgt[3] == "ke" and tgt[6] == v1.tgt[0] + toy_mt.TGT_VERB_SUFFIX[3, "sg"]
    assert tgt[-3] == p0.tgt[0] and tgt[-4] == lex.nouns[2].tgt[0]
    assert len(src) == len(tgt)


def test_mt_generation_is_fast():
    import time

    start = time.perf_counter()
    toy_mt.grammar().generate(random.Random(3), 20000)
    assert time.perf_counter() - start < 6.0  # ~1 s on an idle core; slack for busy machines


def test_mt_errors():
    with pytest.raises(LabError, match="valid splits: train, valid, test"):
        ToyMT("d", "c", **SMALL).examples("dev")
    with pytest.raises(LabError, match="valid options: n_train, n_valid, n_test"):
        ToyMT("d", "c", n_trian=5)
    with pytest.raises(LabError, match="n_train must be an integer"):
        ToyMT("d", "c", n_train="many")


# --- toy_qa -------------------------------------------------------------------------------
def _simulate(story: str) -> tuple[dict[str, str], dict[str, list[str]], dict[str, str]]:
    """An independent reading of a story: person places, holdings, places of objects."""
    at: dict[str, str] = {}
    holding: dict[str, list[str]] = {}
    lying: dict[str, str] = {}
    for sentence in story.split(" . "):
        words = sentence.strip(" .").split()
        person, rest, thing = words[0], " ".join(words[1:-2]), words[-1]
        if rest in toy_qa.MOVE_VERBS:
            at[person] = thing
        elif rest in toy_qa.PICK_VERBS:
            holding.setdefault(person, []).append(thing)
            lying.pop(thing, None)
        elif rest in toy_qa.DROP_VERBS:
            holding[person].remove(thing)
            lying[thing] = at[person]
        else:
            raise AssertionError(f"unparsed sentence {sentence!r}")
    return at, holding, lying


def test_qa_answers_are_correct():
    task = ToyQA("d", "c", n_train=2000, n_valid=100, n_test=100)
    kinds = Counter()
    for ex in task.examples("train"):
        story, _, question = ex.src.rpartition(" . ")
        at, holding, lying = _simulate(story + " .")
        words = question.split()
        if words[-2] == "carrying":
            kinds["carrying"] += 1
            assert ex.tgt == (",".join(holding.get(words[2], [])) or "nothing")
        elif words[2] == "the":
            kinds["object"] += 1
            holder = [p for p, objs in holding.items() if words[3] in objs]
            assert ex.tgt == (at[holder[0]] if holder else lying[words[3]])
        else:
            kinds["person"] += 1
            assert ex.tgt == at[words[2]]
        assert ex.refs == (ex.tgt,)
    assert min(kinds.values()) > 200
    assert any("," in ex.tgt for ex in task.examples("train"))


def test_qa_deterministic_and_disjoint():
    a = ToyQA("d", "c", seed=0, n_train=500, n_valid=50, n_test=50)
    b = ToyQA("d", "c", seed=0, n_train=500, n_valid=50, n_test=50)
    c = ToyQA("d", "c", seed=7, n_train=500, n_valid=50, n_test=50)
    assert a.examples("train") == b.examples("train")
    assert [e.src for e in a.examples("train")] != [e.src for e in c.examples("train")]
    train = {e.src for e in a.examples("train")}
    assert not train & {e.src for e in a.examples("test")}
    assert a.default_metrics == ("squad", "babi")
    assert len(ToyQA("d", "c").examples("train")) == 5000


def test_qa_errors():
    with pytest.raises(LabError, match="valid splits"):
        ToyQA("d", "c", n_train=10, n_valid=1, n_test=1).examples("eval")
    with pytest.raises(LabError, match="unknown option 'size'"):
        ToyQA("d", "c", size=3)
