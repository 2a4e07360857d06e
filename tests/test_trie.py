"""processor=trie: every output of every step-by-step search is one of its example's allowed
outputs; beam covering the tree finds the best of them (checked by enumeration); the spans of
a text are exactly the strings a detokenized answer can be; the tasks and configs that feed it."""

import json

import pytest
import torch
from torch.nn.utils.rnn import pad_sequence

from lab.data import encode_examples
from lab.errors import LabError
from lab.evaluate import evaluate, target_constraints
from lab.registry import SEARCHES
from lab.search.contracts import call_search
from lab.search.processors.prefix_tree import Node, build
from lab.search.types import Constraints, Spans
from lab.tasks.allowed import edge_forms
from lab.tasks.babi import BAbI
from lab.tasks.base import Example
from lab.tasks.constraints import TextConstraints
from lab.tasks.squad import SQuAD
from lab.tokenizer import Tokenizer
from lab.vocab import EOS_ID
from tests.helpers.configs import resolved
from tests.helpers.models import ARCHS, sources, tiny_model

TRIE = [{"name": "trie"}]
SEARCH_KW = {
    "greedy": {},
    "beam": {"beam_size": 4, "nbest": 3},
    "sample": {"num_samples": 6},
    "diverse_beam": {"beam_size": 4, "num_groups": 2, "nbest": 2},
}


def outputs(node: Node, prefix: tuple[int, ...] = ()) -> set[tuple[int, ...]]:
    """Every allowed output of a tree (no EOS)."""
    found = {prefix} if node.end else set()
    for tok, child in node.children.items():
        found |= outputs(child, (*prefix, tok))
    return found


def model_scores(model, src, lens, i, seqs):
    tgt = pad_sequence([torch.tensor(s) for s in seqs], batch_first=True)  # (O, T)
    n = len(seqs)
    with torch.no_grad():
        return model.score(src[i : i + 1].expand(n, -1), lens[i : i + 1].expand(n), tgt)  # (O,)


def decode(search, model, src, lens, cons, **kw):
    decoder = SEARCHES.build(search, processors=TRIE, **(SEARCH_KW[search] | kw))
    return call_search(decoder, model, src, lens, keys=list(range(len(cons))), constraints=cons)


# --- the tree -------------------------------------------------------------------------------
def spans_by_enumeration(words, m):
    """Every span of 1..m words, by its definition in ``Spans``."""
    found = set()
    for i in range(len(words)):
        for j in range(i, min(i + m, len(words))):
            if i == j:
                found |= {f for f in words[i] if f}
                continue
            middle = tuple(t for w in words[i + 1 : j] for t in w[0])
            for first in {words[i][0], words[i][1]}:
                for last in {words[j][0], words[j][2]}:
                    found.add((*first, *middle, *last))
    return found - {()}


@pytest.mark.parametrize("m", [1, 2, 3, 6])
def test_the_tree_of_spans_holds_exactly_the_spans(m):
    w = [((3, 4), (4,), (3, 4), (4,)), ((5,), (5,), (5,), (5,)), ((6, 7), (6, 7), (6,), (6,))]
    w += [((8,), (), (), ()), ((5,), (5,), (5,), (5,))]  # a word of punctuation only; a repeat
    assert outputs(build(Constraints(spans=Spans(tuple(w), m)))) == spans_by_enumeration(w, m)


def test_rest_counts_the_fewest_tokens_to_an_allowed_end():
    root = build(Constraints(allowed=((3, 4, 5), (3, 6), (7, 7, 7, 7))))
    assert root.rest == 3 and root.children[3].rest == 2 and root.children[7].rest == 4


def test_an_example_that_allows_nothing_is_refused_in_one_line():
    with pytest.raises(LabError, match="allows no output") as e:
        build(Constraints(allowed=()))
    assert "\n" not in str(e.value)
    ex = Example("q7", "src", "tgt", ("tgt",), TextConstraints(span_text=" "))
    with pytest.raises(LabError, match="example q7 allows no output"):
        target_constraints([ex], type("T", (), {"encode": lambda self, t: [3]})())


