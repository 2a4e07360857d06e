"""Per-example constraints: the side file of task=parallel, what the evaluator passes on, the
searches that refuse them, and forced prefixes checked against enumeration on every
architecture."""

from pathlib import Path

import pytest
import torch
from torch.nn.utils.rnn import pad_sequence

from lab.errors import LabError
from lab.registry import SEARCHES
from lab.search.contracts import call_search
from lab.search.types import Constraints
from lab.target_ids import target_constraints
from lab.tasks.constraints import TextConstraints, parse_constraints
from lab.tasks.parallel import Parallel
from tests.helpers.brute_force import enumerate_outputs
from tests.helpers.models import ARCHS, sources, tiny_model


def rescore(model, src, lens, hyps):
    tgt = pad_sequence([torch.tensor(h.tokens) for h in hyps], batch_first=True)
    return model.score(src, lens, tgt)


# --- the side file --------------------------------------------------------------------------
def parallel(tmp_path: Path, lines: list[str], n_src: int = 2) -> Parallel:
    (tmp_path / "s.txt").write_text("".join(f"src {i}\n" for i in range(n_src)))
    (tmp_path / "t.txt").write_text("".join(f"tgt {i}\n" for i in range(n_src)))
    (tmp_path / "c.jsonl").write_text("".join(f"{line}\n" for line in lines))
    return Parallel(
        tmp_path, tmp_path, test_src="s.txt", test_tgt="t.txt", constraints_path="c.jsonl"
    )


def test_parallel_attaches_each_lines_constraints_to_its_example(tmp_path):
    task = parallel(tmp_path, ['{"prefix": "A man", "include": ["dog", "big cat"]}', "{}"])
    first, second = task.examples("test")
    assert first.constraints == TextConstraints("A man", ("dog", "big cat"), None)
    assert second.constraints == TextConstraints()
    assert second.src == "src 1" and second.refs == ("tgt 1",)


def test_without_a_constraints_file_examples_carry_none(tmp_path):
    (tmp_path / "s.txt").write_text("a\n")
    (tmp_path / "t.txt").write_text("b\n")
    task = Parallel(tmp_path, tmp_path, test_src="s.txt", test_tgt="t.txt")
    assert task.examples("test")[0].constraints is None


@pytest.mark.parametrize(
    "lines, message",
    [
        (["{}"], "has 1 lines but the source has 2"),
        (["{}", '{"include": ["dog"'], "c.jsonl:2: not a JSON object"),
        (["{}", '{"include": "dog"}'], "c.jsonl:2: 'include' must be a list"),
        (['{"prefixx": "A"}', "{}"], "c.jsonl:1: unknown key 'prefixx'"),
        (["[1]", "{}"], "c.jsonl:1: expected a JSON object"),
    ],
)
def test_a_bad_constraints_file_is_one_line_naming_file_and_line(tmp_path, lines, message):
    with pytest.raises(LabError) as e:
        parallel(tmp_path, lines).examples("test")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_the_evaluator_tokenizes_constraints_as_references():
    class Words:  # the lab's tokenizer contract: encode text -> ids
        def encode(self, text):
            return [len(w) for w in text.split()]

    examples = [
        type(
            "Ex",
            (),
            {"constraints": parse_constraints('{"prefix": "a bb", "include": ["ccc"]}', "x")},
        ),
        type("Ex", (), {"constraints": None}),
    ]
    got = target_constraints(examples, Words())
    assert got == [Constraints((1, 2), ((3,),), None), None]
    assert target_constraints([examples[1]], Words()) is None


# --- who accepts them -----------------------------------------------------------------------
@pytest.mark.parametrize("search", ["stochastic_beam", "mbr"])
def test_a_search_that_does_not_take_constraints_refuses_them_in_one_line(search):
    model, (src, lens) = tiny_model("gru", vocab=5), sources(vocab=5, lengths=(3,))
    kw = {"mbr": {"candidates": {"name": "beam", "beam_size": 2, "nbest": 2}}}.get(
        search, {"beam_size": 2}
    )
    with pytest.raises(LabError, match="does not handle the examples' prefix constraints"):
        call_search(SEARCHES.build(search, **kw), model, src, lens, constraints=[Constraints((3,))])


