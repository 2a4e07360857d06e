"""Stochastic beam search samples k outputs without replacement with the law of Gumbel-top-k,
checked against exact enumeration; diverse beam search is beam search per group, pushed apart
by the Hamming penalty exactly as specified."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hydra import compose, initialize_config_dir
from torch.nn.utils.rnn import pad_sequence

import lab.search.beam.diverse_beam
import lab.search.sampling.stochastic_beam  # noqa: F401  (registration)
from lab.app import CONF_DIR
from lab.errors import LabError
from lab.models.base import shift_right
from lab.pipeline import build_search
from lab.registry import SEARCHES
from lab.vocab import BOS_ID, EOS_ID, PAD_ID
from tests.helpers.models import ARCHS, sources, tiny_model
from tests.helpers.table_model import EOS, A, B, C, TableModel

WORDS = (3, 4)  # vocabulary 5: PAD, BOS, EOS and two words
MAX_LEN = 3  # outputs: 7 ended by EOS, 8 cut at the limit


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models gain nothing from intra-op threads, which only stall on a busy CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def leaves(max_len: int = MAX_LEN, min_len: int = 0) -> list[tuple[int, ...]]:
    """Every output of a search limited to ``max_len`` tokens: word strings ended by EOS
    (``min_len`` tokens at least) and word strings cut at the limit."""
    ended = [
        (*ws, EOS_ID)
        for n in range(max(min_len - 1, 0), max_len)
        for ws in itertools.product(WORDS, repeat=n)
    ]
    return ended + list(itertools.product(WORDS, repeat=max_len))


def sampling_logprob(model, src, lens, outputs, temperature=1.0) -> torch.Tensor:
    """Each output's log-prob ``(O,)`` under the distribution stochastic beam search samples
    from, by teacher forcing: every step's logits without PAD and BOS, divided by the
    temperature, renormalized."""
    tgt = pad_sequence([torch.tensor(o) for o in outputs], batch_first=True)  # (O, T)
    with torch.no_grad():
        logits = model(
            src.expand(len(outputs), -1), lens.expand(len(outputs)), shift_right(tgt, BOS_ID, 0)
        ).double()  # (O, T, V)
    logits[:, :, [PAD_ID, BOS_ID]] = -math.inf
    step = torch.log_softmax(logits / temperature, -1).gather(2, tgt[:, :, None]).squeeze(2)
    return step.masked_fill(tgt.eq(PAD_ID), 0.0).sum(1)  # (O,)


def model_score(model, src, lens, hyps) -> torch.Tensor:
    """``model.score`` of each hypothesis' tokens, for one source ``(1, S)``."""
    tgt = pad_sequence([torch.tensor(h.tokens) for h in hyps], batch_first=True)
    with torch.no_grad():
        return model.score(src.expand(len(hyps), -1), lens.expand(len(hyps)), tgt)


# --- stochastic beam search -------------------------------------------------------------------


def sample(model, src, lens, keys=None, **kw):
    kw = {"max_len_a": 0, "max_len_b": MAX_LEN, **kw}
    return SEARCHES.build("stochastic_beam", **kw)(model, src, lens, keys=keys)


@pytest.mark.parametrize("min_len", [0, 2])
@pytest.mark.parametrize("arch", ARCHS)
def test_a_beam_as_large_as_the_output_space_samples_every_output_once(arch, min_len):
    model = tiny_model(arch, 5, seed=1, sharpen=2.0)
    src, lens = sources(2, 5, (4, 2))
    everything = leaves(min_len=min_len)
    for k in (len(everything), len(everything) + 3):
        out = sample(model, src, lens, keys=[7, 8], beam_size=k, min_len=min_len)
        for i, nbest in enumerate(out.nbest):
            assert sorted(h.tokens for h in nbest) == sorted(everything)
            assert [h.score for h in nbest] == sorted((h.score for h in nbest), reverse=True)
            assert all(h.info["threshold"] == -math.inf for h in nbest)  # nothing left out
            total = sum(math.exp(h.info["sample_logprob"]) for h in nbest)
            assert total == pytest.approx(1.0, abs=1e-6), i  # the whole distribution


def skewed_table(seed: int) -> dict[tuple[int, ...], dict[int, float]]:
    """Random next-token distributions over EOS and the two words for every prefix of fewer
    than MAX_LEN words: outputs of very different probabilities."""
    g = torch.Generator().manual_seed(seed)
    table = {}
    for n in range(MAX_LEN):
        for prefix in itertools.product(WORDS, repeat=n):
            w = torch.exp(0.8 * torch.randn(3, generator=g, dtype=torch.float64))
            table[prefix] = dict(zip((EOS_ID, *WORDS), (w / w.sum()).tolist(), strict=True))
    return table


