"""``lab analyze`` (search errors vs model errors, Stahlberg & Byrne 2019): the verdicts and
rates on hand-made rows, the reference scores runs write, and the command on tiny real runs."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from lab.analyze import beam_size, flags, rates, sentence_row
from lab.data import Pair
from lab.references import reference_scores
from lab.registry import MODELS
from lab.tasks.base import Example
from tests.helpers.lab_process import lab, ok, tiny


def row(hyp, exact, ref, proved=True, exact_len=5, exact_is_ref=False):
    return {
        "id": "x",
        "hyp_logprob": hyp,
        "exact_logprob": exact,
        "ref_logprob": ref,
        "proved_optimal": proved,
        "hyp_length": 5,
        "exact_length": exact_len,
        "ref_length": 6,
        "exact_is_ref": exact_is_ref,
    }


def test_flags_on_hand_made_rows():
    assert flags(row(-5.0, -2.0, -9.0)) == {
        "search_error": True,
        "model_error": True,
        "empty_mode": False,
        "ref_above_hyp": False,
    }
    # equal up to the tolerance: no search error; the reference above the output
    assert flags(row(-2.00001, -2.0, -1.0))["search_error"] is False
    assert flags(row(-2.00001, -2.0, -1.0))["ref_above_hyp"] is True
    # the mode is the reference: no model error whatever the scores say
    assert flags(row(-2.0, -2.0, -2.5, exact_is_ref=True))["model_error"] is False
    # unproved: no verdict on search error or empty mode; no reference: none on the others
    unproved = flags(row(-5.0, -2.0, None, proved=False, exact_len=1))
    assert unproved == dict.fromkeys(unproved)
    assert flags(row(-5.0, -1.0, -3.0, exact_len=1))["empty_mode"] is True


def test_rates_count_only_sentences_that_can_tell():
    rows = [
        row(-5.0, -2.0, -9.0),  # search error, model error
        row(-2.0, -2.0, -1.0),  # reference above hypothesis
        row(-3.0, -1.0, None, proved=False, exact_len=1),  # says nothing
        row(-1.0, -2.0, -4.0),  # output above exact (unfinished, say)
    ]
    r = rates(rows)
    assert (r["n"], r["n_proved"], r["hyp_above_exact"]) == (4, 3, 1)
    assert r["search_error"] == pytest.approx(1 / 3)
    assert r["model_error"] == pytest.approx(2 / 3)  # rows 1 and 4 of the 3 with a reference
    assert r["empty_mode"] == 0.0
    assert r["ref_above_hyp"] == pytest.approx(1 / 3)
    assert math.isnan(rates([row(-1.0, -1.0, None, proved=False)])["search_error"])


def test_sentence_row_and_beam_size():
    hyp = {"id": "a", "logprob": -3.0, "length": 4, "ref_logprob": -7.0, "ref_length": 5}
    exact = {"id": "a", "logprob": -1.0, "length": 1, "hyp": "", "ref": ["x", ""]}
    got = sentence_row(hyp, {**exact, "proved_optimal": True})
    assert got["exact_is_ref"] and got["proved_optimal"] and got["ref_logprob"] == -7.0
    assert beam_size({"search": "greedy", "config": {"search": {"name": "greedy"}}}) == 1
    assert beam_size({"search": "beam", "config": {"search": {"beam_size": 8}}}) == 8
    assert beam_size({"search": "exact", "config": {"search": {"budget": 9}}}) is None


class CharTokenizer:
    eos_id = 2

    def encode(self, text: str) -> list[int]:
        return [3 + (ord(c) % 9) for c in text]


def test_reference_scores_are_forced_decoding_of_the_best_reference(one_thread):
    torch.manual_seed(0)
    model = MODELS.build("transformer", 12, 12, d_model=16, n_heads=2, d_ff=32).eval()
    examples = [Example("a", "x", "abc", ("abc", "b")), Example("b", "y", "cd", ("cdefg",))]
    pairs = [Pair(0, (4, 5, 2), ()), Pair(1, (6, 2), ())]
    got = reference_scores(model, examples, pairs, CharTokenizer(), 2, torch.device("cpu"))
    assert got is not None
    tok = CharTokenizer()
    for p in pairs:
        src = torch.tensor([p.src])
        want = []
        for ref in examples[p.index].refs:
            tgt = torch.tensor([[*tok.encode(ref), 2]])
            with torch.no_grad():
                score = float(model.score(src, torch.tensor([len(p.src)]), tgt))
            want.append((score, tgt.size(1)))
        best, length, _ = got[p.index]
        assert best == pytest.approx(max(want)[0], abs=1e-4) and length == max(want)[1]
    assert reference_scores(model, examples, pairs, object(), 2, torch.device("cpu")) is None


@pytest.fixture(scope="module")
def runs(root: Path, trained: Path) -> dict[str, Path]:
    """greedy, beam 2 and exact runs of the tiny model on the same 10 sentences."""
    dirs = {}
    for name, args in {
        "greedy": ["search=greedy"],
        "beam2": ["search=beam", "search.beam_size=2"],
        "exact": ["search=exact", "search.budget=300"],
    }.items():
        dirs[name] = root / "sweep" / name
        ok(lab(["run", *tiny(), *args, f"hydra.run.dir={dirs[name]}"], root, trained))
    return dirs


def test_runs_write_reference_scores(runs: dict[str, Path]):
    preds = [json.loads(x) for x in (runs["greedy"] / "predictions.jsonl").read_text().splitlines()]
    assert all(p["ref_logprob"] < 0 and p["ref_length"] >= 1 for p in preds)
    metrics = json.loads((runs["greedy"] / "results.json").read_text())["metrics"]
    assert metrics["mean_ref_logprob"] == pytest.approx(
        sum(p["ref_logprob"] for p in preds) / len(preds)
    )


def test_analyze_writes_tables_and_plot(root: Path, runs: dict[str, Path]):
    out = root / "analysis"
    proc = ok(
        lab(
            ["analyze", str(root / "sweep"), "--exact", str(runs["exact"]), "--out", str(out)],
            root,
            root / "cache",
        )
    )
    for name in ("analysis_sentences.csv", "analysis_rates.md", "analysis_rates.csv",
                 "analysis_rates.tex", "analysis_rates.png"):  # fmt: skip
        assert (out / name).stat().st_size > 0 and str(out / name) in proc.stdout
    sent = pd.read_csv(out / "analysis_sentences.csv")
    assert len(sent) == 20  # 2 runs x 10 sentences (the exact run is the yardstick, not a row)
    errors = sent[sent["search_error"] == True]  # noqa: E712 - the column holds True/False/NaN
    assert (errors["exact_logprob"] > errors["hyp_logprob"]).all()
    table = pd.read_csv(out / "analysis_rates.csv")
    assert list(table["beam_size"]) == [1, 2]
    assert (table["n"] == 10).all()
    rates = table[["search_error", "model_error", "empty_mode", "ref_above_hyp"]].stack()
    assert ((rates >= 0) & (rates <= 1)).all()
    exact = [json.loads(x) for x in (runs["exact"] / "predictions.jsonl").read_text().splitlines()]
    proved = sum(p["proved_optimal"] for p in exact)
    assert (table["n_proved"] == proved).all() and (table["exact_proved"] == proved / 10).all()


def _copy(src: Path, dst: Path, edit) -> Path:  # noqa: ANN001 - edit(results, predictions)
    shutil.copytree(src, dst)
    res = json.loads((dst / "results.json").read_text())
    preds = [json.loads(x) for x in (dst / "predictions.jsonl").read_text().splitlines()]
    res, preds = edit(res, preds)
    (dst / "results.json").write_text(json.dumps(res))
    (dst / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    return dst


@pytest.mark.parametrize(
    "case, edit, words",
    [
        ("model", lambda r, p: ({**r, "checkpoint": "/elsewhere.pt"}, p), "one model"),
        ("split", lambda r, p: ({**r, "split": "valid"}, p), "one split"),
        ("ids", lambda r, p: (r, p[:5]), "eval.limit"),
    ],
)
def test_analyze_refuses_mismatched_runs(root: Path, runs: dict[str, Path], case, edit, words):
    bad = _copy(runs["beam2"], root / f"bad-{case}", edit)
    proc = lab(["analyze", str(bad), "--exact", str(runs["exact"])], root, root / "cache")
    assert proc.returncode == 2 and words in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_analyze_refuses_an_exact_run_that_is_not_exact(root: Path, runs: dict[str, Path]):
    proc = lab(
        ["analyze", str(runs["greedy"]), "--exact", str(runs["beam2"])], root, root / "cache"
    )
    assert proc.returncode == 2 and "search=exact" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def _search(**changes):  # noqa: ANN202 - an edit of the run's search settings
    def edit(r, p):  # noqa: ANN001, ANN202
        config = {**r["config"], "search": {**r["config"]["search"], **changes}}
        settings = {**r.get("search_settings", {}), **changes}  # what the run resolved
        return {**r, "config": config, "search_settings": settings}, p

    return edit


@pytest.mark.parametrize(
    "case, edit, key",
    [
        ("min_len", _search(min_len=3), "search.min_len"),
        ("penalty", _search(penalty="word_reward", alpha=0.5), "search.penalty"),
        ("max_len", _search(max_len_b=4), "search.max_len_b"),
        ("processors", _search(processors=[{"name": "no_repeat_ngram", "n": 2}]), "processors"),
    ],
)
def test_analyze_refuses_runs_ranked_by_other_settings(root, runs, case, edit, key):
    bad = _copy(runs["beam2"], root / f"rank-{case}", edit)
    proc = lab(["analyze", str(bad), "--exact", str(runs["exact"])], root, root / "cache")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and "exact run" in lines[0], proc.stderr


def test_analyze_reads_a_truncated_predictions_file_with_a_warning(root, runs):
    cut = _copy(runs["beam2"], root / "truncated", lambda r, p: (r, p))
    text = (cut / "predictions.jsonl").read_text()
    (cut / "predictions.jsonl").write_text(text[: text.rindex("\n", 0, -1) + 20])
    proc = ok(lab(["analyze", str(cut), "--exact", str(runs["exact"]), "--out", str(root / "t")],
                  root, root / "cache"))  # fmt: skip
    assert f"warning: {cut / 'predictions.jsonl'} line 10" in proc.stderr
    assert len(pd.read_csv(root / "t" / "analysis_sentences.csv")) == 9


def test_analyze_warns_about_an_unreadable_run(root, runs):
    broken = root / "unreadable" / "b"
    shutil.copytree(runs["beam2"], broken)
    (broken / "results.json").write_text("{not json")
    args = ["analyze", str(runs["beam2"]), str(broken), "--exact", str(runs["exact"])]
    proc = ok(lab([*args, "--out", str(root / "u")], root, root / "cache"))
    assert f"warning: skipping run {broken}: cannot read results.json" in proc.stderr
