"""Exact searches (``exact``: depth-first branch-and-bound, ``best_first``: uniform-cost)
return the model's true n-best outputs, as brute-force enumeration finds them, on every
architecture; they say when a budget stopped them; they refuse what they cannot rank."""

from __future__ import annotations

import functools

import pytest
import torch

from lab.errors import LabError
from lab.registry import SEARCHES
from lab.search.contracts import call_search
from lab.search.types import Constraints
from tests.helpers.brute_force import all_outputs, ranked
from tests.helpers.models import TINY, sources, tiny_model

ARCHS = sorted(TINY)  # every lab architecture (combinations: tests/test_multimodel.py)
EXACT = ("exact", "best_first")
VOCAB, MAX_LEN = 7, 5  # ids 3..6 are words (UNK included), EOS = 2: 341 outputs of <= 5 tokens
LENGTHS = (4, 2, 6, 3)
SEEDS = (0, 1)
RANKINGS = {
    "map": {},
    "min_len": {"min_len": 3},
    "word_reward": {"penalty": "word_reward", "alpha": 0.8},
    "word_cost": {"penalty": "word_reward", "alpha": -0.5},
}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models gain nothing from intra-op threads, which only stall on a busy CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@functools.cache
def case(arch: str, seed: int):
    model = tiny_model(arch, VOCAB, seed, sharpen=2.0)
    src, lens = sources(seed + 10, VOCAB, LENGTHS)
    return model, src, lens


def truth(model, src, lens, i: int, min_len: int = 0, alpha: float = 0.0):
    """The enumerated ranking of sentence ``i``: ``(score, logprob, tokens)``, best first."""
    outputs = all_outputs(VOCAB, MAX_LEN, min_len)
    return ranked(model, src[i : i + 1, : lens[i]], lens[i : i + 1], outputs, alpha)


def rescore(model, src, lens, i: int, tokens: tuple[int, ...]) -> float:
    with torch.no_grad():
        tgt = torch.tensor([tokens])
        return float(model.score(src[i : i + 1, : lens[i]], lens[i : i + 1], tgt))


@pytest.mark.parametrize("ranking", sorted(RANKINGS))
@pytest.mark.parametrize("search", EXACT)
@pytest.mark.parametrize("arch", ARCHS)
def test_the_n_best_equals_brute_force_enumeration(arch, search, ranking):
    kw = RANKINGS[ranking]
    alpha = kw.get("alpha", 0.0)
    decode = SEARCHES.build(search, nbest=3, max_len_a=0, max_len_b=MAX_LEN, **kw)
    for seed in SEEDS:
        model, src, lens = case(arch, seed)
        out = decode(model, src, lens)
        for i in range(len(LENGTHS)):
            want = truth(model, src, lens, i, kw.get("min_len", 0), alpha)[:3]
            got = out.nbest[i]
            assert [h.tokens for h in got] == [w[2] for w in want], (seed, i)
            assert all(h.proved_optimal is True and h.finished for h in got)
            for h, (score, _, _) in zip(got, want, strict=True):
                assert h.logprob == pytest.approx(rescore(model, src, lens, i, h.tokens), abs=1e-5)
                assert h.score == pytest.approx(score, abs=1e-5)
                assert h.length == len(h.tokens) >= kw.get("min_len", 0)


@pytest.mark.parametrize("search", EXACT)
@pytest.mark.parametrize("arch", ARCHS)
def test_a_tiny_budget_says_unproved_and_is_no_worse_than_the_beam_seed(arch, search):
    model = tiny_model(arch, 12, seed=5, sharpen=1.0)  # flat: many prefixes beat the seed
    src, lens = sources(3, 12, LENGTHS)
    beam = SEARCHES.build("beam", beam_size=4, max_len_a=0, max_len_b=8)(model, src, lens)
    out = SEARCHES.build(search, budget=2, max_len_a=0, max_len_b=8)(model, src, lens)
    assert any(h.proved_optimal is False for h in out.best())
    for got, seed in zip(out.best(), beam.best(), strict=True):
        assert got.proved_optimal is not None
        if seed.finished:
            assert got.score >= seed.score - 1e-6
    assert out.cost.expanded <= 2 * len(LENGTHS) + beam.cost.expanded


