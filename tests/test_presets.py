"""Toolkit presets (``search=beam_hf|beam_fairseq|beam_onmt|beam_ct2``): what each pins, that
``beam_hf`` decodes as Hugging Face ``generate`` does, hand-worked tables on which fairseq's,
OpenNMT-py's and CTranslate2's rules answer otherwise than the lab's defaults, bad input, and
``lab toolkits`` on hand-written run directories.

Scores below: ``average`` divides the log-prob by the token count, EOS included (OpenNMT-py: +1
for its BOS); every table is a ``TableModel`` (unlisted tokens have probability 0).
"""

import csv
import importlib.util
import json
import math

import pytest
import torch
import yaml

from lab.app import CONF_DIR
from lab.cli import main
from lab.errors import LabError
from lab.registry import SEARCHES
from lab.search.beam.presets import HF_KEYS, LAB_KEYS, PRESETS, resolve
from lab.toolkits import load
from tests.helpers.hf_models import MAX_LEN, batch, generate
from tests.helpers.table_model import EOS, A, B, C, D, TableModel

needs_hf = pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None, reason="needs transformers"
)
pytestmark = pytest.mark.usefixtures("one_thread")
SRC, LEN = torch.tensor([[5, 5, 5]]), torch.tensor([3])


def run(table, search, **kw):
    return SEARCHES.build(search, **kw)(TableModel(table), SRC, LEN).nbest[0]


@pytest.mark.parametrize(
    ("name", "pinned"),
    [
        ("hf", dict(beam_size=1, max_len_b=20, stop_rule="heuristic", forced_eos="model")),
        ("fairseq", dict(beam_size=5, max_len_b=201, min_len=2, finalize="first")),
        ("onmt", dict(beam_size=5, max_len_b=250, stop_rule="top_beam", length_offset=1)),
        ("ct2", dict(beam_size=2, max_len_b=256, min_len=2, stop_rule="patience")),
    ],
)
def test_each_preset_pins_its_toolkits_defaults_and_its_config_lists_every_key(name, pinned):
    search = SEARCHES.build(f"beam_{name}")
    assert {k: search.settings[k] for k in pinned} == pinned
    assert search.settings["preset"] == name and search.settings["max_len_a"] == 0
    config = yaml.safe_load((CONF_DIR / "search" / f"beam_{name}.yaml").read_text())
    keys = {*LAB_KEYS, *HF_KEYS} if name == "hf" else set(LAB_KEYS)
    assert set(config) == keys | {"name"} and set(config.values()) == {None, f"beam_{name}"}


def test_set_keys_override_the_preset_and_hf_names_are_translated_to_the_labs():
    s = SEARCHES.build("beam_hf", num_beams=4, max_new_tokens=30, min_new_tokens=2, alpha=0.5)
    assert {k: s.settings[k] for k in ("beam_size", "max_len_b", "min_len")} == {
        "beam_size": 4, "max_len_b": 30, "min_len": 3  # min_len counts EOS: min_new_tokens + 1
    }  # fmt: skip
    assert s.settings["alpha"] == 0.5 and s.penalty.alpha == 0.5
    assert resolve("hf", {"early_stopping": "never"})["stop_rule"] == "canonical"
    assert resolve("hf", {"no_repeat_ngram_size": 3})["processors"] == [
        {"name": "no_repeat_ngram", "n": 3}
    ]
    # CTranslate2 exits when the top beam ends if there is no length penalty (allow_early_exit)
    assert resolve("ct2", {"alpha": 0})["stop_rule"] == "top_beam_ever"


# --- Hugging Face: the preset with HF's own keys decodes as generate() with the same keys
@needs_hf
@pytest.mark.parametrize("arch", ["marian", "gpt2"])
@pytest.mark.parametrize("early_stopping", [True, False, "never"])
@pytest.mark.parametrize("fixed", [False, True], ids=["natural", "fixed_length"])
def test_hf_preset_decodes_as_generate_with_the_same_keys(models, arch, early_stopping, fixed):
    model = models[arch]
    src, lens = batch(model)
    kw = dict(num_beams=4, num_return_sequences=4, early_stopping=early_stopping)
    kw |= dict(max_new_tokens=7, min_new_tokens=6) if fixed else dict(max_new_tokens=MAX_LEN)
    out = SEARCHES.build("beam_hf", length_penalty=1.0, **kw)(model, src, lens)
    ref, raw = generate(model, src, lens, length_penalty=1.0, **kw)
    assert [h.tokens for nb in out.nbest for h in nb] == ref
    scores = torch.tensor([h.score for nb in out.nbest for h in nb])
    torch.testing.assert_close(scores, raw.sequences_scores, atol=1e-4, rtol=0)


