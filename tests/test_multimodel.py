"""Decoding with more than one model: ``model=ensemble`` and ``model=fusion`` on tiny models,
checked against the single models and against enumeration."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

import lab.models  # noqa: F401  (registers the models)
import lab.search  # noqa: F401  (registers the searches)
from lab.checkpoint import save_model, tokenizer_fingerprint
from lab.data import Pair
from lab.errors import LabError
from lab.models.ensemble import Ensemble
from lab.models.fusion import Fusion
from lab.references import reference_rows, reference_scores
from lab.registry import MODELS, SEARCHES
from lab.search.contracts import call_search
from lab.tasks.base import Example
from tests.helpers.brute_force import all_outputs, enumerate_outputs, ranked
from tests.helpers.lab_process import lab, ok, tiny
from tests.helpers.models import ARCHS, TINY, sources, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")

VOCAB, MAX_LEN = 7, 5  # 341 outputs of <= 5 tokens
LENGTHS = (4, 2, 6, 3)
WORDS = (3, 4, 5, 6)
LIMIT = {"max_len_a": 0, "max_len_b": MAX_LEN}


def score_of(model, src, lens, i: int, tokens: tuple[int, ...]) -> float:
    with torch.no_grad():
        return float(
            model.score(src[i : i + 1, : lens[i]], lens[i : i + 1], torch.tensor([tokens]))
        )


@functools.cache
def pair(a: str, b: str) -> Ensemble:
    """An ensemble of two different tiny models (weights 1:2)."""
    return Ensemble([tiny_model(a, VOCAB, 0, 2.0), tiny_model(b, VOCAB, 1, 2.0)], [1.0, 2.0])


# --- ensemble ---------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_an_ensemble_of_a_model_with_itself_is_that_model(arch, search):
    model = tiny_model(arch, 12, seed=3)
    src, lens = sources(4, 12, LENGTHS)
    decode = SEARCHES.build(search, max_len_a=1.0, max_len_b=4)
    alone, twice = decode(model, src, lens).best(), decode(Ensemble([model, model]), src, lens)
    for a, b in zip(alone, twice.best(), strict=True):
        assert a.tokens == b.tokens
        assert a.logprob == pytest.approx(b.logprob, abs=1e-5)
    assert torch.allclose(
        model.score(src, lens, src), Ensemble([model, model]).score(src, lens, src), atol=1e-5
    )


@pytest.mark.parametrize("members", [("transformer", "gru"), ("lstm", "decoder_only")])
@pytest.mark.parametrize("search", ["exact", "beam"])
def test_ensemble_search_agrees_with_enumeration(members, search):
    model = pair(*members)
    src, lens = sources(11, VOCAB, LENGTHS)
    k = {"beam": {"beam_size": 341, "nbest": 3}, "exact": {"nbest": 3}}[search]
    out = SEARCHES.build(search, **k, **LIMIT)(model, src, lens)
    # beam also ends hypotheses unfinished at the limit: they compete too
    outputs = (
        all_outputs(VOCAB, MAX_LEN)
        if search == "exact"
        else list(enumerate_outputs(MAX_LEN, WORDS))
    )
    for i in range(len(LENGTHS)):
        want = ranked(model, src[i : i + 1, : lens[i]], lens[i : i + 1], outputs)[:3]
        assert [h.tokens for h in out.nbest[i]] == [w[2] for w in want], i
        for h, (_, logprob, _) in zip(out.nbest[i], want, strict=True):
            assert h.logprob == pytest.approx(logprob, abs=1e-5)


def test_ensemble_score_is_the_sum_of_its_step_log_probs():
    """``score`` by teacher forcing equals the sum of ``step``'s log-probs of the same tokens,
    and both equal the log of the weighted mean of the members' probabilities."""
    model = pair("transformer", "gru")
    src, lens = sources(5, VOCAB, LENGTHS)
    tgt = torch.tensor([[3, 4, 5, 2], [6, 2, 0, 0], [4, 4, 3, 2], [5, 6, 3, 2]])  # (B, T)
    state = model.init_state(model.encode(src, lens), 1)
    prev, total = torch.full((4,), model.bos_id), torch.zeros(4)
    for t in range(tgt.size(1)):
        lp, state = model.step(prev, state)  # (B, V)
        total += lp.gather(1, tgt[:, t : t + 1]).squeeze(1).masked_fill(tgt[:, t].eq(0), 0.0)
        prev = tgt[:, t]
    assert torch.allclose(model.score(src, lens, tgt), total, atol=1e-5)
    tok = [m.token_log_probs(src, lens, tgt) for m in model.members]  # (B, T) each
    w = torch.tensor([1 / 3, 2 / 3]).log()
    mixed = torch.logsumexp(torch.stack([w[0] + tok[0], w[1] + tok[1]]), 0)  # (B, T)
    assert torch.allclose(mixed.masked_fill(tgt.eq(0), 0.0).sum(1), total, atol=1e-5)