# --- the searches ---------------------------------------------------------------------------
ALLOWED = ((3, 4, 5), (3, 6), (7,), (8, 8, 8, 8), (6, 3, 4))
SPANS = Spans(tuple(((t,), (t,), (t,), (t,)) for t in (4, 6, 5, 8, 3, 7)), 3)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("search", sorted(SEARCH_KW))
def test_every_output_is_an_allowed_output_scored_as_the_model(arch, search):
    vocab = 9
    model, (src, lens) = tiny_model(arch, vocab=vocab), sources(vocab=vocab)
    cons = [
        Constraints(allowed=ALLOWED),
        None,
        Constraints(spans=SPANS),
        Constraints(allowed=((5,),)),
    ]
    out = decode(search, model, src, lens, cons, max_len_b=8)
    for i, c in enumerate(cons):
        allowed = outputs(build(c)) if c else None
        for h in out.nbest[i]:
            assert allowed is None or (h.finished and h.tokens[:-1] in allowed), (i, h.tokens)
        got = torch.tensor([h.logprob for h in out.nbest[i]])
        want = model_scores(model, src, lens, i, [h.tokens for h in out.nbest[i]])
        torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("search", sorted(SEARCH_KW))
def test_a_single_allowed_output_is_returned_with_the_models_log_prob(search):
    model, (src, lens) = tiny_model("transformer", vocab=9), sources(vocab=9, lengths=(5, 3))
    cons = [Constraints(allowed=((8, 3, 3, 5),)), Constraints(allowed=((6,),))]
    out = decode(search, model, src, lens, cons, max_len_b=6)
    for i, want in enumerate([(8, 3, 3, 5, EOS_ID), (6, EOS_ID)]):
        hyp = out.nbest[i][0]
        assert hyp.tokens == want and hyp.finished
        assert hyp.logprob == pytest.approx(
            float(model_scores(model, src, lens, i, [want])[0]), abs=1e-4
        )


@pytest.mark.parametrize("arch", ARCHS)
def test_a_beam_covering_the_tree_finds_the_best_allowed_outputs_by_enumeration(arch):
    model, (src, lens) = tiny_model(arch, vocab=9, seed=4), sources(vocab=9, lengths=(4, 2, 7))
    cons = [Constraints(allowed=ALLOWED), Constraints(spans=SPANS), Constraints(allowed=ALLOWED)]
    decoder = SEARCHES.build(
        "beam", beam_size=16, nbest=3, max_len_a=0, max_len_b=8, processors=TRIE
    )
    out = call_search(decoder, model, src, lens, constraints=cons)
    for i, c in enumerate(cons):
        seqs = [(*o, EOS_ID) for o in sorted(outputs(build(c)))]  # 5 and 15 outputs
        scores = model_scores(model, src, lens, i, seqs)
        best = [seqs[j] for j in scores.argsort(descending=True)[:3].tolist()]
        assert [h.tokens for h in out.nbest[i]] == best
        assert out.nbest[i][0].logprob == pytest.approx(float(scores.max()), abs=1e-4)


def test_an_allowed_output_that_cannot_fit_the_limit_is_never_begun():
    model, (src, lens) = tiny_model("gru", vocab=9), sources(vocab=9, lengths=(3, 3))
    cons = [Constraints(allowed=((3, 4, 5, 6, 7), (8,))), Constraints(allowed=((3, 4, 5, 6),))]
    for search in ("greedy", "beam", "sample"):
        out = decode(search, model, src, lens, cons, max_len_a=0, max_len_b=3)
        assert all(h.tokens == (8, EOS_ID) for h in out.nbest[0])
        empty = out.nbest[1][0]  # nothing fits: the search's empty, unfinished output
        assert empty.tokens == () and not empty.finished


