"""Noisy-channel reranking, ``search=rerank``: an inner search's n-best lists re-scored by a
weighted sum of scorers. Checked on tiny random models: its features against independent
recomputation (the direct model's, a reverse model's and an LM's ``score`` one sentence at a
time), its ranking against brute force over the n-best, its grid tuning against brute force
over the grid, its configs composed by Hydra, its bad input refused in one line, and a ``lab
run`` that tunes the weights on the validation split and records them."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import lab  # noqa: F401  (registers the searches and scorers)
from lab.checkpoint import save_model, tokenizer_fingerprint
from lab.errors import LabError
from lab.pipeline import build_search
from lab.registry import SEARCHES
from lab.search.contracts import call_search
from lab.search.rerank.tuning import Featurized
from lab.search.types import Hypothesis
from tests.helpers.configs import composed
from tests.helpers.lab_process import lab as run_lab
from tests.helpers.lab_process import ok, tiny
from tests.helpers.models import TINY, sources, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")

VOCAB = 9
BEAM = {"name": "beam", "beam_size": 6, "nbest": 6, "max_len_a": 0.0, "max_len_b": 6}
SAMPLE = {"name": "sample", "num_samples": 12, "max_len_a": 0.0, "max_len_b": 6, "seed": 3}
KEYS = [11, 12, 13, 14]


@pytest.fixture(scope="module")
def models():
    """The decoding model (de->en, say), a reverse model (en->de) and a target-side LM."""
    return (
        tiny_model("transformer", VOCAB, 0, 2.0),
        tiny_model("gru", VOCAB, 5, 2.0),
        tiny_model("decoder_only", VOCAB, 6, 2.0),
    )


@pytest.fixture(scope="module")
def src():
    return sources(1, VOCAB, (4, 2, 5, 3))


def rerank(models, **kw):
    _, reverse, lm = models
    kw.setdefault("candidates", BEAM)
    kw.setdefault(
        "scorers",
        ["direct", {"name": "channel", "model": reverse}, {"name": "lm", "model": lm}, "length"],
    )
    return SEARCHES.build("rerank", **kw)


def inner(models, src, cfg=BEAM) -> list[list[Hypothesis]]:
    search = SEARCHES.build(cfg["name"], **{k: v for k, v in cfg.items() if k != "name"})
    return call_search(search, models[0], *src, keys=KEYS).nbest


def score(model, src_tokens: tuple[int, ...], tgt_tokens: tuple[int, ...]) -> float:
    """``model.score`` of one (source, target) pair, unpadded; an empty source is one padding
    token of length 0."""
    src = torch.tensor([src_tokens or (model.pad_id,)])
    with torch.no_grad():
        return float(model.score(src, torch.tensor([len(src_tokens)]), torch.tensor([tgt_tokens])))


def weighted(h: Hypothesis, weights: dict[str, float], src_len: int, normalize: bool) -> float:
    """The score by the formula of Yee et al. (2019), from the features in ``info``."""
    by = {"direct": h.length, "channel": src_len, "lm": src_len, "length": 1}
    return sum(w * h.info[f"rerank_{n}"] / (by[n] if normalize else 1) for n, w in weights.items())


def total(features: dict[str, float], w: dict[str, float]) -> float:
    return sum(w[n] * features[n] for n in w)


def test_with_the_direct_model_alone_rerank_returns_the_inner_searchs_lists(models, src):
    out = rerank(models, scorers=["direct"], weights={"direct": 1.0}, nbest=6)(models[0], *src)
    for beam, ranked in zip(inner(models, src), out.nbest, strict=True):
        assert [h.tokens for h in ranked] == [h.tokens for h in beam]
        assert [h.logprob for h in ranked] == [h.logprob for h in beam]
        assert [h.score for h in ranked] == [h.logprob for h in beam]


@pytest.mark.parametrize("reward", [10.0, -10.0])
def test_a_length_weight_prefers_longer_or_shorter_outputs(models, src, reward):
    weights = {"direct": 1.0, "length": reward}
    out = rerank(models, scorers=["direct", "length"], weights=weights)(models[0], *src)
    for beam, ranked in zip(inner(models, src), out.nbest, strict=True):
        pick = max if reward > 0 else min
        assert len({h.length for h in beam}) > 1  # a real choice
        want = pick(h.length for h in beam)
        assert ranked[0].length == want
        assert ranked[0].logprob == max(h.logprob for h in beam if h.length == want)


def test_each_feature_in_info_equals_its_independent_recomputation(models, src):
    model, reverse, lm = models
    weights = {"direct": 1.0, "channel": 0.5, "lm": 0.3, "length": 0.1}
    out = rerank(models, weights=weights, nbest=6)(model, *src)
    for i, ranked in enumerate(out.nbest):
        x = tuple(src[0][i, : src[1][i]].tolist())  # the source, unpadded
        for h in ranked:
            y = h.tokens if h.finished else (*h.tokens, model.eos_id)  # the channel's source
            assert h.info["rerank_direct"] == pytest.approx(score(model, x, h.tokens), abs=1e-5)
            assert h.info["rerank_channel"] == pytest.approx(score(reverse, y, x), abs=1e-5)
            assert h.info["rerank_lm"] == pytest.approx(
                score(lm, (lm.eos_id,), h.tokens), abs=1e-5
            )  # the LM reads an empty sentence as training encodes one: its EOS alone
            assert h.info["rerank_length"] == len(h.tokens)
            assert h.logprob == h.info["rerank_direct"]  # the model's log-prob, as every search's


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("cfg", [BEAM, SAMPLE], ids=["beam", "sample"])
def test_the_ranking_is_brute_force_over_the_distinct_candidates(models, src, normalize, cfg):
    weights = {"direct": 0.7, "channel": 0.4, "lm": 0.2, "length": -0.3}
    search = rerank(models, candidates=cfg, weights=weights, normalize=normalize, nbest=20)
    out = call_search(search, models[0], *src, keys=KEYS)
    reordered = 0
    for i, (cands, ranked) in enumerate(zip(inner(models, src, cfg), out.nbest, strict=True)):
        assert sorted(h.tokens for h in ranked) == sorted({h.tokens for h in cands})
        want = [weighted(h, weights, int(src[1][i]), normalize) for h in ranked]
        assert [h.score for h in ranked] == pytest.approx(want, abs=1e-9)
        assert want == sorted(want, reverse=True)
        reordered += [h.tokens for h in ranked] != [h.tokens for h in cands]
    assert reordered  # the weights changed some order: a real test


def test_grid_tuning_picks_the_grid_point_whose_picks_score_best(models, src):
    """The 'metric' here counts token 7 in the picks: the tuner must find the point that
    maximizes it over the grid (brute force), first on ties, and rank by it afterwards."""
    model = models[0]
    grid = {"channel": [0.0, 1.0], "lm": [0.0, 0.5, 2.0], "length": [-1.0, 0.0, 1.0]}
    search = rerank(models, weights={"direct": 1.0, "channel": 0.0}, tune="grid", grid=grid)
    with pytest.raises(LabError, match="not tuned yet"):
        search(model, *src)

    def decode(s):
        return call_search(s, model, *src, keys=KEYS).nbest

    def quality(picks):
        return float(sum(h.tokens.count(7) for h in picks))

    settings = search.tune(decode, quality)
    every = rerank(models, weights=dict.fromkeys(("direct", "channel", "lm", "length"), 0.0))
    lists = every.featurize(model, *src, inner(models, src))
    values = {}  # every grid point (first key slowest) -> the quality of its picks
    for c, m, n in itertools.product(grid["channel"], grid["lm"], grid["length"]):
        w = {"direct": 1.0, "channel": c, "lm": m, "length": n}
        picks = [max(cands, key=lambda s: total(s.features, w)).hyp for cands in lists]
        values[tuple(w.items())] = quality(picks)
    best_value = max(values.values())
    best = dict(next(w for w, v in values.items() if v == best_value))  # the first of the best
    assert len(set(values.values())) > 1  # the grid's points differ: a real choice
    assert settings["weights"] == best and settings["tuned_quality"] == best_value
    assert settings["tuned_sentences"] == len(KEYS)
    assert search.settings == settings  # recorded as the run's search_settings
    again = rerank(models, weights=best)(model, *src)
    assert [h.tokens for h in search(model, *src).best()] == [h.tokens for h in again.best()]


def test_optuna_tuning_keeps_its_best_trial_and_repeats_it_from_its_seed(models, src):
    """Every trial re-ranks the same candidates: the tuned weights are the best trial's (the
    first among equals), the ranges are kept, and the seeded sampler draws the same trials."""
    model = models[0]
    ranges = {"channel": [0.0, 2.0], "length": [-1.0, 1.0]}
    fixed = {"direct": 1.0, "lm": 0.0}
    tried: list[tuple[dict[str, float], float]] = []

    def decode(s):
        return call_search(s, model, *src, keys=KEYS).nbest

    def quality(picks):
        return float(sum(h.tokens.count(7) for h in picks))

    def tune() -> dict:
        search = rerank(models, weights=fixed, tune="optuna", ranges=ranges, trials=12)
        lists = decode(Featurized(search))
        settings = search.tune(decode, quality)
        tried.extend(optuna_trials(search, lists, quality))
        return settings

    first = tune()
    assert len(tried) == 12 and len({v for _, v in tried}) > 1  # a real choice
    best_value = max(v for _, v in tried)
    assert first["weights"] == next(w for w, v in tried if v == best_value)
    assert first["tuned_quality"] == best_value and first["trials"] == 12
    for w, _ in tried:
        assert 0.0 <= w["channel"] <= 2.0 and -1.0 <= w["length"] <= 1.0
        assert (w["direct"], w["lm"]) == (1.0, 0.0)
    tried.clear()
    assert tune() == first  # the same seed: the same trials, the same weights


def optuna_trials(search, lists, quality) -> list[tuple[dict[str, float], float]]:
    """The trials of a second study with the search's seed: each setting and its quality."""
    import optuna

    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=search.tune_seed)
    )
    out = []
    for _ in range(search.trials):
        trial = study.ask()
        drawn = {n: trial.suggest_float(n, lo, hi) for n, (lo, hi) in search.plan.ranges.items()}
        w = {n: (search.plan.weights | drawn)[n] for n in search.plan.names}
        value = quality([max(c, key=lambda h: total(h.info, w)) for c in lists])
        study.tell(trial, value)
        out.append((w, value))
    return out