def tempered_logprob(table, output, temperature: float) -> float:
    """An output's log-prob when every step's distribution is raised to 1/temperature."""
    total = 0.0
    for t, token in enumerate(output):
        dist = table[output[:t]]
        norm = sum(p ** (1 / temperature) for p in dist.values())
        total += math.log(dist[token] ** (1 / temperature) / norm)
    return total


def inclusion_probabilities(p: list[float], k: int) -> list[float]:
    """P(output i is among k drawn without replacement, each draw in proportion to p):
    the sum over every ordered draw of k that holds i (Plackett-Luce)."""
    incl = [0.0] * len(p)
    for order in itertools.permutations(range(len(p)), k):
        prob, left = 1.0, 1.0
        for j in order:
            prob, left = prob * p[j] / left, left - p[j]
        for j in order:
            incl[j] += prob
    return incl


def within_sigmas(freq: float, prob: float, runs: int, sigmas: float = 4.5) -> bool:
    """A Monte-Carlo frequency agrees with its probability up to ``sigmas`` standard errors
    (plus one count, for probabilities next to 0 or 1)."""
    return abs(freq - prob) <= sigmas * math.sqrt(prob * (1 - prob) / runs) + 1 / runs


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_samples_have_the_law_of_sampling_without_replacement(temperature):
    k, runs = 3, 3000
    table = skewed_table(0)
    outputs = leaves()
    p = [math.exp(tempered_logprob(table, o, temperature)) for o in outputs]
    assert sum(p) == pytest.approx(1.0)
    src, lens = torch.tensor([[A, B]]).expand(runs, -1), torch.tensor([2]).expand(runs)
    out = sample(
        TableModel(table, vocab=5),
        src,
        lens,
        list(range(runs)),
        beam_size=k,
        temperature=temperature,
    )
    index = {o: i for i, o in enumerate(outputs)}
    included, first = [0] * len(outputs), [0] * len(outputs)
    estimates = []  # of the mean output length, from each sample alone
    for nbest in out.nbest:
        assert len({h.tokens for h in nbest}) == len(nbest) == k  # no output twice
        first[index[nbest[0].tokens]] += 1
        estimate = 0.0
        for h in nbest:
            included[index[h.tokens]] += 1
            logp, kappa = h.info["sample_logprob"], h.info["threshold"]
            assert logp == pytest.approx(tempered_logprob(table, h.tokens, temperature))
            assert h.score > kappa
            q = -math.expm1(-math.exp(logp - kappa))  # inclusion probability given kappa
            estimate += math.exp(logp) / q * h.length
        estimates.append(estimate)
    want = inclusion_probabilities(p, k)
    for o, n, q in zip(outputs, included, want, strict=True):
        assert within_sigmas(n / runs, q, runs), (o, n / runs, q)
    for o, n, q in zip(outputs, first, p, strict=True):  # the first is an ancestral sample
        assert within_sigmas(n / runs, q, runs), (o, n / runs, q)
    est = torch.tensor(estimates, dtype=torch.float64)
    mean_length = sum(q * len(o) for q, o in zip(p, outputs, strict=True))
    assert abs(float(est.mean()) - mean_length) <= 4.5 * float(est.std()) / math.sqrt(runs)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
@pytest.mark.parametrize("arch", ARCHS)
def test_logprob_is_the_model_score_and_sample_logprob_the_sampling_distributions(
    arch, temperature
):
    model, (src, lens) = tiny_model(arch), sources()
    k = 4
    out = sample(model, src, lens, [3, 1, 4, 1], beam_size=k, max_len_b=8, temperature=temperature)
    for i, nbest in enumerate(out.nbest):
        s, n = src[i : i + 1, : lens[i]], lens[i : i + 1]
        assert len({h.tokens for h in nbest}) == len(nbest) == k
        assert all(h.length == len(h.tokens) for h in nbest)
        got = torch.tensor([h.logprob for h in nbest])
        torch.testing.assert_close(got, model_score(model, s, n, nbest), atol=1e-5, rtol=0)
        phi = torch.tensor([h.info["sample_logprob"] for h in nbest], dtype=torch.float64)
        want = sampling_logprob(model, s, n, [h.tokens for h in nbest], temperature)
        # the float32 step log-probs round by ~1e-6 a token at -10 (8 tokens), then / temperature
        torch.testing.assert_close(phi, want, atol=2e-5 / temperature, rtol=0)
        assert [h.score for h in nbest] == sorted((h.score for h in nbest), reverse=True)
        assert all(h.score == h.info["perturbed_score"] for h in nbest)
        assert len({h.info["threshold"] for h in nbest}) == 1
        assert nbest[-1].score > nbest[0].info["threshold"] > -math.inf