def test_a_search_without_the_trie_refuses_allowed_outputs_and_names_the_fix():
    model, (src, lens) = tiny_model("gru", vocab=6), sources(vocab=6, lengths=(3,))
    with pytest.raises(LabError, match=r"allowed constraints; add \{name: trie\}"):
        call_search(
            SEARCHES.build("greedy"), model, src, lens, constraints=[Constraints(allowed=((3,),))]
        )
    with pytest.raises(LabError, match="processor trie needs each example's allowed outputs"):
        call_search(SEARCHES.build("greedy", processors=TRIE), model, src, lens)
    with pytest.raises(LabError, match="remove search.processors"):
        SEARCHES.build("exact", processors=TRIE)  # exact ranks by the model's own log-probs


def test_searches_with_the_trie_declare_allowed_constraints():
    for search, kw in SEARCH_KW.items():
        assert "allowed" in SEARCHES.build(search, processors=TRIE, **kw).constraint_kinds
        assert "allowed" not in SEARCHES.build(search, **kw).constraint_kinds
    assert "allowed" in SEARCHES.build("constrained_beam", processors=TRIE).constraint_kinds


# --- from text ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "word, forms",
    [
        ("Broncos.", ("Broncos.", "Broncos.", "Broncos", "Broncos")),
        ('"(AFC),', ('"(AFC),', "AFC),", '"(AFC', "AFC")),
        ("U.S.", ("U.S.", "U.S.", "U.S", "U.S")),
        ("$5%", ("$5%", "$5%", "$5", "$5")),  # % is punctuation (Po), $ a symbol (Sc)
        ("—", ("—", "", "", "")),
    ],
)
def test_edge_forms_drop_leading_and_trailing_punctuation_only(word, forms):
    assert edge_forms(word) == forms


PARAGRAPH = (
    "The Denver Broncos (AFC) beat the Carolina Panthers, 24–10, to earn their third title."
    " The game was played on February 7, 2016, at Levi's Stadium in Santa Clara."
)


def span_texts(text: str, m: int) -> set[str]:
    words = [edge_forms(w) for w in text.split()]
    found = set()
    for i in range(len(words)):
        for j in range(i, min(i + m, len(words))):
            if i == j:
                found |= {f for f in words[i] if f}
                continue
            middle = [w[0] for w in words[i + 1 : j]]
            for first in {words[i][0], words[i][1]}:
                for last in {words[j][0], words[j][2]}:
                    found.add(" ".join(w for w in (first, *middle, last) if w))
    return found - {""}


def test_source_spans_are_exactly_the_strings_a_detokenized_answer_can_be(tmp_path):
    texts = [PARAGRAPH, "Who won the title?", "Denver Broncos", "Santa Clara"] * 20
    tok = Tokenizer.train(texts, 90, tmp_path / "sp.model", model_type="unigram")
    ex = Example(
        "q",
        f"question: x context: {PARAGRAPH}",
        "",
        ("",),
        TextConstraints(span_text=PARAGRAPH, max_span=3),
    )
    (cons,) = target_constraints([ex], tok)
    allowed = outputs(build(cons))
    texts = span_texts(PARAGRAPH, 3)
    assert allowed == {tuple(tok.encode(t)) for t in texts}  # each span tokenized on its own
    assert {tok.decode(o) for o in allowed} == texts
    whole = tok.encode(PARAGRAPH)  # and a span of whole words has its ids inside the paragraph
    for t in ("Denver Broncos (AFC)", "Panthers, 24–10,", "Levi's Stadium"):
        ids = tok.encode(t)
        assert any(whole[k : k + len(ids)] == ids for k in range(len(whole)))


def squad_file(tmp_path):
    paragraph = {
        "context": PARAGRAPH,
        "qas": [{"id": "q1", "question": "Who won?", "answers": [{"text": "Denver Broncos"}]}],
    }
    path = tmp_path / "qa.json"
    path.write_text(json.dumps({"data": [{"paragraphs": [paragraph]}]}))
    return path