def test_the_rerank_config_composes_and_builds_its_scorers(tmp_path: Path):
    reverse = tiny_model("gru", VOCAB, 5)
    (tmp_path / "en-de").mkdir()
    save_model(reverse, "gru", TINY["gru"], tmp_path / "en-de" / "model.pt", {})
    cfg = composed(
        "search=rerank",
        f"search.scorers=[direct,{{name:channel,model:{tmp_path / 'en-de'}}},length]",
        "search.weights={direct:1,channel:0.5,length:0.2}",
        "search.normalize=true",
    )
    search = build_search(cfg)
    assert list(search.scorers) == ["direct", "channel", "length"]
    assert search.weights == {"direct": 1.0, "channel": 0.5, "length": 0.2}
    assert search.normalize and search.nbest == 1 and not search.tunes
    src = sources(1, VOCAB, (3, 5))
    with torch.no_grad():
        ckpt = search.scorers["channel"].model.score(*src, src[0])
        assert torch.equal(ckpt, reverse.score(*src, src[0]))  # the saved weights, loaded
    tuned = build_search(
        composed("search=rerank", "search.tune=grid", "search.grid={direct:[0.5,1]}")
    )
    assert tuned.tunes and tuned.plan.points() == [{"direct": 0.5}, {"direct": 1.0}]
    assert build_search(composed("search=rerank")).weights == {"direct": 1.0}


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"scorers": ["direct", "chanel"]}, "unknown scorer 'chanel'. Did you mean 'channel'?"),
        ({"scorers": ["direct", "channel"]}, "scorer channel needs its model"),
        ({"scorers": ["lm"]}, "scorer lm needs its model"),
        ({"scorers": ["direct"], "weights": {"direct": 1, "lm": 1}}, "lm is not in search.scorers"),
        ({"scorers": ["direct", "length"], "weights": {"length": 1}}, "no weight for direct"),
        ({"scorers": ["direct"], "tune": "bayes"}, "valid choices are null, grid, optuna"),
        ({"scorers": ["direct"], "tune": "optuna"}, "search.tune=optuna needs search.ranges"),
        (
            {"scorers": ["direct"], "tune": "optuna", "ranges": {"direct": [1, 0]}},
            "low must be below high",
        ),
        (
            {"scorers": ["direct"], "tune": "optuna", "ranges": {"length": [0, 1]}},
            "length is not in search.scorers",
        ),
        ({"scorers": ["direct"], "tune": "optuna", "ranges": {"direct": 1}}, "must be [low, high]"),
        ({"scorers": ["direct"], "tune": "grid"}, "search.tune=grid needs search.grid"),
        ({"scorers": ["direct"], "weights": {"direct": "high"}}, "must be a finite number"),
        ({"scorers": ["direct", "direct"]}, "lists direct twice"),
        ({"scorers": []}, "valid scorers: channel, direct, length, lm"),
    ],
)
def test_bad_input_is_one_line_naming_the_fix(kw, message):
    with pytest.raises(LabError) as e:
        SEARCHES.build("rerank", candidates=BEAM, **kw)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_channel_model_of_other_vocabularies_is_refused_in_one_line(models, src):
    other = tiny_model("gru", VOCAB + 2, 5)
    search = rerank(models, scorers=["direct", {"name": "channel", "model": other}])
    with pytest.raises(LabError, match=r"vocab 11/11, the decoding model 9/9") as e:
        search(models[0], *src)
    assert "\n" not in str(e.value)


