"""Every comparison of two searches that reports/README.md states carries its paired
bootstrap interval: the intervals quoted here are the committed paired-test tables', and the
verdict the text draws from them (shown, not shown) is the one the intervals allow."""

from __future__ import annotations

import pandas as pd

from tests.report_data import REPORTS, f, interval, paired_table, runs, said


def test_normalized_toolkit_presets_are_not_shown_apart_in_bleu() -> None:
    t = paired_table("toolkits/seeds/toolkits_beam5_vs_fairseq")
    t = t[~t.baseline].sort_values("seed")
    for search, label in (("beam_hf", "HF"), ("beam_onmt", "OpenNMT-py")):
        rows = t[t.search == search]
        assert ((rows.bleu_delta_low < 0) & (rows.bleu_delta_high > 0)).all(), search
        assert said(f"{label} " + ", ".join(interval(r) for _, r in rows.iterrows())), search
    onmt, hf = t[t.search == "beam_onmt"], t[t.search == "beam_hf"]
    assert (onmt.chrf_delta_high < 0).all()
    assert list(hf.chrf_delta_high < 0) == [True, False, True]
    assert said("In chrF OpenNMT-py is below fairseq on every seed and HF on seeds 0 and 2")
    assert (t[t.search == "beam_ct2"].bleu_delta == 0).all()


def test_every_beam_is_above_the_mode_on_every_seed() -> None:
    t = paired_table("search_errors/seeds/exact_paired")
    beams = t[~t.baseline]
    assert len(beams) == 18 and set(beams.seed) == {0, 1, 2}
    assert (beams.bleu_delta_low > 0).all()
    beam4 = beams[(beams["search.penalty"] == "none") & (beams["search.beam_size"] == 4)]
    text = [interval(r) for _, r in beam4.sort_values("seed").iterrows()]
    assert said(f"{text[0]} BLEU on seed 0, {text[1]} and {text[2]} on seeds 1 and 2")
    low, high = beams.loc[beams.bleu_delta.idxmin()], beams.loc[beams.bleu_delta.idxmax()]
    assert said(f"from {interval(low)} for beam 64 unnormalized on seed 0")
    assert (low.seed, low["search.beam_size"], low["search.penalty"]) == (0, 64, "none")
    assert said(f"to {interval(high)} for beam 64 normalized on seed 1")
    assert (high.seed, high["search.beam_size"], high["search.penalty"]) == (1, 64, "average")


def test_length_penalty_gains_on_every_seed() -> None:
    t = paired_table("multi30k/multi30k_lp_paired")
    lp = t[t.search == "beam_lp"].sort_values("seed")
    assert len(lp) == 6 and (lp.bleu_delta_low > 0).all()
    for alpha in (0.6, 1.0):
        rows = [interval(r) for _, r in lp[lp["search.alpha"] == alpha].iterrows()]
        assert said(f"at alpha {alpha} {rows[0]}, {rows[1]} and {rows[2]}"), alpha
    pooled = runs("multi30k/length_penalty/runs").groupby("search.alpha").bleu.agg(["mean", "std"])
    for alpha in (0.6, 1.0):
        m, sd = pooled.loc[alpha]
        assert said(f"{f(m)} ± {f(sd)} at alpha {alpha}"), alpha
    seed0 = runs("multi30k/length_penalty/runs")
    seed0 = seed0[seed0.seed == 0].sort_values("search.alpha")
    base = runs("multi30k/runs")
    base = base[(base.model == "transformer") & (base.search == "beam_lp")].sort_values(
        "search.alpha"
    )
    assert list(seed0.bleu.round(6)) == list(base.bleu.round(6))


def _one_output(
    t: pd.DataFrame,
    search: str,
    processors: str | None = None,
    samples: int | None = None,
    name: str | None = None,
) -> pd.Series:
    rows = t[t.search == search]
    if processors is not None:
        rows = rows[rows["search.processors"] == processors]
    if samples is not None:
        rows = rows[rows["search.candidates.num_samples"] == samples]
    if name is not None:
        rows = rows[rows["search.candidates.name"] == name]
    assert len(rows) == 1, (search, processors, samples, name)
    return rows.iloc[0]