@pytest.mark.parametrize("search", EXACT)
def test_budget_and_time_limit_stop_before_proof_on_a_large_space(search):
    model = tiny_model("gru", 40, seed=2, sharpen=0.5)  # near-uniform over 37 words
    src, lens = sources(4, 40, (5, 7))
    kw = {"min_len": 6, "max_len_a": 0, "max_len_b": 12}  # no short way out
    out = SEARCHES.build(search, budget=50, **kw)(model, src, lens)
    assert [h.proved_optimal for h in out.best()] == [False, False]
    out = SEARCHES.build(search, time_limit=1e-3, **kw)(model, src, lens)
    assert [h.proved_optimal for h in out.best()] == [False, False]


@pytest.mark.parametrize("search", EXACT)
@pytest.mark.parametrize("arch", ARCHS)
def test_a_sentence_decodes_the_same_alone_and_in_a_padded_batch(arch, search):
    model, src, lens = case(arch, 0)
    decode = SEARCHES.build(search, nbest=3, max_len_a=1.0, max_len_b=2, frontier=8)
    together = decode(model, src, lens).nbest
    for i in range(len(LENGTHS)):
        alone = decode(model, src[i : i + 1, : lens[i]], lens[i : i + 1]).nbest[0]
        assert [h.tokens for h in alone] == [h.tokens for h in together[i]]
        assert [h.logprob for h in alone] == pytest.approx(
            [h.logprob for h in together[i]], abs=1e-5
        )


@pytest.mark.parametrize("search", EXACT)
def test_cost_counts_every_call_of_the_seed_and_the_search(search):
    model, src, lens = case("transformer", 0)
    out = SEARCHES.build(search, max_len_a=0, max_len_b=MAX_LEN)(model, src, lens)
    seed = SEARCHES.build("beam", beam_size=4, max_len_a=0, max_len_b=MAX_LEN)(model, src, lens)
    assert out.cost.model_calls == out.cost.steps + 2  # two encodes: the seed's and its own
    assert out.cost.expanded >= seed.cost.expanded + len(LENGTHS)  # + every empty prefix
    assert out.cost.sentences == len(LENGTHS)


def test_no_finished_output_within_the_limit_returns_the_seed_unproved():
    model, src, lens = case("gru", 0)
    # a limit that depends on the source (a fixed one below min_len is refused up front)
    out = SEARCHES.build("exact", min_len=9, max_len_a=0.1, max_len_b=3)(model, src, lens)
    assert all(not h.finished and h.proved_optimal is False for h in out.best())


@pytest.mark.parametrize(
    ("search", "kw", "names"),
    [
        ("exact", {"penalty": "average"}, ["none", "word_reward"]),
        ("best_first", {"penalty": "gnmt", "alpha": 0.6}, ["none", "word_reward"]),
        ("exact", {"budget": 0}, ["budget"]),
        ("best_first", {"budget": -3}, ["budget"]),
        ("best_first", {"frontier": 0}, ["frontier"]),
        ("exact", {"time_limit": 0}, ["time_limit"]),
        ("exact", {"beam_size": 5}, ["beam_size", "seed_beam"]),
        ("exact", {"processors": [{"name": "no_repeat_ngram", "n": 2}]}, ["processors"]),
    ],
)
def test_bad_settings_fail_at_construction_with_one_line(search, kw, names):
    with pytest.raises(LabError) as err:
        SEARCHES.build(search, **kw)
    message = str(err.value)
    assert "\n" not in message
    assert all(name in message for name in names)


@pytest.mark.parametrize("search", EXACT)
@pytest.mark.parametrize("arch", ["transformer", "gru"])
def test_a_forced_prefix_gives_the_enumerated_n_best_of_the_outputs_that_start_with_it(
    arch, search
):
    prefixes = [(4,), (3, 5), (), (6, 6, 6)]  # one per sentence; () forces nothing
    decode = SEARCHES.build(search, nbest=3, max_len_a=0, max_len_b=MAX_LEN)
    model, src, lens = case(arch, 0)
    out = call_search(decode, model, src, lens, constraints=[Constraints(p) for p in prefixes])
    for i, prefix in enumerate(prefixes):
        start = [w for w in truth(model, src, lens, i) if w[2][: len(prefix)] == prefix]
        got = out.nbest[i]
        assert [h.tokens for h in got] == [w[2] for w in start[:3]], i
        assert all(h.proved_optimal is True for h in got)
        for h, (_, logprob, _) in zip(got, start[:3], strict=True):  # the prefix is scored too
            assert h.logprob == pytest.approx(logprob, abs=1e-5)