def test_lab_run_tunes_the_weights_on_validation_and_records_them(root: Path, trained: Path):
    run_dir, channel = root / "rerank", root / "warmup"  # the tiny run: a same-vocab channel
    args = [
        "run",
        "search=rerank",
        f"search.scorers=[direct,{{name:channel,model:{channel}}},length]",
        "search.tune=grid",
        "search.grid={channel:[0,1],length:[-1,0,1]}",
        "search.tune_limit=5",
        "search.candidates.beam_size=4",
        "search.candidates.nbest=4",
    ]
    proc = ok(run_lab([*args, *tiny(eval__limit=4), f"hydra.run.dir={run_dir}"], root, trained))
    assert "tuned on 5 valid examples" in proc.stdout
    res = json.loads((run_dir / "results.json").read_text())
    assert res["status"] == "completed" and res["search"] == "rerank"
    weights = res["search_settings"]["weights"]
    assert (
        weights["direct"] == 1.0
        and weights["channel"] in (0, 1)
        and weights["length"] in (-1, 0, 1)
    )
    assert res["metrics"]["cost_generation_seconds"] > 0
    rows = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    for row in rows:
        want = sum(w * row[f"rerank_{n}"] for n, w in weights.items())
        assert row["score"] == pytest.approx(want, abs=1e-6)
        assert row["rerank_direct"] == row["logprob"] and row["rerank_length"] == row["length"]


