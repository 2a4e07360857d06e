"""MBR decoding and its utilities: fast chrF is sacreBLEU's chrF, MBR returns the candidate of
highest expected utility (checked by brute force), and a ``lab run`` with ``search=mbr``
records its cost split into generation and selection."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from sacrebleu.metrics import BLEU, CHRF

import lab  # noqa: F401  (registers the searches)
import lab.search.mbr  # noqa: F401  (registers mbr and, through it, the utilities)
import lab.search.processors.warpers  # noqa: F401  (the epsilon processor of conf/search/mbr.yaml)
import lab.search.sampling.sample  # noqa: F401
from lab.app import CONF_DIR
from lab.errors import LabError
from lab.metrics.utility import FastChrf
from lab.pipeline import build_search
from lab.registry import MODELS, SEARCHES, UTILITIES
from lab.search.mbr import pseudo_ref_keys
from lab.search.types import Cost, Hypothesis, SearchOutput
from tests.helpers.lab_process import lab as run_lab
from tests.helpers.lab_process import ok, tiny

# ---------------------------------------------------------------------------------------------
# utilities

REAL_LOOKING = [
    "",
    " ",
    "a",
    "ab",
    "abcdef",
    "A man is riding a bike.",
    "A man rides a bike .",
    "a man is riding a bike",
    "Two dogs play in the snow!",
    "Two  dogs\tplay in the\nsnow !",  # whitespace variants: removed, as sacreBLEU does
    "Zwei Hunde spielen im Schnee, größer als je.",
    "Ein Mann fährt Fahrrad\u00a0(schnell).",  # no-break space
    "中文 句子，没有空格。",
    "emoji 😀😀 ok",
    "e\u0301cole école",  # a combining accent is a character of its own
    "the the the the the the the",
    "...",
]


def assert_equal_scores(got: torch.Tensor, want: list[list[float]]) -> None:
    """``got`` is the matrix ``want``, entry by entry, to 1e-9."""
    assert got.shape == (len(want), len(want[0]))
    assert (got - torch.tensor(want, dtype=torch.float64)).abs().max().item() <= 1e-9


def random_strings(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = list("abcab AB.,!?'-()") + ["é", "ß", "中", "😀", "\t", "\n", "\u00a0", "\u2003"]
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24))) for _ in range(n)]


def test_fast_chrf_equals_sacrebleu_sentence_chrf_on_every_pair():
    texts = REAL_LOOKING + random_strings(25, seed=0)
    chrf = CHRF()
    got = FastChrf().matrix(texts, texts)
    assert got.shape == (len(texts), len(texts)) and got.dtype == torch.float64
    for i, h in enumerate(texts):
        for j, r in enumerate(texts):
            assert got[i, j].item() == pytest.approx(chrf.sentence_score(h, [r]).score, abs=1e-9)


def test_fast_chrf_scores_different_lists_with_repeated_references():
    hyps = ["a cat sat", "the cat sat on the mat", ""]
    refs = ["the cat sat on a mat", "a cat sat", "the cat sat on a mat", "x"]
    got = FastChrf().matrix(hyps, refs)
    chrf = CHRF()
    want = [[chrf.sentence_score(h, [r]).score for r in refs] for h in hyps]
    assert_equal_scores(got, want)
    assert FastChrf().matrix([], refs).shape == (0, 4)


@pytest.mark.parametrize("name", ["chrf", "bleu", "fast_chrf"])
def test_a_utility_scores_every_pair_and_counts_them(name):
    utility = UTILITIES.build(name)
    hyps, refs = ["a man rides a bike", "a dog"], ["a man is riding a bike", "a dog", "a dog"]
    got = utility.matrix(hyps, refs)
    metric = BLEU(effective_order=True) if name == "bleu" else CHRF()
    want = [[metric.sentence_score(h, [r]).score for r in refs] for h in hyps]
    assert_equal_scores(got, want)
    assert utility.calls == 6
    utility.matrix(hyps[:1], refs)
    assert utility.calls == 9


# ---------------------------------------------------------------------------------------------
# MBR on a small random model

WORDS = "<pad> <s> </s> the then there a an cat cats sat sit on mat mats , . dog dogs".split()


def detok(ids) -> str:
    return " ".join(WORDS[i] for i in ids)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    v = len(WORDS)
    return MODELS.build(
        "transformer", v, v, d_model=16, n_heads=2, enc_layers=1, dec_layers=1, d_ff=32, dropout=0
    ).eval()


@pytest.fixture(scope="module")
def src():
    g = torch.Generator().manual_seed(1)
    lengths = [5, 3, 7, 4]
    ids = torch.full((4, max(lengths)), 0)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(3, len(WORDS), (n,), generator=g)
    return ids, torch.tensor(lengths)


BEAM = {"name": "beam", "beam_size": 8, "nbest": 8, "max_len_a": 0, "max_len_b": 8}


def text(h: Hypothesis) -> str:
    return detok(h.tokens[:-1] if h.finished else h.tokens)


def mbr(**kw):
    kw.setdefault("candidates", BEAM)
    return SEARCHES.build("mbr", **kw)


def test_mbr_returns_the_candidate_of_highest_expected_chrf_by_brute_force(model, src):
    beam = SEARCHES.build("beam", **{k: v for k, v in BEAM.items() if k != "name"})
    lists = beam(model, *src).nbest
    out = mbr(nbest=8)(model, *src, detokenize=detok)
    chrf = CHRF()
    for cands, ranked in zip(lists, out.nbest, strict=True):
        texts = [text(h) for h in cands]
        assert len(set(texts)) > 1  # a real choice
        expected = {
            h.tokens: sum(chrf.sentence_score(t, [r]).score for r in texts) / len(texts)
            for h, t in zip(cands, texts, strict=True)
        }
        best = max(expected.values())
        assert expected[ranked[0].tokens] == pytest.approx(best, abs=1e-9)  # an argmax
        assert {h.tokens for h in ranked} == set(expected)  # beam lists hold no duplicates
        for h in ranked:
            assert h.score == pytest.approx(expected[h.tokens], abs=1e-9)
            assert h.info == {"expected_utility": h.score}
        assert [h.score for h in ranked] == sorted((h.score for h in ranked), reverse=True)


def test_mbr_keeps_each_candidates_model_logprob(model, src):
    beam = SEARCHES.build("beam", **{k: v for k, v in BEAM.items() if k != "name"})
    lists = beam(model, *src).nbest
    out = mbr(nbest=3)(model, *src, detokenize=detok)
    for cands, ranked in zip(lists, out.nbest, strict=True):
        logprob = {h.tokens: h.logprob for h in cands}
        assert len(ranked) == 3
        for h in ranked:
            assert h.logprob == logprob[h.tokens] and h.length == len(h.tokens)


def test_fast_chrf_and_sacrebleu_chrf_rank_the_candidates_alike(model, src):
    fast = mbr(nbest=8, utility="fast_chrf")(model, *src, detokenize=detok)
    slow = mbr(nbest=8, utility="chrf")(model, *src, detokenize=detok)
    for a, b in zip(fast.nbest, slow.nbest, strict=True):
        assert [h.tokens for h in a] == [h.tokens for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-9)


class Fixed:
    """An inner search returning fixed n-best lists, recording the inputs it was given."""

    def __init__(self, lists, inputs=("keys", "detokenize")):
        self.lists, self.inputs, self.calls = lists, inputs, []

    def __call__(self, model, src, src_lengths, **extra):
        self.calls.append(extra)
        nbest = [
            [Hypothesis(t, -float(len(t)), 0.0, len(t), False) for t in ts] for ts in self.lists
        ]
        return SearchOutput(nbest, Cost(steps=2, model_calls=3, expanded=4, sentences=len(nbest)))


A, B, C, D = (3, 8), (3, 9), (17,), (3, 13)  # "the cat", "the cats", "dog", "the mat"


def test_candidates_are_deduplicated_but_pseudo_references_weigh_by_their_count(model, src):
    search = mbr(nbest=5)
    search.candidates = Fixed([[C, A, A, C, A]])  # "dog", "the cat": no character in common
    (ranked,) = search(model, src[0][:1], src[1][:1], detokenize=detok).nbest
    # chrF is 100 against itself, 0 against the other: the expected utility is the share
    assert [h.tokens for h in ranked] == [A, C]
    assert [h.score for h in ranked] == pytest.approx([100 * 3 / 5, 100 * 2 / 5], abs=1e-9)


def test_ties_keep_the_candidate_search_order(model, src):
    search = mbr(nbest=2)
    search.candidates = Fixed([[D, A]])  # as long as each other: u(A, D) = u(D, A)
    (ranked,) = search(model, src[0][:1], src[1][:1], detokenize=detok).nbest
    assert ranked[0].score == ranked[1].score and [h.tokens for h in ranked] == [D, A]


def test_inner_searches_get_the_keys_they_declare_the_pseudo_refs_a_derived_stream(model, src):
    search = mbr(pseudo_refs=BEAM)
    search.candidates = Fixed([[A, B]] * 2)
    search.pseudo_refs = Fixed([[A, A, C]] * 2, inputs=("keys",))
    out = search(model, src[0][:2], src[1][:2], keys=[11, 12], detokenize=detok)
    assert search.candidates.calls == [{"keys": [11, 12], "detokenize": detok}]
    assert search.pseudo_refs.calls == [{"keys": pseudo_ref_keys([11, 12])}]
    assert not set(pseudo_ref_keys([11, 12])) & {11, 12}
    assert out.cost.model_calls == 6 and out.cost.steps == 4 and out.cost.sentences == 2
    assert out.cost.utility_calls == 2 * (2 * 3)  # per sentence: 2 candidates x 3 refs
    assert out.cost.generation_seconds > 0 and out.cost.selection_seconds > 0


def test_mbr_over_samples_is_reproducible_and_draws_pseudo_refs_apart(model, src):
    sample = {"name": "sample", "num_samples": 6, "max_len_a": 0, "max_len_b": 8, "seed": 3}
    search = mbr(candidates=sample, pseudo_refs=sample, nbest=2)
    keys = [5, 6, 7, 8]
    first = search(model, *src, keys=keys, detokenize=detok)
    again = search(model, *src, keys=keys, detokenize=detok)
    assert [[h.tokens for h in nb] for nb in first.nbest] == [
        [h.tokens for h in nb] for nb in again.nbest
    ]
    cands = search.candidates(model, *src, keys=keys).nbest
    refs = search.pseudo_refs(model, *src, keys=pseudo_ref_keys(keys)).nbest
    assert [[h.tokens for h in nb] for nb in cands] != [[h.tokens for h in nb] for nb in refs]
    assert first.cost.utility_calls == sum(
        len({h.tokens for h in c}) * len(r) for c, r in zip(cands, refs, strict=True)
    )


def test_the_mbr_config_builds_epsilon_sampling_candidates():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["search=mbr", "seed=7"])
    search = build_search(cfg)
    assert search.nbest == 1 and isinstance(search.utility, FastChrf)
    assert search.candidates.num_samples == 32 and search.candidates.seed == 7
    assert search.pseudo_refs is None


# ---------------------------------------------------------------------------------------------
# bad input


def test_an_unknown_utility_is_one_line_listing_the_valid_ones():
    with pytest.raises(LabError) as err:
        mbr(utility="chrF++")
    msg = str(err.value)
    assert "\n" not in msg and "search.utility" in msg
    assert all(name in msg for name in ("bleu", "chrf", "fast_chrf"))


def test_a_bad_inner_search_key_fails_when_mbr_is_built():
    with pytest.raises(LabError, match=r"search.candidates: .*'beam_sz'.*beam_size"):
        mbr(candidates={"name": "beam", "beam_sz": 4})
    with pytest.raises(LabError, match=r"search.pseudo_refs: unknown search 'beem'"):
        mbr(pseudo_refs={"name": "beem"})


def test_missing_candidates_or_a_zero_nbest_is_refused():
    with pytest.raises(LabError, match=r"search.candidates must be a search config with a name"):
        SEARCHES.build("mbr")
    with pytest.raises(LabError, match=r"search.nbest must be >= 1"):
        mbr(nbest=0)


# ---------------------------------------------------------------------------------------------
# end to end


def test_lab_run_with_mbr_over_beam_candidates_records_its_cost(root: Path, trained: Path):
    run_dir = root / "mbr"
    candidates = "+search.candidates={name:beam,beam_size:4,nbest:4}"
    args = ["run", "search=mbr", "~search.candidates", candidates, "search.nbest=2"]
    ok(run_lab([*args, *tiny(eval__limit=4), f"hydra.run.dir={run_dir}"], root, trained))
    res = json.loads((run_dir / "results.json").read_text())
    assert res["status"] == "completed" and res["search"] == "mbr"
    m = res["metrics"]
    assert m["cost_utility_calls"] > 0 and m["cost_model_calls"] > 0
    assert m["cost_generation_seconds"] > 0 and m["cost_selection_seconds"] > 0
    assert m["nbest_size"] > 1 and "self_bleu" in m  # the n-best lists' diagnostics
    rows = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    for row in rows:
        scores = [e["expected_utility"] for e in row["nbest"]]
        assert row["expected_utility"] == row["score"] == scores[0] == max(scores)
