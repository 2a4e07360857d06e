"""Sampling: the warpers keep what Hugging Face's keep; ``search=sample`` draws every output
with exactly its processed probability, reports the model's and the sampler's log-probs, and
gives a sentence the same samples alone or in any batch."""

from __future__ import annotations

import functools
import itertools

import pytest
import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

import lab.search.processors.warpers  # noqa: F401  (registers the warpers)
import lab.search.sampling.sample  # noqa: F401  (registers search=sample)
from lab.data import Pair
from lab.errors import LabError
from lab.evaluate import decode_pairs
from lab.registry import PROCESSORS, SEARCHES
from lab.search.rng import example_key
from lab.vocab import BOS_ID, EOS_ID, PAD_ID
from tests.helpers.models import ARCHS, sources, tiny_model
from tests.helpers.sampling import (
    INVARIANCE,
    MAX_LEN,
    SAMPLES,
    SENTENCES,
    SETTINGS,
    VOCAB,
    chi_square,
    drawn,
    enumerable,
    processed_logprobs,
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models gain nothing from intra-op threads, which only stall on a busy CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# --- the warpers against Hugging Face's -------------------------------------------------------

# lab processor -> the HF class, and HF's name for a key where it differs
HF = {
    "temperature": ("TemperatureLogitsWarper", {}),
    "top_k": ("TopKLogitsWarper", {}),
    "top_p": ("TopPLogitsWarper", {}),
    "typical_p": ("TypicalLogitsWarper", {"typical_p": "mass"}),
    "epsilon": ("EpsilonLogitsWarper", {}),
    "eta": ("EtaLogitsWarper", {"eta": "epsilon"}),
    "min_p": ("MinPLogitsWarper", {}),
    "repetition_penalty": ("RepetitionPenaltyLogitsProcessor", {}),
}
WARPERS = [
    ("temperature", {"temperature": 0.5}),
    ("temperature", {"temperature": 1.7}),
    ("top_k", {"top_k": 1}),
    ("top_k", {"top_k": 7}),
    ("top_k", {"top_k": 2, "min_tokens_to_keep": 5}),
    ("top_p", {"top_p": 0.3}),
    ("top_p", {"top_p": 0.9}),
    ("top_p", {"top_p": 0.2, "min_tokens_to_keep": 4}),
    ("typical_p", {"typical_p": 0.2}),
    ("typical_p", {"typical_p": 0.9}),
    ("typical_p", {"typical_p": 0.1, "min_tokens_to_keep": 3}),
    ("epsilon", {"epsilon": 0.01}),
    ("epsilon", {"epsilon": 0.08}),
    ("epsilon", {"epsilon": 0.5, "min_tokens_to_keep": 2}),
    ("eta", {"eta": 0.01}),
    ("eta", {"eta": 0.2}),
    ("eta", {"eta": 0.9, "min_tokens_to_keep": 3}),
    ("min_p", {"min_p": 0.05}),
    ("min_p", {"min_p": 0.4}),
    ("min_p", {"min_p": 0.9, "min_tokens_to_keep": 3}),
    ("repetition_penalty", {"penalty": 1.3}),
    ("repetition_penalty", {"penalty": 0.6}),
]
SHIFT_INVARIANT = {"temperature", "top_k", "top_p", "typical_p", "epsilon", "eta", "min_p"}


@functools.cache
def hf_module():
    pytest.importorskip("transformers")
    from transformers.generation import logits_process

    return logits_process


def random_rows(
    seed: int, scale: float, dtype: torch.dtype = torch.float32, rows: int = 16, vocab: int = 80
) -> tuple[Tensor, Tensor]:
    """Raw logits ``(rows, vocab)`` (continuous: no ties) with PAD and BOS at -inf, as the
    search's ban leaves them, and generated tokens ``(rows, 6)`` for the repetition penalty."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, vocab, generator=g, dtype=dtype) * scale + 1.0  # (rows, V)
    logits[:, [PAD_ID, BOS_ID]] = float("-inf")
    tokens = torch.randint(3, vocab, (rows, 6), generator=g)  # (rows, 6)
    return logits, tokens


def run_both(case, seed: int, scale: float, hf_on_logits: bool) -> tuple[Tensor, Tensor]:
    """Ours on log-probs, HF's on the log-probs too or on the raw logits, both log-softmaxed.

    Against raw logits in float64: the two roads round differently, by float32's ulp (4e-6
    at the -40 a log-prob can reach), not by anything the processors decide."""
    name, kw = case
    hf_name, renames = HF[name]
    hf_warper = getattr(hf_module(), hf_name)(**{renames.get(k, k): v for k, v in kw.items()})
    logits, tokens = random_rows(seed, scale, torch.float64 if hf_on_logits else torch.float32)
    log_probs = logits.log_softmax(-1)  # (rows, V) what the lab's models return
    ours = PROCESSORS.build(name, **kw)(log_probs, tokens, tokens.size(1) + 1)
    hf = hf_warper(tokens, logits if hf_on_logits else log_probs)
    return ours.log_softmax(-1), hf.log_softmax(-1)


def assert_same(ours: Tensor, hf: Tensor) -> None:
    assert torch.equal(ours.isfinite(), hf.isfinite()), "kept sets differ"
    kept = hf.isfinite()
    assert torch.allclose(ours[kept], hf[kept], atol=1e-6, rtol=0)


@pytest.mark.parametrize("case", WARPERS, ids=lambda c: "-".join(map(str, (c[0], *c[1].values()))))
def test_each_warper_keeps_and_returns_what_hf_does_on_the_same_log_probs(case):
    kept = []
    for seed, scale in itertools.product(range(3), (1.0, 2.5, 4.0)):
        ours, hf = run_both(case, seed, scale, hf_on_logits=False)
        assert_same(ours, hf)
        kept.append(ours.isfinite().sum(-1))
    if case[0] not in ("temperature", "repetition_penalty"):  # a filter that filters something
        assert (torch.cat(kept) < 78).any()


@pytest.mark.parametrize(
    "case", [c for c in WARPERS if c[0] in SHIFT_INVARIANT], ids=lambda c: c[0]
)
def test_filters_on_log_probs_give_what_hf_gives_on_the_raw_logits(case):
    for seed, scale in itertools.product(range(3), (1.0, 4.0)):
        assert_same(*run_both(case, seed, scale, hf_on_logits=True))


def test_repetition_penalty_on_log_probs_raises_repeated_probabilities_to_the_penalty():
    log_probs = torch.tensor([[-1.0, -0.5, -2.0, float("-inf")]]).log_softmax(-1)  # (1, V)
    out = PROCESSORS.build("repetition_penalty", penalty=2.0)(log_probs, torch.tensor([[1, 1]]), 3)
    want = log_probs.clone()
    want[0, 1] *= 2.0  # p -> p**2, even where HF would divide a positive raw logit
    assert torch.equal(out, want)


@pytest.mark.parametrize(
    "spec, valid",
    [
        ({"name": "temperature", "temperature": 0.0}, "(0, inf)"),
        ({"name": "temperature", "temperature": -1.0}, "(0, inf)"),
        ({"name": "temperature", "temperature": "hot"}, "a number"),
        ({"name": "top_k", "top_k": -1}, ">= 0"),
        ({"name": "top_k", "top_k": 2.5}, ">= 0"),
        ({"name": "top_k", "top_k": 5, "min_tokens_to_keep": 0}, ">= 1"),
        ({"name": "top_p", "top_p": 0.0}, "(0, 1]"),
        ({"name": "top_p", "top_p": 1.5}, "(0, 1]"),
        ({"name": "top_p", "top_p": 0.9, "min_tokens_to_keep": 0}, ">= 1"),
        ({"name": "typical_p", "typical_p": 0.0}, "(0, 1]"),
        ({"name": "typical_p", "typical_p": 1.01}, "(0, 1]"),
        ({"name": "epsilon", "epsilon": -0.1}, "[0, 1)"),
        ({"name": "epsilon", "epsilon": 1.0}, "[0, 1)"),
        ({"name": "eta", "eta": -0.1}, "[0, 1)"),
        ({"name": "eta", "eta": 1.0}, "[0, 1)"),
        ({"name": "min_p", "min_p": -0.1}, "[0, 1)"),
        ({"name": "min_p", "min_p": 1.0}, "[0, 1)"),
        ({"name": "repetition_penalty", "penalty": 0.0}, "(0, inf)"),
        ({"name": "repetition_penalty", "penalty": -1.2}, "(0, inf)"),
    ],
    ids=lambda x: "-".join(map(str, x.values())) if isinstance(x, dict) else "",
)
def test_an_out_of_range_warper_is_one_line_naming_the_valid_range_when_the_search_is_built(
    spec, valid
):
    with pytest.raises(LabError) as e:
        SEARCHES.build("sample", processors=[spec])
    message = str(e.value)
    assert "\n" not in message and spec["name"] in message and valid in message
    key = "min_tokens_to_keep" if spec.get("min_tokens_to_keep") == 0 else list(spec)[1]
    assert key in message
    assert "set " in message or "e.g." in message  # the fix


@pytest.mark.parametrize(
    "spec",
    [
        {"name": "top_k", "top_k": 0},
        {"name": "top_p", "top_p": 1.0},
        {"name": "typical_p", "typical_p": 1.0},
        {"name": "epsilon", "epsilon": 0.0},
        {"name": "eta", "eta": 0.0},
        {"name": "min_p", "min_p": 0.0},
        {"name": "repetition_penalty", "penalty": 1.0},
        {"name": "temperature", "temperature": 1.0},
    ],
    ids=lambda s: s["name"],
)
def test_the_edge_of_each_range_switches_the_processor_off(spec):
    logits, tokens = random_rows(0, 3.0)
    log_probs = logits.log_softmax(-1)
    name, kw = spec["name"], {k: v for k, v in spec.items() if k != "name"}
    assert torch.equal(PROCESSORS.build(name, **kw)(log_probs, tokens, 7), log_probs)


# --- search=sample on an enumerable model ------------------------------------------------------


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_sample_frequencies_match_the_enumerated_processed_distribution(setting):
    stat, df = 0.0, 0
    out = drawn(setting)
    for i, nbest in zip(SENTENCES, out.nbest, strict=True):
        truth = processed_logprobs(setting, i)
        probs = torch.tensor(list(truth.values()), dtype=torch.float64).exp()
        assert float(probs.sum()) == pytest.approx(1.0, abs=1e-9)  # the outcomes are all
        if setting != "none":  # the setting changes the distribution somewhere
            plain = torch.tensor(list(processed_logprobs("none", i).values())).exp()
            assert 0.5 * float((probs - plain).abs().sum()) > 0.05
        index = {o: n for n, o in enumerate(truth)}
        counts = torch.zeros(len(truth))
        for h in nbest:
            counts[index[h.tokens]] += 1
        assert counts[probs == 0].sum() == 0, "drew an output the processors forbid"
        support = probs > 0
        s, d = chi_square(counts[support], probs[support] * len(nbest))
        stat, df = stat + s, df + d  # independent sentences: statistics and dofs add up
    p_value = float(torch.special.gammaincc(torch.tensor(df / 2.0), torch.tensor(stat / 2.0)))
    assert p_value > 0.001, (setting, stat, df)


@pytest.mark.parametrize("setting", ["none", "top_p", "chain_min_len"])
def test_each_sample_reports_its_model_logprob_and_its_sampling_logprob(setting):
    model, src, lens = enumerable()
    min_len = SETTINGS[setting][1]
    for i, nbest in zip(SENTENCES, drawn(setting).nbest, strict=True):
        assert len(nbest) == SAMPLES
        truth = processed_logprobs(setting, i)
        distinct = {h.tokens: h for h in nbest}.values()  # one per output, for the rescoring
        tgt = pad_sequence([torch.tensor(h.tokens) for h in distinct], batch_first=True)
        n = tgt.size(0)
        source, length = src[i : i + 1, : lens[i]].expand(n, -1), lens[i : i + 1].expand(n)
        with torch.no_grad():
            score = model.score(source, length, tgt)  # (n,)
        for h, want in zip(distinct, score.tolist(), strict=True):
            assert h.logprob == pytest.approx(want, abs=1e-5)
            assert h.score == pytest.approx(truth[h.tokens], abs=1e-5)
            assert h.info == {"sample_logprob": h.score}
            assert h.length == len(h.tokens) >= min(min_len, MAX_LEN)
            assert h.finished == (h.tokens[-1] == EOS_ID)
            assert h.finished or h.length == MAX_LEN  # only the limit cuts a sample here


def test_the_nbest_is_in_draw_order_not_ranked():
    nbest = drawn("none").nbest[0]
    scores = [h.score for h in nbest[:50]]
    assert scores != sorted(scores, reverse=True)


def test_a_row_the_processors_leave_no_token_stops_empty_and_unfinished():
    model, src, lens = enumerable()
    ban_all = [{"name": "ban_tokens", "ids": list(range(EOS_ID, VOCAB))}]
    out = SEARCHES.build("sample", num_samples=3, processors=ban_all)(model, src, lens)
    assert all(h.tokens == () and not h.finished and h.logprob == 0 for nb in out.nbest for h in nb)


# --- reproducibility ----------------------------------------------------------------------------

KEYS = [11, 22, 33, 44]


def samples(out) -> list[list[tuple[int, ...]]]:
    return [[h.tokens for h in nb] for nb in out.nbest]


@pytest.mark.parametrize("arch", ARCHS)
def test_a_sentence_gets_the_same_samples_alone_or_in_any_padded_batch(arch):
    model = tiny_model(arch, 12, seed=0, sharpen=1.5)
    src, lens = sources(5, 12, (6, 2, 9, 4))
    search = SEARCHES.build("sample", seed=7, **INVARIANCE)
    batched = search(model, src, lens, keys=KEYS)
    flipped = search(model, src.flip(0), lens.flip(0), keys=KEYS[::-1])
    assert samples(flipped)[::-1] == samples(batched)
    for i in range(len(KEYS)):
        alone = search(model, src[i : i + 1, : lens[i]], lens[i : i + 1], keys=KEYS[i : i + 1])
        assert samples(alone) == samples(batched)[i : i + 1]
        want = [h.logprob for h in batched.nbest[i]]
        assert [h.logprob for h in alone.nbest[0]] == pytest.approx(want, abs=1e-5)
    assert len({s for nb in samples(batched) for s in nb}) > len(KEYS)  # not all one output


def test_the_evaluators_batch_size_does_not_change_any_sentences_samples():
    model = tiny_model("transformer", 12, seed=0, sharpen=1.5)
    src, lens = sources(6, 12, (6, 2, 9, 4, 3, 7, 5, 2))
    pairs = [Pair(i, tuple(src[i, :n].tolist()), ()) for i, n in enumerate(lens.tolist())]
    keys = [example_key(f"example-{i}") for i in range(len(pairs))]
    search = SEARCHES.build("sample", seed=7, **INVARIANCE)
    assert search.inputs == ("keys", "constraints")  # its random streams; forced prefixes
    decoded = [
        decode_pairs(model, search, pairs, size, torch.device("cpu"), keys)[0] for size in (1, 3, 8)
    ]
    by_size = [[[h.tokens for h in out[i]] for i in range(len(pairs))] for out in decoded]
    assert by_size[0] == by_size[1] == by_size[2]


def test_the_seed_and_the_key_fix_the_samples():
    model, src, lens = enumerable()

    def run(seed: int, keys: list[int]) -> list[list[tuple[int, ...]]]:
        return samples(SEARCHES.build("sample", num_samples=8, seed=seed)(model, src, lens, keys))

    assert run(0, KEYS) == run(0, KEYS)
    assert run(1, KEYS) != run(0, KEYS)
    assert run(0, [5, *KEYS[1:]])[0] != run(0, KEYS)[0]
    assert run(0, [5, *KEYS[1:]])[1:] == run(0, KEYS)[1:]


@pytest.mark.parametrize("num_samples", [0, -2])
def test_fewer_than_one_sample_is_refused_in_one_line(num_samples):
    with pytest.raises(LabError, match=r"search\.num_samples must be >= 1") as e:
        SEARCHES.build("sample", num_samples=num_samples)
    assert "\n" not in str(e.value)