def test_a_tune_metric_the_task_does_not_produce_fails_in_one_line(root: Path, trained: Path):
    args = ["run", "search=rerank", "search.tune=grid", "search.grid={direct:[1]}"]
    run_dir = root / "bad_metric"
    proc = run_lab(
        [*args, "search.tune_metric=bleurt", *tiny(eval__limit=2), f"hydra.run.dir={run_dir}"],
        root,
        trained,
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert "search.tune_metric=bleurt is not a metric of this task; choose one of" in lines[0]
    assert "bleu" in lines[0] and "tuned on" not in proc.stdout


def test_scorer_models_of_different_tokenizers_are_refused_naming_both(tmp_path: Path):
    hashes, paths = [], []
    for arch, text in (("gru", "abc"), ("decoder_only", "def")):
        (tmp_path / f"{text}.model").write_text(text)  # two tokenizer files of the same size
        tok = SimpleNamespace(path=tmp_path / f"{text}.model", vocab_size=VOCAB)
        hashes.append(tokenizer_fingerprint(tok)["sha256"])
        paths.append(tmp_path / f"{arch}.pt")
        save_model(tiny_model(arch, VOCAB), arch, TINY[arch], paths[-1], {}, tok)
    scorers = ["direct", {"name": "channel", "model": str(paths[0])}]
    scorers.append({"name": "lm", "model": str(paths[1])})
    with pytest.raises(LabError) as e:
        SEARCHES.build("rerank", candidates=BEAM, scorers=scorers)
    assert all(f"tokenizer {h}" in str(e.value) for h in hashes) and "\n" not in str(e.value)