@needs_hf
@pytest.mark.parametrize("arch", ["marian", "gpt2"])
def test_hf_preset_defaults_are_generates_greedy_20_new_tokens(models, arch):
    model = models[arch]  # transformers 5: an unset max_length means 20 new tokens
    src, lens = batch(model)
    out = SEARCHES.build("beam_hf")(model, src, lens)
    with pytest.warns(UserWarning, match="default `max_length`"):
        ref, _ = generate(model, src, lens)
    assert [h.tokens for h in out.best()] == ref and max(len(t) for t in ref) <= 20


@needs_hf
def test_hf_preset_forces_eos_at_the_limit_when_the_models_config_does(models):
    model, kw = models["marian"], dict(num_beams=4, num_return_sequences=4, max_new_tokens=8)
    src, lens = batch(model)
    model.hf.generation_config.forced_eos_token_id = model.eos_id  # MarianConfig's default
    try:
        out = SEARCHES.build("beam_hf", **kw)(model, src, lens)
        ref, _ = generate(model, src, lens, **kw)
    finally:
        model.hf.generation_config.forced_eos_token_id = None
    hyps = [h for nb in out.nbest for h in nb]
    assert [h.tokens for h in hyps] == ref
    assert all(h.finished for h in hyps) and any(h.length == 8 for h in hyps)


# --- fairseq (sequence_generator.py, SequenceGenerator._generate and finalize_hypos)
def test_fairseq_min_len_counts_words_so_the_empty_output_cannot_win():
    table = {(): {EOS: 0.6, A: 0.4}, (A,): {EOS: 1.0}}
    # lab: EOS is allowed at once; log .6 beats log .4 (no penalty): the empty output wins.
    assert [h.tokens for h in run(table, "beam", beam_size=2)] == [(EOS,)]
    # fairseq --min-len 1: `step < self.min_len` bans EOS at the first step (lab min_len=2).
    assert [h.tokens for h in run(table, "beam_fairseq", beam_size=2)] == [(A, EOS)]


LOOP = {(A,) * i: {A: 0.9, EOS: 0.1} for i in range(10)}  # EOS never tops the beam


def test_fairseq_max_len_excludes_eos_and_its_last_step_forces_eos_with_its_logprob():
    # lab: a limit of 4 tokens cuts the output there, unfinished.
    (lab,) = run(LOOP, "beam", beam_size=1, max_len_a=0, max_len_b=4)
    assert lab.tokens == (A,) * 4 and not lab.finished
    # fairseq --max-len-b 4: four words, then `step >= max_len` leaves only EOS (lab units: 5),
    # which keeps its log-prob: score (4 log .9 + log .1) / 5.
    (fs,) = run(LOOP, "beam_fairseq", beam_size=1, max_len_b=5)
    assert fs.tokens == (A,) * 4 + (EOS,) and fs.finished
    assert fs.score == pytest.approx((4 * math.log(0.9) + math.log(0.1)) / 5)
    # Hugging Face's forced EOS scores 0 (ForcedEOSTokenLogitsProcessor): 4 log .9 / 5; the
    # reported log-prob is the model's either way.
    (hf,) = run(LOOP, "beam_hf", max_new_tokens=5, forced_eos="zero")
    assert hf.tokens == fs.tokens and hf.score == pytest.approx(4 * math.log(0.9) / 5)
    assert hf.logprob == pytest.approx(fs.logprob)


def test_fairseq_keeps_the_first_k_finished_hypotheses_where_the_lab_keeps_the_best_k():
    table = {
        (): {D: 1.0},
        (D,): {A: 0.7, EOS: 0.2, B: 0.1},
        (D, A): {EOS: 0.9, C: 0.1},
        (D, B): {EOS: 1.0},
    }
    # K=2. Step 2: top two D A (.7), D EOS (.2): (D, EOS) finishes, log .2 / 2 = -0.80.
    # Step 3: D A EOS (.63) and D B EOS (.1) top the candidates and both end: -0.15, -0.77.
    # fairseq's finalize_hypos has one slot left and fills it in rank order: (D, A, EOS); the
    # sentence is then finished with (D, EOS) kept. The lab's pool keeps the best two.
    fs = run(table, "beam_fairseq", beam_size=2, nbest=2)
    assert [h.tokens for h in fs] == [(D, A, EOS), (D, EOS)]
    best = run(table, "beam_fairseq", beam_size=2, nbest=2, finalize="best")
    assert [h.tokens for h in best] == [(D, A, EOS), (D, B, EOS)]
    assert [h.score for h in best] == pytest.approx([math.log(0.63) / 3, math.log(0.1) / 3])


