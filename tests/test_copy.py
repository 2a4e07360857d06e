"""Copy decoding (``model.copy=true``): a pointer-generator output layer on the Transformer and
the attentional RNNs, behind the same step interface as every other model.

p(w) = p_gen * p_vocab(w) + (1 - p_gen) * (attention on the source positions holding w): a
distribution over the target vocabulary, so every search decodes it unchanged, ``score`` is
exact, and a word the output layer never learned to generate can still be answered.
"""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path

import pytest
import torch
from torch import Tensor

import lab  # noqa: F401 - registers every plugin
from lab.data import Pair
from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.models.copy import CopyHead, check_copy_option
from lab.registry import MODELS, SEARCHES
from lab.train import batch_loss
from lab.vocab import EOS_ID, PAD_ID
from tests.helpers.lab_process import lab as run_lab
from tests.helpers.lab_process import tiny

pytestmark = pytest.mark.usefixtures("one_thread")

V = 16
TRANSFORMER = dict(d_model=16, n_heads=2, enc_layers=1, dec_layers=2, d_ff=32, copy=True)
COPY = {  # test name: (architecture, options)
    "transformer": ("transformer", TRANSFORMER),
    # an encoder over facts: random sources hold SEP_ID (4) here and there, so sentences have
    # different numbers of segments, some empty
    "transformer_facts": ("transformer", {**TRANSFORMER, "facts": True}),
    "gru": ("gru", dict(emb_dim=12, hidden=16, num_layers=1, attention="additive", copy=True)),
    "lstm": ("lstm", dict(emb_dim=12, hidden=16, num_layers=2, attention="general", copy=True)),
}
ARCHS = sorted(COPY)


def copy_model(arch: str, seed: int = 0) -> DecoderModel:
    """A tiny copy model with sharpened weights (fewer near-ties), in eval mode."""
    torch.manual_seed(seed)
    name, options = COPY[arch]
    model = MODELS.build(name, V, V, dropout=0.0, **options)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_(3.0)
    return model.eval()


def sources(lengths: tuple[int, ...] = (6, 2, 9, 4), seed: int = 1) -> tuple[Tensor, Tensor]:
    """Right-padded random sources ``(B, S)`` ending with EOS, and their lengths ``(B,)``."""
    g = torch.Generator().manual_seed(seed)
    src = torch.full((len(lengths), max(lengths)), PAD_ID)
    for b, n in enumerate(lengths):
        src[b, : n - 1] = torch.randint(3, V, (n - 1,), generator=g)
        src[b, n - 1] = EOS_ID
    return src, torch.tensor(lengths)


def score_tokens(model: DecoderModel, src: Tensor, lens: Tensor, tokens: list[tuple]) -> Tensor:
    """``model.score`` of one token sequence per sentence ``(B,)``."""
    tgt = torch.full((len(tokens), max(1, *map(len, tokens))), PAD_ID)
    for b, t in enumerate(tokens):
        tgt[b, : len(t)] = torch.tensor(t, dtype=torch.long)
    with torch.no_grad():
        return model.score(src, lens, tgt)


# --- the mixture ---------------------------------------------------------------------------
def test_the_mixture_adds_generating_and_copying_a_token_in_probability_space():
    """Against a float64 reference computed with probabilities: a token that is both in the
    vocabulary and in the source gets the *sum* of both routes, never the max."""
    torch.manual_seed(0)
    head = CopyHead(V, V, gate_dim=5).double()
    logits = torch.randn(2, 3, V, dtype=torch.float64)  # (B, N, V)
    ids = torch.tensor([[5, 7, 5, EOS_ID], [9, EOS_ID, PAD_ID, PAD_ID]])  # 5 twice in sentence 0
    mask = ids.ne(PAD_ID)  # (B, S)
    weights = torch.softmax(torch.randn(2, 3, 4, dtype=torch.float64), -1) * mask[:, None]
    weights = weights / weights.sum(-1, keepdim=True)  # (B, N, S): zero at padding
    gate_in = torch.randn(2, 3, 5, dtype=torch.float64)
    got = head(logits, weights, ids, gate_in, mask).exp().double()  # (B, N, V), float32 inside

    p_gen = torch.sigmoid(head.gate(gate_in))  # (B, N, 1)
    copied = torch.zeros(2, 3, V, dtype=torch.float64)
    for b in range(2):
        for i in range(4):
            copied[b, :, ids[b, i]] += weights[b, :, i]
    want = p_gen * torch.softmax(logits, -1) + (1 - p_gen) * copied
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    assert got[0, :, 5].gt(p_gen[0, :, 0] * torch.softmax(logits, -1)[0, :, 5]).all()
    assert got[0, :, 5].gt((1 - p_gen[0, :, 0]) * copied[0, :, 5]).all()