def test_ensemble_members_load_from_checkpoints_and_run_dirs(tmp_path):
    paths = []
    for i, arch in enumerate(("transformer", "gru")):
        model = tiny_model(arch, VOCAB, i)
        (tmp_path / arch).mkdir()
        save_model(model, arch, TINY[arch], tmp_path / arch / "model.pt", {})
        paths.append(tmp_path / arch)
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(f'{{"checkpoint": "{paths[1] / "model.pt"}"}}')
    built = MODELS.build("ensemble", VOCAB, VOCAB, members=[str(paths[0] / "model.pt"), str(run)])
    loaded = Ensemble([tiny_model("transformer", VOCAB, 0), tiny_model("gru", VOCAB, 1)])
    src, lens = sources(2, VOCAB, LENGTHS)
    assert torch.allclose(built.score(src, lens, src), loaded.score(src, lens, src), atol=1e-6)
    with pytest.raises(LabError, match="vocab 7/7, the run's tokenizer 9/9"):
        MODELS.build("ensemble", 9, 9, members=[str(paths[0])])


def test_members_of_another_tokenizer_are_refused_in_one_line(tmp_path):
    hashes = []
    for arch, text in (("transformer", "abc"), ("gru", "def")):
        (tmp_path / f"{text}.model").write_text(text)  # two tokenizer files of the same size
        tok = SimpleNamespace(path=tmp_path / f"{text}.model", vocab_size=VOCAB)
        hashes.append(tokenizer_fingerprint(tok)["sha256"])
        save_model(tiny_model(arch, VOCAB), arch, TINY[arch], tmp_path / f"{arch}.pt", {}, tok)
    with pytest.raises(LabError) as e:
        MODELS.build(
            "ensemble", 0, 0, members=[str(tmp_path / "transformer.pt"), str(tmp_path / "gru.pt")]
        )
    assert all(f"tokenizer {h}" in str(e.value) for h in hashes), str(e.value)
    assert "\n" not in str(e.value)
    with pytest.raises(LabError, match="model.members is empty"):
        MODELS.build("ensemble", 0, 0)
    with pytest.raises(LabError, match="one positive number per member"):
        Ensemble([tiny_model("gru", VOCAB)], [1.0, 2.0])


# --- fusion -----------------------------------------------------------------------------------


def fused(weight: float, arch: str = "transformer") -> Fusion:
    return Fusion(
        tiny_model(arch, VOCAB, 0, 2.0), tiny_model("decoder_only", VOCAB, 4, 2.0), weight
    )


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("search", ["greedy", "beam", "exact"])
def test_fusion_with_lm_weight_0_is_the_translation_model(arch, search):
    model = fused(0.0, arch)
    src, lens = sources(7, VOCAB, LENGTHS)
    decode = (
        SEARCHES.build(search, nbest=2, **LIMIT)
        if search != "greedy"
        else SEARCHES.build(search, **LIMIT)
    )
    alone = call_search(decode, model.members[0], src, lens)
    both = call_search(decode, model, src, lens)
    for a, b in zip(alone.nbest, both.nbest, strict=True):
        assert [h.tokens for h in a] == [h.tokens for h in b]
        for x, y in zip(a, b, strict=True):
            assert x.logprob == pytest.approx(y.logprob, abs=1e-5)
            assert x.score == pytest.approx(y.score, abs=1e-5)
            assert y.info["lm_logprob"] < 0 and y.info["fused_logprob"] == pytest.approx(
                x.logprob, abs=1e-5
            )


