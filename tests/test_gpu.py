"""The core invariants on the decode device: searches against enumeration, batch invariance,
the scores searches report, sampling frequencies and a training that resumes.

Every test takes a ``device``: ``cpu`` in the normal suite (which shows the tests themselves
are sound) and ``cuda`` under ``pytest -m gpu`` (skipped where torch sees no CUDA device).
The truth (enumeration, teacher forcing, the processed sampling distribution) is computed on
the CPU; the searches run on the device.

What is asserted on CUDA, where kernels are not bit-exact across batch shapes: identical
tokens, and float32 log-probs within ``ATOL`` (1e-4) of the CPU truth and of the same sentence
decoded alone. ``sample`` draws from per-sentence CPU generators (``lab.search.rng``), so a
device draws the same uniforms as the CPU: its samples are the CPU's except where a token's
cumulative probability differs across a uniform by less than the kernels' rounding;
``stochastic_beam`` draws its vocabulary-wide noise from per-sentence generators on the device.
"""

from __future__ import annotations

import copy

import pytest
import torch

import lab  # noqa: F401  (registers the searches and models)
from lab.data import Pair
from lab.evaluate import decode_pairs
from lab.registry import SEARCHES
from lab.search.rng import example_key
from lab.train import TrainSettings
from lab.trainer import Trainer
from tests.helpers.brute_force import all_outputs, enumerate_outputs, ranked
from tests.helpers.devices import ATOL, DEVICES, grid
from tests.helpers.models import ARCHS, sources, tiny_model
from tests.helpers.sampling import (
    INVARIANCE,
    SENTENCES,
    SETTINGS,
    chi_square,
    drawn,
    enumerable,
    processed_logprobs,
)

VOCAB, MAX_LEN, LENGTHS = 7, 5, (4, 2, 6, 3)


CPU_ARCHS = ("transformer", "gru")  # the CPU twins: enough to show a test is sound, and fast


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(request.param)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def on(device: torch.device, model, *tensors: torch.Tensor):
    """A copy of ``model`` and ``tensors`` on ``device`` (the CPU originals stay the truth)."""
    return (copy.deepcopy(model).to(device), *(t.to(device) for t in tensors))


# --- searches against enumeration ---------------------------------------------------------------

EXACT = {"exact": {"nbest": 3}, "best_first": {"nbest": 3}}
# a beam as wide as the space (2 words, 4 tokens: 31 outputs) finds the exhaustive best
COVERING = {
    "beam": {"beam_size": 32, "stop_rule": "canonical"},
    "beam_lp": {"beam_size": 32, "penalty": "word_reward", "alpha": 0.7, "stop_rule": "canonical"},
}
SEARCH_CASES = [(a, s) for a in ARCHS for s in sorted(EXACT | COVERING)]


@grid("arch,search", [c for c in SEARCH_CASES if c[0] in CPU_ARCHS], SEARCH_CASES)
def test_searches_find_the_enumerated_best_on_the_device(dev, arch, search):
    """Exact searches: the enumerated 3-best; beams covering the space: the exhaustive best."""
    covering = search in COVERING
    vocab, max_len = (5, 4) if covering else (VOCAB, MAX_LEN)
    model = tiny_model(arch, vocab, seed=3 if covering else 0)
    src, lens = sources(10, vocab, LENGTHS)
    kw = {**EXACT, **COVERING}[search]
    dmodel, dsrc, dlens = on(torch.device(dev), model, src, lens)
    out = SEARCHES.build(search, max_len_a=0, max_len_b=max_len, **kw)(dmodel, dsrc, dlens)
    # the space: finished outputs, and (for beams) word strings cut at the limit
    outputs = list(enumerate_outputs(max_len)) if covering else all_outputs(vocab, max_len)
    for i in range(len(LENGTHS)):
        want = ranked(
            model, src[i : i + 1, : lens[i]], lens[i : i + 1], outputs, kw.get("alpha", 0)
        )
        got = out.nbest[i] if not covering else out.nbest[i][:1]
        want = want[: len(got)]
        assert [h.tokens for h in got] == [w[2] for w in want], i
        assert [h.score for h in got] == pytest.approx([w[0] for w in want], abs=ATOL)
        assert [h.logprob for h in got] == pytest.approx([w[1] for w in want], abs=ATOL)