def test_prefix_searches_refuse_include_phrases_and_pass_empty_constraints():
    model, (src, lens) = tiny_model("gru", vocab=5), sources(vocab=5, lengths=(3,))
    greedy = SEARCHES.build("greedy", max_len_b=4)
    with pytest.raises(LabError, match="include constraints"):
        call_search(greedy, model, src, lens, constraints=[Constraints(include=((3,),))])
    plain = greedy(model, src, lens).nbest[0][0]
    assert call_search(greedy, model, src, lens, constraints=[None]).nbest[0][0] == plain
    assert call_search(greedy, model, src, lens, constraints=[Constraints()]).nbest[0][0] == plain


# --- forced prefixes ------------------------------------------------------------------------
PREFIXES = [(4,), (4, 3), (), (3, 3, 4)]  # one per sentence; () forces nothing
SEARCH_KW = {
    "greedy": {},
    "beam": {"beam_size": 3, "nbest": 2},
    "beam_lp": {"beam_size": 3},
    "sample": {"num_samples": 3},
    "diverse_beam": {"beam_size": 4, "num_groups": 2, "nbest": 4},
    "exact": {"nbest": 2},
    "best_first": {"nbest": 2},
}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("search", sorted(SEARCH_KW))
def test_outputs_start_with_the_prefix_and_logprob_scores_all_of_it(arch, search):
    model, (src, lens) = tiny_model(arch, vocab=5), sources(vocab=5)
    decoder = SEARCHES.build(search, max_len_b=6, **SEARCH_KW[search])
    cons = [Constraints(p) for p in PREFIXES]
    out = call_search(decoder, model, src, lens, keys=[0, 1, 2, 3], constraints=cons)
    for i, prefix in enumerate(PREFIXES):
        hyps = out.nbest[i]
        assert all(h.tokens[: len(prefix)] == prefix for h in hyps)
        got = torch.tensor([h.logprob for h in hyps])
        n = len(hyps)
        want = rescore(model, src[i : i + 1].expand(n, -1), lens[i : i + 1].expand(n), hyps)
        torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


def test_a_prefix_longer_than_the_limit_still_fits_with_its_eos():
    model, (src, lens) = tiny_model("transformer", vocab=5), sources(vocab=5, lengths=(2,))
    prefix = (3, 4, 3, 4, 3)
    out = call_search(
        SEARCHES.build("beam", beam_size=2, max_len_a=0, max_len_b=2),
        model, src, lens, constraints=[Constraints(prefix)],
    )  # fmt: skip
    assert out.nbest[0][0].tokens[:5] == prefix and out.nbest[0][0].length == 6


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("prefix", [(4,), (3, 4)])
def test_a_beam_covering_the_space_finds_the_best_output_with_the_prefix(arch, prefix):
    vocab, max_len = 5, 4
    model = tiny_model(arch, vocab=vocab, seed=3)
    src, lens = sources(vocab=vocab, lengths=(4, 2))
    decoder = SEARCHES.build("beam", beam_size=32, max_len_a=0, max_len_b=max_len)
    out = call_search(decoder, model, src, lens, constraints=[Constraints(prefix)] * 2)
    outputs = [o for o in enumerate_outputs(max_len) if o[: len(prefix)] == prefix]
    tgt = pad_sequence([torch.tensor(o) for o in outputs], batch_first=True)
    for i in range(len(lens)):
        s, n = src[i : i + 1].expand(len(outputs), -1), lens[i : i + 1].expand(len(outputs))
        with torch.no_grad():
            logp = model.score(s, n, tgt)  # (O,)
        best = int(logp.argmax())
        assert out.nbest[i][0].tokens == outputs[best]
        assert out.nbest[i][0].logprob == pytest.approx(float(logp[best]), abs=1e-4)