@pytest.mark.parametrize("search", ["greedy", "beam", "exact"])
def test_fused_scores_are_tm_plus_weighted_lm_computed_apart(search):
    w = 0.7
    model = fused(w)
    tm, lm = model.members
    src, lens = sources(8, VOCAB, LENGTHS)
    decode = SEARCHES.build(search, **LIMIT, **({} if search == "greedy" else {"nbest": 2}))
    out = call_search(decode, model, src, lens)
    # the LM reads an empty sentence as training encodes one: its EOS alone
    empty, one = torch.tensor([[lm.eos_id]]), torch.ones(1, dtype=torch.long)
    for i, hyps in enumerate(out.nbest):
        for h in hyps:
            want_tm = score_of(tm, src, lens, i, h.tokens)
            with torch.no_grad():
                want_lm = float(lm.score(empty, one, torch.tensor([h.tokens])))
            assert h.logprob == pytest.approx(want_tm, abs=1e-5)
            assert h.info["tm_logprob"] == pytest.approx(want_tm, abs=1e-5)
            assert h.info["lm_logprob"] == pytest.approx(want_lm, abs=1e-5)
            assert h.score == pytest.approx(want_tm + w * want_lm, abs=1e-4)
            assert h.info["fused_logprob"] == pytest.approx(want_tm + w * want_lm, abs=1e-4)


def test_exact_search_on_fusion_finds_the_best_fused_output():
    w = 0.5
    model = fused(w, "gru")
    src, lens = sources(9, VOCAB, LENGTHS)
    out = call_search(SEARCHES.build("exact", **LIMIT), model, src, lens)
    outputs = all_outputs(VOCAB, MAX_LEN)
    tgt = torch.nn.utils.rnn.pad_sequence([torch.tensor(o) for o in outputs], batch_first=True)
    for i, h in enumerate(out.best()):
        n = len(outputs)
        with torch.no_grad():
            tm = model.score(
                src[i : i + 1, : lens[i]].expand(n, -1), lens[i : i + 1].expand(n), tgt
            )
            total = tm + w * model.lm_score(tgt)  # (O,)
        assert h.tokens == outputs[int(total.argmax())]
        assert h.score == pytest.approx(float(total.max()), abs=1e-4)


class Chars:
    """Characters as ids of the tiny vocabulary (3..6), EOS 2."""

    eos_id = 2

    def encode(self, text: str) -> list[int]:
        return [3 + (ord(c) % (VOCAB - 3)) for c in text]


def test_references_get_the_fused_parts_that_outputs_get():
    """Under fusion a reference carries its fused score as an output does (``lab analyze
    --score fused_logprob`` compares the mode with it): ref_fused = ref_tm + w * ref_lm, the
    TM part being ``ref_logprob`` and the LM's its own score of the reference, no source."""
    model = fused(0.5).eval()
    examples = [Example("a", "x", "abc", ("abc", "b")), Example("b", "y", "cd", ("cdefg",))]
    pairs = [Pair(0, (4, 5, 2), ()), Pair(1, (6, 2), ())]
    rows = reference_rows(model, examples, pairs, Chars(), 2, torch.device("cpu"))
    best = reference_scores(model, examples, pairs, Chars(), 2, torch.device("cpu"))
    lm = model.members[1]
    for p in pairs:
        r, tokens = rows[p.index], torch.tensor([best[p.index][2]])
        assert r["ref_tm_logprob"] == pytest.approx(r["ref_logprob"], abs=1e-5)
        with torch.no_grad():
            alone = float(lm.score(torch.tensor([[2]]), torch.tensor([1]), tokens))
        assert r["ref_lm_logprob"] == pytest.approx(alone, abs=1e-5)
        fused_score = r["ref_tm_logprob"] + 0.5 * r["ref_lm_logprob"]
        assert r["ref_fused_logprob"] == pytest.approx(fused_score, abs=1e-5)
    plain = reference_rows(model.members[0], examples, pairs, Chars(), 2, torch.device("cpu"))
    assert set(plain[0]) == {"ref_logprob", "ref_length"}  # a plain model reports no parts