# --- OpenNMT-py (onmt/translate/beam_search.py, BeamSearchBase)
def test_onmt_stops_when_the_top_beam_ends_even_on_the_empty_output():
    table = {(): {EOS: 0.4, A: 0.35, B: 0.25}, (A,): {EOS: 1.0}, (B,): {EOS: 1.0}}
    # Step 1's best candidate is EOS: beams_non_finished stops there (n_best=1 finished).
    (onmt,) = run(table, "beam_onmt", beam_size=2)
    assert onmt.tokens == (EOS,) and onmt.score == pytest.approx(math.log(0.4) / 2)  # BOS counts
    # Waiting for K=2 finished (first_k) finds (A, EOS): log .35 / 3 = -0.35 beats -0.46.
    (k,) = run(table, "beam_onmt", beam_size=2, stop_rule="first_k")
    assert k.tokens == (A, EOS) and k.score == pytest.approx(math.log(0.35) / 3)


def test_onmt_leaves_a_finished_beams_slot_empty_where_the_lab_refills_it():
    table = {
        (): {A: 0.45, EOS: 0.3, B: 0.25},
        (A,): {C: 0.45, D: 0.35, EOS: 0.2},
        (B,): {EOS: 1.0},
        (A, C): {EOS: 1.0},
        (A, D): {EOS: 1.0},
    }
    # Step 1, K=2: A and EOS top; (EOS,) ends. OpenNMT-py's _pick took only these two, so only A
    # goes on; step 2: A C (.2025), A D (.1575), no EOS on top; step 3: A C EOS tops and ends
    # the search: log .2025 / 4 = -0.40 beats (EOS,) at -0.60 and (A, D, EOS) at -0.46.
    (onmt,) = run(table, "beam_onmt", beam_size=2)
    assert onmt.tokens == (A, C, EOS)
    # Refilled from 2K candidates, B (rank 3) goes on too; step 2: B EOS (.25) tops and ends
    # the search: log .25 / 3 = -0.46 beats (EOS,) at -0.60.
    (refill,) = run(table, "beam_onmt", beam_size=2, refill=True)
    assert refill.tokens == (B, EOS) and refill.score == pytest.approx(math.log(0.25) / 3)


# --- CTranslate2 (src/decoding.cc, BeamSearch::search)
def test_ct2_patience_waits_for_beam_size_times_patience_finished_hypotheses():
    table = {(): {D: 1.0}, (D,): {EOS: 0.55, A: 0.45}, (D, A): {EOS: 1.0}}
    # K=1: (D, EOS) ends at step 2 (log .55 / 2 = -0.30); patience 1 stops there.
    assert [h.tokens for h in run(table, "beam_ct2", beam_size=1)] == [(D, EOS)]
    # patience 2 waits for a second one: (D, A, EOS), log .45 / 3 = -0.27, wins.
    two = run(table, "beam_ct2", beam_size=1, patience=2.0)
    assert [h.tokens for h in two] == [(D, A, EOS)]


# --- bad input: one line, naming the fix
NO_REPEAT = {"name": "no_repeat_ngram", "n": 2}


@pytest.mark.parametrize(
    ("search", "keys", "message"),
    [
        ("beam_fairseq", {"num_beams": 4}, "accepted by search=beam_hf only.*beam_size"),
        ("beam_hf", {"num_beams": 4, "beam_size": 4}, "num_beams and search.beam_size"),
        ("beam_hf", {"max_new_tokens": 9, "max_len_b": 9}, "max_new_tokens and search.max_len_b"),
        ("beam_hf", {"no_repeat_ngram_size": 2, "processors": [NO_REPEAT]}, "no_repeat_ngram "),
        ("beam_ct2", {"patince": 2}, "Did you mean 'patience'"),
        ("beam_onmt", {"beam_size": "5"}, "whole number"),
        ("beam_hf", {"early_stopping": "sometimes"}, "true, false or never"),
        ("beam_hf", {"patience": 2.0}, "only to stop_rule=patience"),
        ("beam_ct2", {"patience": 0.2}, "rounds to 0"),
        ("beam_fairseq", {"forced_eos": "always"}, "not one of off, zero, logprob, model"),
        ("beam_lp", {"length_offset": -1}, "whole number >= 0"),
        ("greedy", {"processors": [{"name": "forced_eos"}]}, "forced_eos needs max_len"),
    ],
)  # fmt: skip
def test_bad_keys_are_one_line_errors(search, keys, message):
    with pytest.raises(LabError, match=message):
        SEARCHES.build(search, **keys)