def test_squad_allows_the_spans_of_the_paragraph(tmp_path):
    path = squad_file(tmp_path)
    (ex,) = SQuAD(tmp_path, tmp_path, path=str(path), allowed="source_spans", max_span=4).examples(
        "eval"
    )
    assert ex.constraints == TextConstraints(span_text=PARAGRAPH, max_span=4)
    free = SQuAD(tmp_path, tmp_path, path=str(path))
    assert free.examples("eval")[0].constraints is None
    spans = SQuAD(tmp_path, tmp_path, path=str(path), allowed="source_spans")
    assert spans.signature() == free.signature()  # the trained model is the same
    with pytest.raises(LabError, match="squad allowed='spans' is not one of source_spans"):
        SQuAD(tmp_path, tmp_path, path=str(path), allowed="spans")
    with pytest.raises(LabError, match="max_span must be a whole number of words >= 1"):
        SQuAD(tmp_path, tmp_path, path=str(path), allowed="source_spans", max_span=0)


def test_every_answer_the_evaluator_writes_is_a_span_of_the_paragraph(tmp_path):
    """End to end: task (spans as text) -> evaluator (ids) -> beam with the trie -> answers,
    on a random tiny Transformer: every detokenized answer is a span of its paragraph."""
    path = squad_file(tmp_path)
    task = SQuAD(tmp_path, tmp_path, path=str(path), allowed="source_spans", max_span=3)
    examples = task.examples("eval")
    tok = Tokenizer.train([PARAGRAPH, "question: Who won?"] * 20, 90, tmp_path / "sp.model")
    model = tiny_model("transformer", vocab=tok.vocab_size, seed=2, sharpen=1.0)
    pairs = encode_examples(examples, tok)
    search = SEARCHES.build(
        "beam", beam_size=4, nbest=4, max_len_a=0, max_len_b=12, processors=TRIE
    )
    result = evaluate(model, search, examples, pairs, tok, ["squad"], 4, torch.device("cpu"), True)
    answers = [n["hyp"] for row in result.predictions for n in row["nbest"]]
    assert len(answers) == 4 and set(answers) <= span_texts(PARAGRAPH, 3)


def test_babi_allows_the_words_of_the_statements_the_model_reads(tmp_path):
    story = "1 Mary moved to the bathroom.\n2 John went to the hallway.\n"
    story += "3 Where is Mary?\tbathroom\t1\n"
    (tmp_path / "babi" / "en").mkdir(parents=True)
    (tmp_path / "babi" / "en" / "qa1_single-supporting-fact_test.txt").write_text(story)
    task = BAbI(tmp_path, tmp_path, allowed="story_words", max_facts=1)
    (ex,) = task.examples("test")
    assert ex.constraints == TextConstraints(allowed=("John", "went", "to", "the", "hallway"))
    (ex,) = BAbI(tmp_path, tmp_path, allowed="story_words").examples("test")
    assert (
        BAbI(tmp_path, tmp_path, allowed="story_words").signature()
        == BAbI(tmp_path, tmp_path).signature()
    )
    assert ex.tgt in ex.constraints.allowed and "bathroom." not in ex.constraints.allowed


# --- configs --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "experiment, base", [("trie_squad", "squad_copy"), ("trie_babi", "babi_joint")]
)
@pytest.mark.parametrize("search", sorted(SEARCH_KW))
def test_the_trie_experiments_compose_and_reuse_their_base_experiments_model(
    experiment, base, search
):
    cfg = resolved(f"+experiment={experiment}", f"search={search}")
    assert cfg["search"]["processors"] == TRIE and cfg["task"]["allowed"]
    options = {k: v for k, v in cfg["search"].items() if k != "name"}
    assert "allowed" in SEARCHES.build(search, **options).constraint_kinds
    plain = resolved(f"+experiment={base}", f"search={search}")
    for key in ("model", "train"):  # what the checkpoint's cache key is made of, with the task's
        assert cfg[key] == plain[key]  # signature (task.allowed is not part of it)
    assert {**cfg["task"], "allowed": None, "max_span": None} == {
        **plain["task"],
        "allowed": None,
        "max_span": None,
    }