def test_fusion_needs_both_models():
    with pytest.raises(LabError, match="model.translation and model.lm"):
        MODELS.build("fusion", 0, 0, translation="x")


# --- through the pipeline ---------------------------------------------------------------------

MODEL_KEYS = (
    "model.d_model",
    "model.d_ff",
    "model.n_heads",
    "model.enc_layers",
    "model.dec_layers",
)


def predictions(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]


def test_lab_run_decodes_an_ensemble_and_a_fusion_of_run_directories(root, trained):
    """``model=ensemble`` of one run twice decodes as that run; ``model=fusion`` with weight 0
    too; both read the members from the run directory the tiny run wrote."""
    run = root / "warmup"
    no_model = tiny(eval__limit=1, **{k.replace(".", "__"): None for k in MODEL_KEYS})
    ens = ok(
        lab(
            [
                "run",
                *no_model,
                "model=ensemble",
                f"model.members=[{run},{run}]",
                f"hydra.run.dir={root / 'ens'}",
            ],
            root,
            trained,
        )
    )
    assert "training" not in ens.stdout
    fus = ["model=fusion", f"model.translation={run}", f"model.lm={run}", "model.lm_weight=0.0"]
    ok(lab(["run", *no_model, *fus, f"hydra.run.dir={root / 'fus'}"], root, trained))
    want = predictions(run)
    for name in ("ens", "fus"):
        got = predictions(root / name)
        assert [r["hyp"] for r in got] == [r["hyp"] for r in want]
        assert [r["logprob"] for r in got] == pytest.approx([r["logprob"] for r in want], abs=1e-5)


def test_lab_analyze_compares_fused_scores_under_fusion(root, trained):
    """A fusion's greedy and exact runs analyzed ``--score fused_logprob``: the rows are the
    fused scores each run wrote (the reference's included), the fused mode is never below
    greedy's output where proved, and a field a run lacks is refused in one line."""
    run = root / "warmup"
    no_model = tiny(eval__limit=4, **{k.replace(".", "__"): None for k in MODEL_KEYS})
    fus = ["model=fusion", f"model.translation={run}", f"model.lm={run}", "model.lm_weight=0.5"]
    dirs = {name: root / "fusion_analysis" / name for name in ("greedy", "exact")}
    for name, search in (("greedy", ["search=greedy"]), ("exact", ["search=exact"])):
        ok(lab(["run", *no_model, *fus, *search, f"hydra.run.dir={dirs[name]}"], root, trained))
    out = root / "fusion_analysis_out"
    args = ["analyze", str(dirs["greedy"]), "--exact", str(dirs["exact"]), "--out", str(out)]
    ok(lab([*args, "--score", "fused_logprob"], root, trained))
    sent = pd.read_csv(out / "analysis_sentences.csv").set_index("id")
    greedy = {r["id"]: r for r in predictions(dirs["greedy"])}
    exact = {r["id"]: r for r in predictions(dirs["exact"])}
    for i, row in sent.iterrows():
        assert row.hyp_logprob == pytest.approx(greedy[i]["fused_logprob"])
        assert row.exact_logprob == pytest.approx(exact[i]["fused_logprob"])
        assert row.ref_logprob == pytest.approx(exact[i]["ref_fused_logprob"])
        if row.proved_optimal:
            assert row.exact_logprob >= row.hyp_logprob - 1e-4
    proc = lab([*args[:-2], "--out", str(root / "x"), "--score", "lm_logprob_typo"], root, trained)
    assert proc.returncode != 0 and "have no 'lm_logprob_typo'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