def test_log_probs_stay_finite_when_p_gen_underflows():
    """Computed in log space: p_gen = sigmoid(-200) is 0 in float32, yet a word absent from the
    source keeps its finite log-probability -200 + log p_vocab."""
    head = CopyHead(V, V, gate_dim=1)
    with torch.no_grad():
        head.gate.weight.zero_()
        head.gate.bias.fill_(-200.0)
    logits = torch.zeros(1, 1, V)  # p_vocab uniform
    ids, mask = torch.tensor([[5, EOS_ID]]), torch.tensor([[True, True]])
    with torch.no_grad():
        out = head(logits, torch.tensor([[[0.5, 0.5]]]), ids, torch.zeros(1, 1, 1), mask)[0, 0]
    assert out.isfinite().all()
    assert float(out[7]) == pytest.approx(-200.0 - torch.log(torch.tensor(V)).item(), abs=1e-3)
    assert float(out[5]) == pytest.approx(torch.log(torch.tensor(0.5)).item(), abs=1e-5)


# --- the decoding interface ----------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
def test_probabilities_sum_to_one_over_the_vocabulary_at_every_step(arch: str):
    """Beams fed different tokens, in a padded batch with an empty source (nothing to copy:
    the model only generates)."""
    model = copy_model(arch)
    src, lens = sources((5, 3, 1))
    src[2, 0], lens[2] = PAD_ID, 0  # an empty source
    state = model.init_state(model.encode(src, lens), beam_size=2)
    tokens = torch.full((6,), model.bos_id)
    with torch.no_grad():
        for _ in range(5):
            lp, state = model.step(tokens, state)  # (B*K, V)
            assert lp.isfinite().all()
            torch.testing.assert_close(lp.logsumexp(-1), torch.zeros(6), atol=1e-5, rtol=0)
            tokens = torch.randint(3, V, (6,))


@pytest.mark.parametrize("arch", ARCHS)
def test_step_log_probs_of_source_words_equal_score(arch: str):
    """Gold targets made of source words (each one both copyable and generable): the step
    log-probs summed over the target equal ``score`` to 1e-5, in a padded batch."""
    model = copy_model(arch)
    src, lens = sources((6, 3, 8))
    tgt = [tuple(src[b, : int(lens[b]) - 1].flip(0).tolist()) + (EOS_ID,) for b in range(3)]
    state = model.init_state(model.encode(src, lens), beam_size=1)
    prev, total = torch.full((3,), model.bos_id), torch.zeros(3)
    with torch.no_grad():
        for t in range(max(map(len, tgt))):
            lp, state = model.step(prev, state)  # (B, V)
            gold = torch.tensor([seq[t] if t < len(seq) else PAD_ID for seq in tgt])
            total += lp.gather(1, gold[:, None]).squeeze(1).masked_fill(gold.eq(PAD_ID), 0.0)
            prev = gold
    torch.testing.assert_close(total, score_tokens(model, src, lens, tgt), atol=1e-5, rtol=0)


SEARCH_SETTINGS = {
    "greedy": dict(max_len_b=8),
    "beam": dict(beam_size=4, nbest=3, max_len_b=8),
    "beam_lp": dict(beam_size=4, nbest=2, max_len_b=8),
    "exact": dict(max_len_a=0.0, max_len_b=4, budget=2000),
    "sample": dict(num_samples=3, max_len_b=8, seed=0),
}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("search", sorted(SEARCH_SETTINGS))
def test_every_search_reports_log_probs_that_equal_score(arch: str, search: str):
    """The searches run on a copy model unchanged: each hypothesis' reported log-prob is the
    model's ``score`` of its tokens, to 1e-5 plus the float32 rounding of a sum near -40."""
    model, (src, lens) = copy_model(arch), sources()
    out = SEARCHES.build(search, **SEARCH_SETTINGS[search])(model, src, lens)
    for rank in range(min(map(len, out.nbest))):
        hyps = [nbest[rank] for nbest in out.nbest]
        got = torch.tensor([h.logprob for h in hyps])
        want = score_tokens(model, src, lens, [h.tokens for h in hyps])
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-6)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_a_sentence_decodes_the_same_alone_and_in_a_padded_batch(arch: str, search: str):
    """Padded source positions get no copy attention: batching changes nothing. In float64, so
    that what is compared is the masking, not float32 rounding (sums over padded lengths
    round differently, and the sharpened weights amplify that past 1e-5)."""
    model, (src, lens) = copy_model(arch).double(), sources((3, 9, 5, 7))
    decode = SEARCHES.build(search, **SEARCH_SETTINGS[search])
    together = decode(model, src, lens).nbest
    for i in range(len(lens)):
        alone = decode(model, src[i : i + 1, : lens[i]], lens[i : i + 1]).nbest[0]
        assert [h.tokens for h in alone] == [h.tokens for h in together[i]]
        assert [h.logprob for h in alone] == pytest.approx(
            [h.logprob for h in together[i]], abs=1e-6
        )


# --- what copying is for -------------------------------------------------------------------
MARK, FILLERS = 4, range(5, 24)
SEEN, UNSEEN = range(24, 48), range(48, 64)  # names answered in training / only at test
TASK_V = 64


