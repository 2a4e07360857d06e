"""CTranslate2 parity: the lab's Transformer converted weight by weight computes the same
log-probs in CTranslate2, and ``search=beam_ct2`` returns what ``translate_batch`` returns.

Random models are made informative for search: a constant feature (a final-norm channel with
zero gain and unit bias) gives each output token a bias through its output column, which keeps
``<pad>``/``<s>`` out (the lab never generates them, CTranslate2 would) and, for EOS, spreads
the output lengths from 1 to the limit.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import lab.models  # noqa: F401  (registration)
import lab.search  # noqa: F401
from lab.data import pad
from lab.errors import LabError
from lab.registry import MODELS, SEARCHES
from lab.vocab import BOS_ID, EOS_ID, PAD_ID
from tests.helpers.lab_process import lab as run_lab
from tests.helpers.lab_process import ok, tiny

ct2 = pytest.importorskip("ctranslate2")

from lab.ct2.convert import check_convertible, convert, to_ids, to_tokens  # noqa: E402
from lab.ct2.options import translate_options  # noqa: E402

SRC_V, TGT_V, MAX_LEN = 40, 30, 20


def random_model(pre_norm: bool, positions: str, eos_bias: float, seed: int = 0):
    torch.manual_seed(seed)
    m = MODELS.build(
        "transformer", src_vocab_size=SRC_V, tgt_vocab_size=TGT_V, d_model=32, n_heads=4,
        enc_layers=2, dec_layers=2, d_ff=64, dropout=0.0, tie_embeddings=False,
        pre_norm=pre_norm, positions=positions,
    ).eval()  # fmt: skip
    last = m.dec_norm if pre_norm else m.decoder[-1].r3.norm
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(2.0)  # sharper distributions: outputs depend on the source
        last.weight[0], last.bias[0] = 0.0, 1.0  # channel 0 is the constant 1
        m.out.weight[:, 0] = 0.0
        m.out.weight[[PAD_ID, BOS_ID], :] = 0.0
        m.out.weight[[PAD_ID, BOS_ID], 0] = -1e4
        m.out.weight[EOS_ID, 0] = eos_bias
    return m


def sources(n: int = 40, seed: int = 1) -> list[tuple[int, ...]]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 12, (n,), generator=g)
    return [(*torch.randint(4, SRC_V, (int(k),), generator=g).tolist(), EOS_ID) for k in lengths]


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory, one_thread):
    """(lab model, CTranslate2 translator) for each architecture variant, converted once."""
    out = {}
    for pre_norm, positions in ((True, "sinusoidal"), (False, "learned")):
        for eos_bias in (0.0, 3.0):
            m = random_model(pre_norm, positions, eos_bias)
            path = convert(m, tmp_path_factory.mktemp("ct2") / "model")
            out[pre_norm, positions, eos_bias] = m, ct2.Translator(str(path), intra_threads=1)
    return out


VARIANTS = [(True, "sinusoidal"), (False, "learned")]


@pytest.mark.parametrize("variant", VARIANTS, ids=["pre_norm-sinusoidal", "post_norm-learned"])
def test_converted_model_scores_every_token_as_the_lab_model(converted, variant):
    model, translator = converted[(*variant, 3.0)]
    srcs = sources(8)
    g = torch.Generator().manual_seed(2)
    targets = [tuple(torch.randint(3, TGT_V, (int(k),), generator=g).tolist()) for k in range(1, 9)]
    scored = translator.score_batch([to_tokens(s) for s in srcs], [to_tokens(t) for t in targets])
    for src, tgt, res in zip(srcs, targets, scored, strict=True):
        s, n = pad([src])
        prev = torch.tensor([[BOS_ID, *tgt]])  # CTranslate2 scores the target and then EOS
        with torch.inference_mode():
            lp = F.log_softmax(model(s, n, prev).float(), -1)[0]  # (T+1, V)
        mine = [float(lp[i, t]) for i, t in enumerate((*tgt, EOS_ID))]
        assert res.log_probs == pytest.approx(mine, abs=1e-4)


SETTINGS = [
    {},
    {"beam_size": 5},
    {"beam_size": 4, "alpha": 0.0},
    {"beam_size": 3, "patience": 2.0},
    {"beam_size": 5, "nbest": 3},
    {"beam_size": 1},
]


@pytest.mark.parametrize("variant", VARIANTS, ids=["pre_norm-sinusoidal", "post_norm-learned"])
@pytest.mark.parametrize("eos_bias", [0.0, 3.0])
@pytest.mark.parametrize("over", SETTINGS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_beam_ct2_returns_what_translate_batch_returns(converted, variant, eos_bias, over):
    """Every n-best list identical, scores (length-normalized as CTranslate2's) to 1e-4 of
    the score; ``min_len=1``: no EOS ban (see the min-length test for why)."""
    model, translator = converted[(*variant, eos_bias)]
    srcs = sources()
    search = SEARCHES.build("beam_ct2", max_len_b=MAX_LEN, **{"min_len": 1, **over})
    src, lengths = pad(srcs)
    with torch.inference_mode():
        mine = search(model, src, lengths).nbest
    theirs = translator.translate_batch(
        [to_tokens(s) for s in srcs], **translate_options(search.settings)
    )
    for hyps, res in zip(mine, theirs, strict=True):
        assert [tuple(t for t in h.tokens if t != EOS_ID) for h in hyps] == [
            to_ids(h) for h in res.hypotheses
        ]
        for h, score in zip(hyps, res.scores, strict=True):
            assert h.score == pytest.approx(score, abs=1e-4, rel=1e-4)


def test_a_min_length_renormalizes_in_ctranslate2_and_not_in_the_lab(converted):
    """CTranslate2 bans EOS before ``min_decoding_length`` in the logits, before the softmax,
    so its first-step log-prob is renormalized over the other tokens; the lab bans it in the
    log-probs and reports the model's own. Same tokens, scores apart by exactly
    ``log(1 - p(EOS at step 1))``."""
    model, translator = converted[True, "sinusoidal", 3.0]
    srcs = sources(12)
    search = SEARCHES.build("beam_ct2", max_len_b=MAX_LEN, beam_size=1, min_len=2, alpha=0.0)
    src, lengths = pad(srcs)
    with torch.inference_mode():
        mine = search(model, src, lengths).best()
        first = F.log_softmax(model(src, lengths, torch.full((len(srcs), 1), BOS_ID)), -1)
    theirs = translator.translate_batch(
        [to_tokens(s) for s in srcs], **translate_options(search.settings)
    )
    p_eos = first[:, 0, EOS_ID].exp()  # (B,)
    assert float(p_eos.max()) > 0.1  # the ban matters in this model
    for h, res, p in zip(mine, theirs, p_eos.tolist(), strict=True):
        assert tuple(t for t in h.tokens if t != EOS_ID) == to_ids(res.hypotheses[0])
        assert res.scores[0] == pytest.approx(h.logprob - math.log1p(-p), abs=1e-4)


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ({"max_len_a": 1.5}, "max_len_a"),
        ({"processors": [{"name": "no_repeat_ngram", "n": 3}]}, "processors"),
        ({"stop_rule": "heuristic"}, "stop_rule"),
        ({"penalty": "gnmt"}, "penalty"),
        ({"refill": False}, "refill"),
        ({"stop_rule": "top_beam_ever", "alpha": 1.0}, "stop_rule"),
    ],
)
def test_settings_without_a_ctranslate2_equivalent_are_refused_in_one_line(setting, key):
    base = {"beam_size": 5, "max_len_a": 0, "max_len_b": 256, "min_len": 2, "alpha": 1.0}
    with pytest.raises(LabError, match=f"search.{key}=.*no CTranslate2 equivalent") as e:
        translate_options({**base, **setting})
    assert "\n" not in str(e.value)


def test_only_a_plain_transformer_converts():
    gru = MODELS.build("gru", src_vocab_size=SRC_V, tgt_vocab_size=TGT_V, emb_dim=8, hidden=8)
    with pytest.raises(LabError, match="only model=transformer converts"):
        check_convertible(gru)
    copy = MODELS.build(
        "transformer", src_vocab_size=SRC_V, tgt_vocab_size=TGT_V, d_model=16, n_heads=2,
        enc_layers=1, dec_layers=1, d_ff=16, copy=True,
    )  # fmt: skip
    with pytest.raises(LabError, match="copy decoder"):
        check_convertible(copy)
    facts = MODELS.build(
        "transformer", src_vocab_size=SRC_V, tgt_vocab_size=TGT_V, d_model=16, n_heads=2,
        enc_layers=1, dec_layers=1, d_ff=16, facts=True,
    )  # fmt: skip
    with pytest.raises(LabError, match="model.facts=true"):
        check_convertible(facts)


def test_lab_ct2_compares_a_run_end_to_end(root: Path, trained: Path):
    run = root / "beam_ct2"
    ok(run_lab(["run", *tiny(), "search=beam_ct2", f"hydra.run.dir={run}"], root, trained))
    proc = ok(run_lab(["ct2", str(run), "--out", str(root / "cmp")], root, trained))
    figures = json.loads((root / "cmp" / "ct2.json").read_text())
    assert f"identical {figures['identical']:.2%} of 10" in proc.stdout
    assert figures["ct2_options"]["beam_size"] == 2  # the preset's default
    diffs = [json.loads(x) for x in (root / "cmp" / "ct2_diff.jsonl").read_text().splitlines()]
    assert figures["identical"] == pytest.approx(1 - len(diffs) / 10)
    assert all(d["lab"] != d["ct2"] for d in diffs)
    # the tiny model is barely trained: it gives <s>/<pad> mass, which CTranslate2 may emit
    assert figures["differ_with_ct2_special"] == sum(d["ct2_special"] for d in diffs)


def test_lab_ct2_refuses_a_run_without_beam_search(root: Path, trained: Path):
    run = root / "greedy"
    ok(run_lab(["run", *tiny(), "search=greedy", f"hydra.run.dir={run}"], root, trained))
    proc = run_lab(["ct2", str(run)], root, trained)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "not a beam search" in proc.stderr


def test_int8_against_float32_decodes_the_run_both_ways(root: Path, trained: Path):
    import subprocess
    import sys

    from tests.helpers.lab_process import lab_env

    run = root / "beam_for_int8"
    ok(run_lab(["run", *tiny(), "search=beam", f"hydra.run.dir={run}"], root, trained))
    out = root / "int8.json"
    args = [sys.executable, "-m", "lab.bench.int8", str(run), "--out", str(out), "--repeats", "2"]
    proc = subprocess.run(
        args, env=lab_env(root, trained), cwd=root, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    assert res["n"] == 10 and len(res["seconds"]["fp32"]) == len(res["seconds"]["int8"]) == 2
    assert res["int8_speedup"] == pytest.approx(res["median_s"]["fp32"] / res["median_s"]["int8"])
    fp32 = json.loads((run / "results.json").read_text())["metrics"]
    assert res["bleu"]["fp32"] == pytest.approx(fp32["bleu"], abs=1e-6)  # the run, decoded again
    assert 0.0 <= res["identical"] <= 1.0 and res["max_logprob_gap_identical"] >= 0.0


def test_sorted_batches_against_file_order_decode_the_same_outputs(root: Path, trained: Path):
    import subprocess
    import sys

    from tests.helpers.lab_process import lab_env

    run = root / "beam_for_batching"
    ok(run_lab(["run", *tiny(), "search=beam", f"hydra.run.dir={run}"], root, trained))
    out = root / "batching.json"
    args = [sys.executable, "-m", "lab.bench.batching", str(run), "--out", str(out)]
    args += ["--batch-size", "3"]
    env = lab_env(root, trained)
    proc = subprocess.run(args, env=env, cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    assert res["n"] == 10 and res["identical"] == 1.0  # batch invariance
    assert len(res["seconds"]["sorted"]) == len(res["seconds"]["file_order"]) == 2
    speedup = res["median_s"]["file_order"] / res["median_s"]["sorted"]
    assert res["sorting_speedup"] == pytest.approx(speedup)
