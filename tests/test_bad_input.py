"""What the lab does with inputs at the edge: empty sources, impossible length settings,
processors that leave no token, and the files of ``task=parallel``.

Each test states the rule; the tiny models have sharpened weights so any misrouted state shows.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from torch import Tensor

import lab  # noqa: F401 - registers every plugin
from lab.app import CONF_DIR
from lab.errors import LabError
from lab.models.base import DecoderModel
from lab.models.rnn import ATTENTIONS
from lab.overrides import check_overrides
from lab.pipeline import build_task
from lab.registry import MODELS, SEARCHES
from lab.search.types import Hypothesis
from lab.tokenizer import Tokenizer, load_or_train

pytestmark = pytest.mark.usefixtures("one_thread")

TRANSFORMERS = {
    "transformer": dict(d_model=16, n_heads=2, enc_layers=1, dec_layers=2, d_ff=32, dropout=0.0),
    "decoder_only": dict(d_model=16, n_heads=2, n_layers=2, d_ff=32, dropout=0.0),
}
RNN = dict(emb_dim=12, hidden=16, num_layers=2, dropout=0.0)
ARCHS = [
    *(f"{cell}-{attn}" for cell in ("lstm", "gru") for attn in ATTENTIONS),
    *TRANSFORMERS,
]
V = 14


def tiny(arch: str, vocab: int = V, seed: int = 0) -> DecoderModel:
    torch.manual_seed(seed)
    if arch in TRANSFORMERS:
        model = MODELS.build(arch, vocab, vocab, **TRANSFORMERS[arch])
    else:
        cell, attention = arch.split("-")
        model = MODELS.build(cell, vocab, vocab, attention=attention, **RNN)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_(3.0)
    return model.eval()


def score_of(model: DecoderModel, src: Tensor, lens: Tensor, hyp: Hypothesis) -> float:
    """``model.score`` of one hypothesis' tokens (0 for the empty output)."""
    tgt = torch.tensor([list(hyp.tokens)], dtype=torch.long).view(1, -1)
    with torch.no_grad():
        return float(model.score(src, lens, tgt))


def assert_exact_logprobs(model, src, lens, nbest: list[list[Hypothesis]]) -> None:
    for i, hyps in enumerate(nbest):
        assert hyps, f"sentence {i} got an empty n-best list"
        for h in hyps:
            assert math.isfinite(h.logprob) and not math.isnan(h.score)
            assert h.length == len(h.tokens)
            expected = score_of(model, src[i : i + 1], lens[i : i + 1], h)
            assert h.logprob == pytest.approx(expected, abs=1e-4)