def copy_task(names: range, n: int, seed: int) -> list[Pair]:
    """Sources: 3-6 filler words with ``MARK name`` inserted anywhere; the answer: that name.

    Trained on ``SEEN`` names, tested on ``UNSEEN`` ones: no training target holds them, so
    the output layer never learns to generate them; only copying can answer them.
    """
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        words = [rng.choice(FILLERS) for _ in range(rng.randint(3, 6))]
        at, name = rng.randint(0, len(words)), rng.choice(names)
        pairs.append(Pair(i, (*words[:at], MARK, name, *words[at:], EOS_ID), (name, EOS_ID)))
    return pairs


def train_briefly(model: DecoderModel, pairs: list[Pair], steps: int, lr: float) -> None:
    """Teacher forcing with the lab's own loss (``batch_loss``), Adam, batches of 32."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    rng = random.Random(0)
    model.train()
    for _ in range(steps):
        loss, _, n = batch_loss(model, rng.sample(pairs, 32), 0.0, torch.device("cpu"))
        opt.zero_grad()
        (loss / n).backward()
        opt.step()
    model.eval()


def accuracy(model: DecoderModel, pairs: list[Pair]) -> float:
    """Exact match of greedy outputs."""
    src = torch.nn.utils.rnn.pad_sequence([torch.tensor(p.src) for p in pairs], batch_first=True)
    lens = torch.tensor([len(p.src) for p in pairs])
    out = SEARCHES.build("greedy", max_len_b=3)(model, src, lens)
    return sum(nb[0].tokens == p.tgt for nb, p in zip(out.nbest, pairs, strict=True)) / len(pairs)


TASK_MODELS = {  # architecture: (options, learning rate, training steps)
    "transformer": (dict(d_model=32, n_heads=2, enc_layers=1, dec_layers=1, d_ff=64), 3e-3, 150),
    "gru": (dict(emb_dim=32, hidden=32, num_layers=1, attention="dot"), 1e-2, 200),
}
TRAIN, SEEN_TEST = copy_task(SEEN, 2000, seed=0), copy_task(SEEN, 100, seed=1)
UNSEEN_TEST = copy_task(UNSEEN, 100, seed=2)


@functools.cache
def trained(arch: str, copy: bool) -> DecoderModel:
    """``arch`` with or without copying, trained a few hundred steps on the seen names (a few
    seconds)."""
    options, lr, steps = TASK_MODELS[arch]
    torch.manual_seed(0)
    model = MODELS.build(arch, TASK_V, TASK_V, dropout=0.0, copy=copy, **options)
    train_briefly(model, TRAIN, steps, lr)
    return model


@pytest.mark.parametrize("arch", sorted(TASK_MODELS))
def test_only_the_copy_model_answers_names_it_never_saw_as_a_target(arch: str):
    copying, plain = trained(arch, copy=True), trained(arch, copy=False)
    assert accuracy(copying, SEEN_TEST) >= 0.9
    assert accuracy(copying, UNSEEN_TEST) >= 0.9
    assert accuracy(plain, UNSEEN_TEST) <= 0.05


def test_the_plain_model_fails_for_want_of_an_output_row_not_of_training():
    """The plain Transformer, trained alike, answers the names it saw as targets."""
    assert accuracy(trained("transformer", copy=False), SEEN_TEST) >= 0.9


# --- bad input -----------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_copy_without_attention_names_the_architectures_that_copy(cell: str):
    with pytest.raises(LabError) as e:
        MODELS.build(cell, V, V, emb_dim=8, hidden=8, attention="none", copy=True)
    message = str(e.value)
    assert "\n" not in message and "model.attention=none" in message
    assert "copy is supported by transformer, gru, or lstm" in message


@pytest.mark.parametrize("name", ["decoder_only", "hf", "lstm"])
def test_the_config_check_refuses_copy_where_no_architecture_supports_it(name: str):
    options = {"copy": True, "attention": "none"} if name == "lstm" else {"copy": True}
    with pytest.raises(LabError, match=f"model={name} .*copy is supported by transformer"):
        check_copy_option(name, options)
    check_copy_option(name, {"copy": False})  # the default passes everywhere
    check_copy_option("transformer", {"copy": True})


@pytest.mark.parametrize("model", ["lstm", "decoder_only"])
def test_lab_run_refuses_copy_before_training_and_records_no_completed_run(
    model: str, root: Path, cache: Path
):
    """``++model.copy=true`` (adds the key, or sets it where the model's config has one) on a
    model that cannot copy: one error line, exit status 2, no checkpoint, no completed run."""
    sizes = dict.fromkeys(("model.d_model", "model.d_ff", "model.n_heads"), None)
    layers = dict.fromkeys(("model.enc_layers", "model.dec_layers"), None)
    overrides = tiny(**{k.replace(".", "__"): v for k, v in {**sizes, **layers}.items()})
    run_dir = root / f"copy-{model}"
    args = ["run", *overrides, f"model={model}", "++model.copy=true", f"hydra.run.dir={run_dir}"]
    proc = run_lab(args, root, cache)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "copy" in errors[0], proc.stderr[-2000:]
    assert "copy is supported by transformer, gru, or lstm" in errors[0]
    assert "training" not in proc.stdout  # refused by the config check, before anything else
    assert not list(cache.glob("checkpoints/*"))
    results = run_dir / "results.json"
    assert not results.exists() or json.loads(results.read_text())["status"] != "completed"