@pytest.mark.parametrize("arch", ARCHS)
def test_a_sentence_samples_the_same_alone_and_in_a_padded_batch(arch):
    model, (src, lens) = tiny_model(arch), sources(lengths=(3, 9, 5, 7))
    keys = [11, 22, 33, 44]
    decode = SEARCHES.build("stochastic_beam", beam_size=3, max_len_b=8, seed=5)
    together = decode(model, src, lens, keys=keys).nbest
    for i in range(len(lens)):
        alone = decode(model, src[i : i + 1, : lens[i]], lens[i : i + 1], keys=keys[i : i + 1])
        assert [h.tokens for h in alone.nbest[0]] == [h.tokens for h in together[i]]
        # the same noise; only the model's float32 log-probs move (~1e-6 between batch shapes),
        # which a truncated Gumbel near its maximum can amplify tenfold
        for a, b in zip(alone.nbest[0], together[i], strict=True):
            assert a.logprob == pytest.approx(b.logprob, abs=1e-4)
            assert a.score == pytest.approx(b.score, abs=1e-3)
            assert a.info["threshold"] == pytest.approx(b.info["threshold"], abs=1e-3)


def test_the_seed_and_the_keys_choose_the_sample():
    model, (src, lens) = tiny_model("gru"), sources()
    runs = {
        (seed, tuple(keys)): [
            [h.tokens for h in nb]
            for nb in SEARCHES.build("stochastic_beam", beam_size=3, seed=seed)(
                model, src, lens, keys=keys
            ).nbest
        ]
        for seed, keys in [(0, [0, 1, 2, 3]), (0, [9, 8, 7, 6]), (1, [0, 1, 2, 3])]
    }
    again = SEARCHES.build("stochastic_beam", beam_size=3, seed=0)(model, src, lens)  # no keys
    assert [[h.tokens for h in nb] for nb in again.nbest] == runs[(0, (0, 1, 2, 3))]
    assert runs[(0, (0, 1, 2, 3))] != runs[(0, (9, 8, 7, 6))]
    assert runs[(0, (0, 1, 2, 3))] != runs[(1, (0, 1, 2, 3))]


@pytest.mark.parametrize(
    ("kw", "names"),
    [
        ({"beam_size": 0}, ["beam_size"]),
        ({"temperature": 0.0}, ["temperature"]),
        ({"temperature": -1.0}, ["temperature"]),
        ({"temperature": math.inf}, ["temperature"]),
        ({"min_len": 9, "max_len_a": 0, "max_len_b": 4}, ["min_len", "max_len_b"]),
    ],
)
def test_stochastic_beam_refuses_bad_settings_with_one_line(kw, names):
    with pytest.raises(LabError) as err:
        SEARCHES.build("stochastic_beam", **kw)
    assert "\n" not in str(err.value)
    assert all(name in str(err.value) for name in names)


def test_the_configs_build_and_the_sample_seed_follows_the_run_seed():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        stochastic = compose("config", overrides=["search=stochastic_beam", "seed=7"])
        diverse = compose("config", overrides=["search=diverse_beam"])
    decode = build_search(stochastic)
    assert decode.seed == 7 and decode.k == 10 and "keys" in decode.inputs
    decode = build_search(diverse)
    assert (decode.k, decode.groups, decode.strength, decode.nbest) == (10, 10, 0.5, 1)


# --- diverse beam search ----------------------------------------------------------------------


def diverse(model, src, lens, **kw):
    return SEARCHES.build("diverse_beam", **{"max_len_b": 10, **kw})(model, src, lens)


def beam(model, src, lens, **kw):
    return SEARCHES.build("beam", **{"max_len_b": 10, **kw})(model, src, lens)


def same_hypotheses(got, want, tol: float = 1e-5) -> None:
    assert [h.tokens for h in got] == [h.tokens for h in want]
    assert [h.logprob for h in got] == pytest.approx([h.logprob for h in want], abs=tol)
    assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=tol)
    assert [h.finished for h in got] == [h.finished for h in want]


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"stop_rule": "canonical"},
        {"min_len": 3, "processors": [{"name": "no_repeat_ngram", "n": 2}]},
    ],
    ids=["first_k", "canonical", "processors"],
)
@pytest.mark.parametrize("arch", ARCHS)
def test_one_group_is_beam_search(arch, kw):
    model, (src, lens) = tiny_model(arch), sources()
    got = diverse(model, src, lens, beam_size=4, num_groups=1, nbest=4, **kw)
    want = beam(model, src, lens, beam_size=4, nbest=4, **kw)
    for g, w in zip(got.nbest, want.nbest, strict=True):
        same_hypotheses(g, w)
    assert got.cost.as_dict() == want.cost.as_dict()