# --- empty sources ---------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_an_empty_source_decodes_from_an_empty_memory(arch: str, search: str) -> None:
    """Every architecture decodes a batch mixing empty and non-empty sources: no NaN, every
    log-prob is the model's score, and each sentence decodes alone as it does in the batch."""
    model = tiny(arch)
    src = torch.tensor([[5, 6, 7, 8], [0, 0, 0, 0], [9, 3, 0, 0], [0, 0, 0, 0]])
    lens = torch.tensor([4, 0, 2, 0])
    kw = {"beam_size": 3, "nbest": 2} if search == "beam" else {}
    decode = SEARCHES.build(search, max_len_b=6, **kw)
    out = decode(model, src, lens)
    assert_exact_logprobs(model, src, lens, out.nbest)
    for i, n in enumerate(lens.tolist()):
        alone = decode(model, src[i : i + 1, :n], lens[i : i + 1]).nbest[0]
        assert [h.tokens for h in alone] == [h.tokens for h in out.nbest[i]]
        for a, b in zip(alone, out.nbest[i], strict=True):
            assert a.logprob == pytest.approx(b.logprob, abs=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_teacher_forcing_on_an_empty_source_is_finite(arch: str) -> None:
    model = tiny(arch)
    src, lens = torch.tensor([[5, 6, 7], [0, 0, 0]]), torch.tensor([3, 0])
    lp = model.token_log_probs(src, lens, torch.tensor([[4, 5, 2], [6, 2, 0]]))
    assert torch.isfinite(lp).all()


# --- min_len and max_len ---------------------------------------------------------------------
@pytest.mark.parametrize("search", ["greedy", "beam", "beam_lp", "exact"])
def test_min_len_above_a_fixed_limit_is_refused_when_the_search_is_built(search: str) -> None:
    with pytest.raises(LabError, match=r"min_len=5 .*max_len_b=3.*; lower") as err:
        SEARCHES.build(search, max_len_a=0, max_len_b=3, min_len=5)
    assert "\n" not in str(err.value)
    SEARCHES.build(search, max_len_a=0, max_len_b=5, min_len=5)  # reachable: accepted


@pytest.mark.parametrize("search", ["greedy", "beam", "beam_lp"])
def test_a_sentence_whose_limit_is_below_min_len_ends_unfinished_at_its_limit(search: str):
    """With max_len_a > 0 the limit depends on the source: a short source's output stops at its
    limit without EOS (``finished=False``), with the log-prob of the tokens it has."""
    model = tiny("gru-general")
    src, lens = (
        torch.tensor([[5, 6, 0, 0, 0, 0, 0, 0], [5, 6, 7, 8, 9, 3, 4, 5]]),
        torch.tensor([2, 8]),
    )
    kw = {"beam_size": 3, "nbest": 2} if search != "greedy" else {}
    out = SEARCHES.build(search, max_len_a=1.0, max_len_b=0, min_len=5, **kw)(model, src, lens)
    assert_exact_logprobs(model, src, lens, out.nbest)
    short = out.nbest[0][0]
    assert (short.length, short.finished) == (2, False) and model.eos_id not in short.tokens
    assert all(h.length >= 5 for h in out.nbest[1] if h.finished)


def test_a_negative_max_len_b_names_the_minimum_it_needs() -> None:
    with pytest.raises(LabError, match=r"must be >= 0, got -1; set search.max_len_b=0 or more"):
        SEARCHES.build("greedy", max_len_b=-1)
    with pytest.raises(LabError, match=r"set search.beam_size=1 or more"):
        SEARCHES.build("beam", beam_size=0)


# --- processors that leave no token ----------------------------------------------------------
SEARCHES_KW = {
    "greedy": {},
    "beam": {"beam_size": 3, "nbest": 2},
    "beam_lp": {"beam_size": 3, "nbest": 2, "penalty": "average", "alpha": 1.0},
}


@pytest.mark.parametrize("search", SEARCHES_KW)
def test_banning_every_token_gives_the_empty_unfinished_output(search: str) -> None:
    model = tiny("gru-general", vocab=6)
    src, lens = torch.tensor([[3, 4, 5], [4, 5, 0]]), torch.tensor([3, 2])
    ban = [{"name": "ban_tokens", "ids": list(range(6))}]
    out = SEARCHES.build(search, max_len_b=5, processors=ban, **SEARCHES_KW[search])(
        model, src, lens
    )
    for hyps in out.nbest:
        assert [(h.tokens, h.logprob, h.length, h.finished) for h in hyps] == [((), 0.0, 0, False)]
    assert out.best()[0].score == 0.0


@pytest.mark.parametrize("search", SEARCHES_KW)
def test_a_hypothesis_with_no_legal_token_left_stops_there_unfinished(search: str) -> None:
    """no_repeat_ngram n=1 on words 3, 4, 5 with EOS banned: every output uses each word once,
    then stops unfinished with the log-prob of its three tokens; PAD/BOS never appear."""
    model = tiny("lstm-dot", vocab=6)
    src, lens = torch.tensor([[3, 4, 5], [4, 5, 0]]), torch.tensor([3, 2])
    procs = [{"name": "no_repeat_ngram", "n": 1}, {"name": "ban_tokens", "ids": [model.eos_id]}]
    out = SEARCHES.build(search, max_len_b=8, processors=procs, **SEARCHES_KW[search])(
        model, src, lens
    )
    assert_exact_logprobs(model, src, lens, out.nbest)
    for hyps in out.nbest:
        assert len(hyps) == (1 if search == "greedy" else 2)
        for h in hyps:
            assert sorted(h.tokens) == [3, 4, 5] and not h.finished


def test_with_no_legal_token_beam_still_returns_its_finished_hypotheses() -> None:
    """EOS stays legal: the finished outputs compete with the dead ends, best first."""
    model = tiny("lstm-dot", vocab=6)
    src, lens = torch.tensor([[3, 4, 5]]), torch.tensor([3])
    procs = [{"name": "no_repeat_ngram", "n": 1}]
    out = SEARCHES.build("beam", beam_size=4, nbest=4, max_len_b=8, processors=procs)(
        model, src, lens
    )
    hyps = out.nbest[0]
    assert hyps and [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
    assert_exact_logprobs(model, src, lens, out.nbest)


# --- task=parallel ---------------------------------------------------------------------------
def composed(*overrides: str):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_parallel_reads_the_test_files_given_as_task_test_src_and_tgt(tmp_path: Path) -> None:
    (tmp_path / "s.txt").write_text("ein Haus\nzwei Hunde\n")
    (tmp_path / "t.txt").write_text("a house\ntwo dogs\n")
    args = ["task=parallel", f"task.test_src={tmp_path / 's.txt'}"]
    args.append(f"task.test_tgt={tmp_path / 't.txt'}")
    check_overrides(args, CONF_DIR)  # the README's keys are known keys
    task = build_task(composed(*args), tmp_path, tmp_path)
    test = task.examples(task.test_split)
    assert [(ex.src, ex.tgt) for ex in test] == [
        ("ein Haus", "a house"),
        ("zwei Hunde", "two dogs"),
    ]


def test_parallel_trains_on_task_train_src_and_tgt(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x\n")
    (tmp_path / "b.txt").write_text("y\n")
    args = ["task=parallel", "task.train_src=a.txt", "task.train_tgt=b.txt"]
    check_overrides(args, CONF_DIR)
    task = build_task(composed(*args), tmp_path, tmp_path)
    assert [(ex.src, ex.tgt) for ex in task.examples(task.train_split)] == [("x", "y")]


def test_parallel_default_is_the_flores_devtest_pair(tmp_path: Path) -> None:
    task = build_task(composed("task=parallel"), tmp_path, tmp_path)
    assert task.files == {
        "test": {"src": "flores200/deu_Latn.devtest", "tgt": "flores200/eng_Latn.devtest"}
    }


# --- overlong lines --------------------------------------------------------------------------
def test_a_corpus_of_overlong_lines_names_the_line_and_its_length(tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"line 2 .*1000000 bytes.*65536.*(shorten|remove)") as e:
        Tokenizer.train(["", "x" * 1_000_000], 50, tmp_path / "m.model")
    assert "\n" not in str(e.value) and "vocab_size" not in str(e.value)


def test_overlong_lines_among_others_are_skipped_with_one_warning(tmp_path: Path) -> None:
    texts = [f"hello world {i}" for i in range(50)] + ["y" * 70_000]
    with pytest.warns(UserWarning, match=r"skipped 1 .*line 51 .*70000 bytes"):
        tok = Tokenizer.train(texts, 40, tmp_path / "m.model")
    assert tok.decode(tok.encode("hello world 7")) == "hello world 7"


def test_a_task_whose_only_training_line_is_1_mb_names_that_example(tmp_path: Path) -> None:
    (tmp_path / "s.txt").write_text("w" * 1_000_000 + "\n")
    (tmp_path / "t.txt").write_text("\n")
    args = ["task=parallel", "task.train_src=s.txt", "task.train_tgt=t.txt"]
    task = build_task(composed(*args), tmp_path, tmp_path)
    with pytest.raises(LabError, match=r"source of train example 'train-0' is 1000000 bytes"):
        load_or_train(task, tmp_path / "cache", vocab_size=50)