def test_sampling_and_mbr_against_beam5() -> None:
    t = paired_table("sampling_mbr/paired/vs_beam5")
    samples = t[t.search == "sample"]
    assert len(samples) == 5 and (samples.bleu_delta_high < 0).all()
    assert (samples.chrf_delta_high < 0).all()
    named = {
        "ancestral sampling": "[]",
        "temperature 0.7": '[{"name": "temperature", "temperature": 0.7}]',
        "epsilon": '[{"name": "epsilon", "epsilon": 0.02}]',
        "top-k": '[{"name": "top_k", "top_k": 10}]',
        "top-p": '[{"name": "top_p", "top_p": 0.9}]',
    }
    rows = {label: _one_output(t, "sample", p) for label, p in named.items()}
    for label, row in rows.items():
        assert said(f"{label} {interval(row)}"), label
    ancestral = rows["ancestral sampling"]
    for label in ("temperature 0.7", "epsilon", "top-k", "top-p"):
        assert rows[label].bleu_delta_low > ancestral.bleu_delta_high, label
    nbest = _one_output(t, "mbr", name="beam")
    assert nbest.chrf_delta_low > 0 and said(f"raises chrF by {interval(nbest, 'chrf')} at 1.1x")
    assert nbest.bleu_delta_low < 0 < nbest.bleu_delta_high
    assert said(f"its BLEU gain, {interval(nbest)}, is not shown")
    mbr = t[(t.search == "mbr") & (t["search.candidates.name"] == "sample")]
    mbr = mbr.set_index("search.candidates.num_samples").sort_index()
    assert list(mbr.index) == [8, 16, 32, 64]
    assert mbr.loc[8].chrf_delta_low < 0 and (mbr.loc[[16, 32, 64]].chrf_delta_low > 0).all()
    assert said(f"not shown at 8 samples ({interval(mbr.loc[8], 'chrf')})")
    shown = ", ".join(f"{interval(mbr.loc[n], 'chrf')} ({n})" for n in (16, 32, 64))
    assert said(f"shown from 16 on: {shown}")
    assert (mbr.bleu_delta_high < 0).all() and said(f"({interval(mbr.loc[8])} at 8)")


def test_diverse_strengths_against_beam10() -> None:
    t = paired_table("sampling_mbr/paired/vs_beam10")
    div = t[t.search == "diverse_beam"].set_index("search.diversity_strength").sort_index()
    assert list(div.index) == [0.2, 0.5, 0.8, 1.0, 2.0]
    assert ((div.bleu_delta_low < 0) & (div.bleu_delta_high > 0)).all()
    assert said(f"from {interval(div.loc[0.2])} at 0.2 to {interval(div.loc[2.0])} at 2.0")


def _rnn_searches(model: str) -> tuple[pd.Series, pd.Series, pd.Series]:
    """An RNN's beam 5 and GNMT beam 5 at alpha 0.6 and 1.0 against its greedy (test rows)."""
    rows = paired_table(f"multi30k/multi30k_{model}_paired")
    rows = rows[~rows.baseline].set_index("run")
    names = ("search=beam", "search.alpha=0.6,search=beam_lp", "search.alpha=1.0,search=beam_lp")
    beam, lp6, lp10 = (rows.loc[f"model={model},{name}"] for name in names)
    return beam, lp6, lp10


def test_the_grus_searches_against_its_greedy() -> None:
    beam, lp6, lp10 = _rnn_searches("gru")
    for r in (beam, lp6):  # "not shown either way": the interval holds 0
        assert r.bleu_delta_low < 0 < r.bleu_delta_high
    assert said(f"Beam 5 {interval(beam)} and the GNMT penalty at alpha 0.6 {interval(lp6)}")
    assert lp10.bleu_delta_low > 0 and lp10.bleu_p < 0.05 and lp10.chrf_delta_low > 0
    assert said(f"at alpha 1.0 the penalty's {interval(lp10)} is significant")
    assert said(f"chrF {interval(lp10, 'chrf')})")
    # the retrained runs reproduce the committed table's runs to the last digit
    old = runs("multi30k/runs").set_index("name")
    for _, r in runs("multi30k/gru/runs").iterrows():
        assert r.bleu == old.loc[r["name"], "bleu"] and r.chrf == old.loc[r["name"], "chrf"]