@pytest.mark.parametrize("arch", ARCHS)
def test_without_penalty_every_group_is_beam_search_of_its_share(arch):
    model, (src, lens) = tiny_model(arch), sources()
    got = diverse(model, src, lens, beam_size=6, num_groups=3, diversity_strength=0, nbest=6)
    want = beam(model, src, lens, beam_size=2, nbest=2)
    for merged, w in zip(got.nbest, want.nbest, strict=True):
        assert [h.score for h in merged] == sorted((h.score for h in merged), reverse=True)
        for g in range(3):
            same_hypotheses([h for h in merged if h.info["group"] == g], w)


FORK = {  # three first words, each followed by EOS
    (): {A: 0.5, B: 0.3, C: 0.2},
    (A,): {EOS: 1.0},
    (B,): {EOS: 1.0},
    (C,): {EOS: 1.0},
}


@pytest.mark.parametrize(
    ("strength", "first_words", "scores"),
    [
        (0.0, [A, A, A], [0.5, 0.5, 0.5]),
        # A twice penalized still beats B: log .5 - .2 = -0.89 > log .3 = -1.20
        (0.2, [A, A, A], [0.5, 0.5 * math.exp(-0.2), 0.5 * math.exp(-0.4)]),
        # group 1: B (-1.20) beats A - 1 (-1.69); group 2: C (-1.61) beats both, penalized
        (1.0, [A, B, C], [0.5, 0.3, 0.2]),
    ],
)
def test_each_group_pays_for_the_tokens_earlier_groups_chose_at_the_same_step(
    strength, first_words, scores
):
    decode = SEARCHES.build(
        "diverse_beam",
        beam_size=3,
        num_groups=3,
        diversity_strength=strength,
        nbest=3,
        max_len_a=0,
        max_len_b=4,
    )
    hyps = sorted(
        decode(TableModel(FORK), torch.tensor([[A]]), torch.tensor([1])).nbest[0],
        key=lambda h: h.info["group"],
    )
    assert [h.tokens for h in hyps] == [(w, EOS) for w in first_words]
    assert [h.info["group"] for h in hyps] == [0, 1, 2]
    assert [h.logprob for h in hyps] == pytest.approx([math.log(FORK[()][w]) for w in first_words])
    assert [h.score for h in hyps] == pytest.approx([math.log(s) for s in scores])


@pytest.mark.parametrize("arch", ARCHS)
def test_a_penalty_makes_groups_differ_at_the_first_step(arch):
    model, (src, lens) = tiny_model(arch), sources()
    kw = {"beam_size": 4, "num_groups": 4, "nbest": 4, "min_len": 2}  # no EOS at step 1
    same = diverse(model, src, lens, diversity_strength=0.0, **kw)
    apart = diverse(model, src, lens, diversity_strength=50.0, **kw)
    for nbest in same.nbest:
        assert len({h.tokens for h in nbest}) == 1  # the groups coincide
    for nbest in apart.nbest:
        assert len({h.tokens[0] for h in nbest}) == 4  # one first word per group


@pytest.mark.parametrize("arch", ARCHS)
def test_diverse_logprob_is_the_model_score_and_batching_changes_nothing(arch):
    model, (src, lens) = tiny_model(arch), sources(lengths=(3, 9, 5, 7))
    kw = {"beam_size": 6, "num_groups": 3, "diversity_strength": 0.7, "nbest": 6}
    together = diverse(model, src, lens, **kw)
    for i, nbest in enumerate(together.nbest):
        s, n = src[i : i + 1, : lens[i]], lens[i : i + 1]
        got = torch.tensor([h.logprob for h in nbest])  # summed in float32, as beam does
        torch.testing.assert_close(got, model_score(model, s, n, nbest), atol=1e-5, rtol=1e-6)
        assert all(h.score <= h.logprob + 1e-5 for h in nbest)  # a penalty only lowers
        assert [h.score for h in nbest] == sorted((h.score for h in nbest), reverse=True)
        same_hypotheses(diverse(model, s, n, **kw).nbest[0], nbest, tol=1e-4)  # float32 noise


@pytest.mark.parametrize(
    ("kw", "names"),
    [
        ({"beam_size": 10, "num_groups": 3}, ["num_groups", "1, 2, 5, 10"]),
        ({"beam_size": 4, "num_groups": 8}, ["num_groups", "1, 2, 4"]),
        ({"num_groups": 0}, ["num_groups"]),
        ({"diversity_strength": -0.5}, ["diversity_strength"]),
        ({"diversity_strength": math.inf}, ["diversity_strength"]),
        ({"beam_size": 4, "num_groups": 2, "nbest": 5}, ["nbest", "beam_size"]),
        ({"stop_rule": "eventually"}, ["first_k"]),
    ],
)
def test_diverse_beam_refuses_bad_settings_with_one_line(kw, names):
    with pytest.raises(LabError) as err:
        SEARCHES.build("diverse_beam", **kw)
    assert "\n" not in str(err.value)
    assert all(name in str(err.value) for name in names)