def test_an_unknown_preset_lists_the_valid_ones_and_untracked_rules_are_refused():
    with pytest.raises(LabError, match="unknown preset 'marian'.*ct2, fairseq, hf, onmt"):
        resolve("marian", {})
    diverse = SEARCHES.build("diverse_beam", beam_size=2, num_groups=2, stop_rule="top_beam")
    with pytest.raises(LabError, match="stop_rule=top_beam needs"):
        diverse(TableModel(LOOP), SRC, LEN)
    assert sorted(PRESETS) == ["ct2", "fairseq", "hf", "onmt"]


# --- lab toolkits
REFS = ["a b c", "d e", "f g h i", "j"]


def write_run(root, name, search, hyps, model="m", metrics=True):
    run_dir = root / name
    run_dir.mkdir(parents=True)
    rows = [{"id": f"s{i}", "src": "x", "ref": REFS[i], "hyp": h} for i, h in enumerate(hyps)]
    (run_dir / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    empty = sum(not h for h in hyps) / len(hyps)
    results = {
        "status": "completed", "task": "toy_mt", "model": model, "search": search["name"],
        "split": "test", "checkpoint": f"/ckpt/{model}", "config": {"search": search, "seed": 0},
        "metrics": {"bleu": 10.0, "len_ratio": 0.9, "empty_rate": empty} if metrics else {},
        "n_examples": len(rows),
    }  # fmt: skip
    (run_dir / "results.json").write_text(json.dumps(results))


def test_lab_toolkits_tables_quality_and_how_often_each_pair_of_presets_differs(tmp_path, capsys):
    fairseq = {"name": "beam_fairseq", **dict.fromkeys(LAB_KEYS)}
    write_run(tmp_path, "beam", {"name": "beam", "beam_size": 4, "stop_rule": "first_k"}, REFS)
    write_run(tmp_path, "fairseq", fairseq, ["a b c", "d e", "f g h", "j"])
    write_run(tmp_path, "onmt", {"name": "beam_onmt"}, ["a b", "", "f g h", "j"], metrics=False)
    main(["toolkits", str(tmp_path), "--out", str(tmp_path / "out")])
    written = capsys.readouterr().out.split()
    assert [p.rsplit("/", 1)[-1] for p in written] == [
        "toolkits.md", "toolkits.csv", "toolkits_pairs.csv"
    ]  # fmt: skip
    runs = {r["run"]: r for r in _csv(tmp_path / "out" / "toolkits.csv")}
    assert runs["beam_fairseq"]["beam_size"] == "5"  # the preset's value, resolved
    assert (runs["beam"]["beam_size"], runs["beam_onmt"]["stop_rule"]) == ("4", "top_beam")
    assert float(runs["beam_onmt"]["empty_rate"]) == 0.25  # computed from its predictions
    assert float(runs["beam"]["bleu"]) == 10.0  # as the run recorded it
    pairs = _csv(tmp_path / "out" / "toolkits_pairs.csv")
    pairs = {(r["a"], r["b"]): float(r["differ"]) for r in pairs}
    assert pairs == {
        ("beam", "beam_fairseq"): 0.25, ("beam", "beam_onmt"): 0.75,
        ("beam_fairseq", "beam_onmt"): 0.5,
    }  # fmt: skip
    assert "| beam_onmt" in (tmp_path / "out" / "toolkits.md").read_text()


def _csv(path):
    return list(csv.DictReader(path.open()))


def test_lab_toolkits_refuses_runs_of_other_models_or_examples(tmp_path):
    write_run(tmp_path / "a", "beam", {"name": "beam"}, REFS)
    write_run(tmp_path / "a", "hf", {"name": "beam_hf"}, REFS, model="other")
    with pytest.raises(LabError, match="differ in model"):
        load([tmp_path / "a"])
    write_run(tmp_path / "b", "beam", {"name": "beam"}, REFS)
    write_run(tmp_path / "b", "ct2", {"name": "beam_ct2"}, REFS[:3])
    with pytest.raises(LabError, match="decoded different examples"):
        load([tmp_path / "b"])