@grid("arch", [(a,) for a in CPU_ARCHS], [(a,) for a in ARCHS])
def test_beam_of_one_is_greedy_on_the_device(dev, arch):
    model, src, lens = on(
        torch.device(dev), tiny_model(arch, 12, seed=1), *sources(1, 12, (6, 2, 9, 4))
    )
    greedy = SEARCHES.build("greedy", max_len_b=12)(model, src, lens).best()
    beam = SEARCHES.build("beam", beam_size=1, max_len_b=12)(model, src, lens).best()
    assert [h.tokens for h in beam] == [h.tokens for h in greedy]
    assert [h.logprob for h in beam] == pytest.approx([h.logprob for h in greedy], abs=ATOL)


# --- batch invariance and reported scores -------------------------------------------------------

BATCHED = {
    "greedy": {},
    "beam": {"beam_size": 3, "nbest": 3},
    "sample": {"num_samples": 4, "seed": 3},
    "stochastic_beam": {"beam_size": 3, "seed": 3},
}


BATCH_CASES = [(a, s) for a in ARCHS for s in sorted(BATCHED)]


@grid("arch,search", [c for c in BATCH_CASES if c[0] in CPU_ARCHS], BATCH_CASES)
def test_a_sentence_decodes_the_same_alone_and_in_a_padded_batch(dev, arch, search):
    model = tiny_model(arch, 12, seed=0, sharpen=1.5)
    src, lens = sources(5, 12, (3, 9, 5, 7))
    model, src, lens = on(torch.device(dev), model, src, lens)
    decode, keys = SEARCHES.build(search, max_len_b=10, **BATCHED[search]), [11, 22, 33, 44]
    extra = (lambda ks: {"keys": ks}) if "keys" in getattr(decode, "inputs", ()) else (lambda _: {})
    together = decode(model, src, lens, **extra(keys)).nbest
    for i in range(len(lens)):
        alone = decode(model, src[i : i + 1, : lens[i]], lens[i : i + 1], **extra(keys[i : i + 1]))
        assert [h.tokens for h in alone.nbest[0]] == [h.tokens for h in together[i]]
        want = [h.logprob for h in together[i]]
        assert [h.logprob for h in alone.nbest[0]] == pytest.approx(want, abs=ATOL)
    # every reported log-prob is the teacher-forced score of its tokens, on the device
    for i, nbest in enumerate(together):
        for h in nbest:
            tgt = torch.tensor([h.tokens or (model.eos_id,)], device=src.device)
            with torch.inference_mode():
                scored = float(model.score(src[i : i + 1, : lens[i]], lens[i : i + 1], tgt))
            assert h.logprob == pytest.approx(scored, abs=ATOL) or not h.tokens


def test_the_evaluators_batch_size_does_not_change_any_samples_on_the_device(device):
    model = tiny_model("transformer", 12, seed=0, sharpen=1.5).to(device)
    src, lens = sources(6, 12, (6, 2, 9, 4, 3, 7, 5, 2))
    pairs = [Pair(i, tuple(src[i, :n].tolist()), ()) for i, n in enumerate(lens.tolist())]
    keys = [example_key(f"example-{i}") for i in range(len(pairs))]
    search = SEARCHES.build("sample", seed=7, **INVARIANCE)
    decoded = [decode_pairs(model, search, pairs, size, device, keys)[0] for size in (1, 3, 8)]
    by_size = [[[h.tokens for h in out[i]] for i in range(len(pairs))] for out in decoded]
    assert by_size[0] == by_size[1] == by_size[2]


# --- sampling frequencies --------------------------------------------------------------------

GPU_SETTINGS = sorted(SETTINGS)
CPU_SETTINGS = ["top_p"]  # the CPU twin of each setting runs in tests/test_sampling.py