def test_the_retrained_lstms_searches_against_its_greedy() -> None:
    beam, lp6, lp10 = _rnn_searches("lstm")
    for r in (beam, lp6, lp10):  # "no search is shown to differ from greedy"
        assert r.bleu_delta_low < 0 < r.bleu_delta_high
    assert said(f"beam 5 {interval(beam)}, the GNMT penalty {interval(lp6)} at alpha 0.6")
    assert said(f"and {interval(lp10)} at alpha 1.0")
    chrf = ", ".join(interval(r, "chrf") for r in (beam, lp6))
    assert said(f"(chrF {chrf} and {interval(lp10, 'chrf')})")
    # the retrained model is not the committed one: the text gives both scores
    old = runs("multi30k/runs").set_index("name")
    new = runs("multi30k/lstm/runs").set_index("name")
    for run, words in (
        ("model=lstm,search=greedy", "greedy scores"),
        ("model=lstm,search=beam", "beam 5"),
    ):
        assert new.loc[run, "bleu"] != old.loc[run, "bleu"]
        assert said(f"{words} {f(new.loc[run, 'bleu'])}") and said(
            f"against {f(old.loc[run, 'bleu'])}"
        )


def test_the_retrained_babi_tasks_beam_against_greedy() -> None:
    t = paired_table("babi/babi_1k_retrained_paired")
    greedy = t[t.search == "greedy"].set_index("task.task_id")
    beam = t[t.search == "beam"].set_index("task.task_id")
    assert list(beam.index) == list(range(1, 21))
    shown = beam[(beam.accuracy_delta_low > 0) | (beam.accuracy_delta_high < 0)]
    assert list(shown.index) == [8, 18] and shown.loc[8].accuracy_delta < 0
    loss = interval(shown.loc[8], "accuracy").split(" ", 1)
    assert said(f"task 8's loss is shown, {loss[0]} points {loss[1]}")
    assert said(f"yes/no answers), {interval(shown.loc[18], 'accuracy')}")
    same = int((beam.accuracy == greedy.accuracy).sum())
    assert said(f"on the other 18 tasks no difference is shown (the same accuracy on {same} of")
    errors = f(100 - greedy.accuracy.mean()), f(100 - beam.accuracy.mean())
    committed = pd.read_csv(REPORTS / "babi/babi_1k_error_pivot.csv").set_index("task.task_id")
    old = f(committed.loc["mean", "greedy"]), f(committed.loc["mean", "beam"])
    assert said(
        f"mean error {errors[0]} greedy and {errors[1]} beam, against {old[0]} and {old[1]}"
    )


def test_the_retrained_10k_tasks_turn_task_8_around() -> None:
    t = paired_table("babi/babi_10k_retrained_paired")
    greedy = t[t.search == "greedy"].set_index("task.task_id")
    beam = t[t.search == "beam"].set_index("task.task_id")
    assert list(beam.index) == [1, 2, 8, 19]
    shown = beam[(beam.accuracy_delta_low > 0) | (beam.accuracy_delta_high < 0)]
    assert list(shown.index) == [8] and shown.loc[8].accuracy_delta > 0  # "the other direction"
    gain = interval(shown.loc[8], "accuracy").split(" ", 1)
    assert said(f"in the other direction, {gain[0]} points {gain[1]}, while task 19's")
    assert said(f"task 19's {interval(beam.loc[19], 'accuracy')} and tasks 1 and 2 show none")
    errors = f(100 - greedy.accuracy.mean()), f(100 - beam.accuracy.mean())
    committed = pd.read_csv(REPORTS / "babi/babi_10k_error_pivot.csv").set_index("task.task_id")
    old = f(committed.loc["mean", "greedy"]), f(committed.loc["mean", "beam"])
    assert said(f"mean error {errors[0]} greedy and {errors[1]} beam, against {old[0]} and")
    assert said(f"against {old[0]} and {old[1]}), turn task 8 around")