@grid("setting", [(s,) for s in CPU_SETTINGS], [(s,) for s in GPU_SETTINGS])
def test_sample_frequencies_on_the_device_match_the_enumerated_distribution(dev, setting):
    """The chi-square test of ``tests/test_sampling.py`` with the draws made on ``dev``; the
    per-sentence generators give the CPU's uniforms, so nearly every sample is the CPU's."""
    specs, min_len = SETTINGS[setting]
    model, src, lens = enumerable()
    rows = list(SENTENCES)
    dmodel, dsrc, dlens = on(torch.device(dev), model, src[rows], lens[rows])
    limits = {"max_len_a": 0, "max_len_b": 4, "min_len": min_len}
    search = SEARCHES.build("sample", num_samples=10_000, processors=specs, seed=0, **limits)
    out = search(dmodel, dsrc, dlens, keys=[100 + i for i in rows])
    stat, df = 0.0, 0
    for i, nbest in zip(SENTENCES, out.nbest, strict=True):
        truth = processed_logprobs(setting, i)
        probs = torch.tensor(list(truth.values()), dtype=torch.float64).exp()
        index = {o: n for n, o in enumerate(truth)}
        counts = torch.zeros(len(truth))
        for h in nbest:
            counts[index[h.tokens]] += 1
        assert counts[probs == 0].sum() == 0, "drew an output the processors forbid"
        s, d = chi_square(counts[probs > 0], probs[probs > 0] * len(nbest))
        stat, df = stat + s, df + d
    p_value = float(torch.special.gammaincc(torch.tensor(df / 2.0), torch.tensor(stat / 2.0)))
    assert p_value > 0.001, (setting, stat, df)
    cpu = [h.tokens for nb in drawn(setting).nbest for h in nb]
    here = [h.tokens for nb in out.nbest for h in nb]
    same = sum(a == b for a, b in zip(cpu, here, strict=True)) / len(cpu)
    assert same >= (1.0 if dev == "cpu" else 0.99), same


# --- training and resuming -------------------------------------------------------------------


def _train(device: torch.device, ckpt_dir, steps: int) -> dict[str, torch.Tensor]:
    """A tiny Transformer (dropout on: the random state matters) trained to ``steps`` on
    ``device``, resuming from ``ckpt_dir/state.pt`` when one is there; its final weights."""
    pairs = [Pair(i, [4 + i % 5, 5, 6], [7, 8 + i % 3, 2]) for i in range(40)]
    torch.manual_seed(0)
    model = lab.registry.MODELS.build(
        "transformer", 12, 12, d_model=16, n_heads=2, enc_layers=1, dec_layers=1, d_ff=32,
        dropout=0.1,
    )  # fmt: skip
    settings = TrainSettings(max_steps=steps, max_epochs=0, batch_tokens=64, save_every=1)
    meta = Trainer(model, pairs, pairs[:4], settings, 0, device, ckpt_dir, None).run()
    assert meta["steps"] == steps
    assert all(p.device.type == device.type for p in model.parameters())
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


@pytest.fixture
def deterministic():
    """Deterministic kernels where torch has them (a warning where it has not): a resumed
    training can only equal an uninterrupted one if both sum in the same order. On CUDA,
    cuBLAS also needs ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (``reports/bench/gpu_check.sh``)."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    yield
    torch.use_deterministic_algorithms(before)


def test_a_tiny_training_on_the_device_resumes_where_it_stopped(device, tmp_path, deterministic):
    """Dropout draws from the device's generator, so its state must be saved and restored with
    the CPU's for a resumed training to continue the uninterrupted one."""
    straight = _train(device, tmp_path / "straight", 6)
    _train(device, tmp_path / "resumed", 3)
    resumed = _train(device, tmp_path / "resumed", 6)  # resumes at step 3
    exact = device.type == "cpu"  # CUDA kernels may still sum in another order
    for name, value in straight.items():
        torch.testing.assert_close(
            resumed[name], value, atol=0 if exact else 1e-5, rtol=0 if exact else 1e-4, msg=name
        )
