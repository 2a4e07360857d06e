"""The tables and headline figures of reports/README.md and README.md are the committed
data's: each table of the report prose is read back and each cell compared, after rounding,
with the value computed from the per-run summaries (``reports/<section>/runs/``) or the other
committed data (``analysis_*.csv``, ``bench.json``, ``throughput.json``, ``toolkits/``). A
figure edited in the text without its data, or data changed without the text, fails here.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lab.rebuild.babi_seeds import _frame, training
from tests.report_data import (
    M30K_RUNS,
    MAIN,
    PROSE,
    REPORTS,
    f,
    pct,
    run,
    said,
    table,
)


def test_multi30k_table() -> None:
    rows = table("| model | search | sacreBLEU |")
    assert len(rows) == 12
    for model, search, *cells in rows:
        r = run("multi30k/runs", f"model={model.split(',')[0]},{M30K_RUNS[search]}")
        want = [f(r.bleu), f(r.bleu_tok_lc), f(r.chrf), f(r.ter), f(r.len_ratio)]
        assert cells == want, (model, search)


def test_multi30k_prose() -> None:
    t = {
        k: run("multi30k/runs", f"model=transformer,{v}").bleu_tok_lc for k, v in M30K_RUNS.items()
    }
    gru = run("multi30k/runs", "model=gru,search=greedy").bleu_tok_lc
    assert said(f"Transformer {f(t['greedy'])} vs 36.5")
    assert said(f"beam 5 adds {f(t['beam 5'] - t['greedy'])}")
    assert said(f"another {f(t['beam_lp 5, gnmt alpha 0.6'] - t['beam 5'])}")
    assert said(f"GRU with attention {f(gru)} vs 28.3")
    minutes = {
        m: round(run("multi30k/runs", f"model={m},search=greedy")["train.train_seconds"] / 60)
        for m in ("transformer", "gru", "lstm")
    }
    assert said(f"({minutes['transformer']} and {minutes['gru']} minutes")
    assert said(f"two threads ({minutes['lstm']} minutes)")
    for model in ("transformer", "gru", "lstm"):
        r = run("multi30k/runs", f"model={model},search=greedy")
        assert said(f"({r['train.params'] / 1e6:.2f}M parameters)"), model
        assert said(f"perplexity {f(r['train.best.valid/ppl'])}"), model
    t = run("multi30k/runs", "model=transformer,search=greedy")
    assert said(f"seed 0, {t['train.params'] / 1e6:.2f}M parameters;")


def test_beam_curse_table() -> None:
    rows = table("| beam | BLEU none |")
    assert len(rows) == 7
    for beam, *cells in rows:
        none, avg = (
            run("beam_curse/runs", f"search.beam_size={beam},search.penalty={p}")
            for p in ("none", "average")
        )
        want = [f(none.bleu), f(avg.bleu), f(none.len_ratio), f(avg.len_ratio)]
        want += [f(none.mean_logprob), f(avg.mean_logprob)]
        want += [f(none.empty_rate, 3), f(avg.empty_rate, 3)]
        assert cells == want, beam


@pytest.mark.parametrize(
    ("sub", "header"),
    [
        ("search_errors", "| beam | search error |"),
        ("search_errors/gru", "| beam | search error |"),
    ],
)
def test_search_error_tables(sub: str, header: str) -> None:
    rates = pd.read_csv(REPORTS / sub / "analysis_rates.csv")
    sentences = pd.read_csv(REPORTS / sub / "analysis_sentences.csv")
    text = PROSE if sub == "search_errors" else PROSE[PROSE.index("**The GRU**") :]
    rows = table(header, text)
    assert len(rows) == len(rates) == 8
    for (beam, *cells), (_, r) in zip(rows, rates.iterrows(), strict=True):
        hyp = sentences[sentences["run"] == r["run"]]["hyp_logprob"].mean()
        want = [pct(r.search_error), pct(r.ref_above_hyp), pct(r.model_error), f(hyp)]
        want += [f(r.bleu), f(r.len_ratio, 3)]
        assert [beam, *cells] == [str(r.beam_size), *want]


def test_exact_search_figures() -> None:
    exact = json.loads(
        (REPORTS / "dashboard/runs/search_errors/search=exact/results.json").read_text()
    )["metrics"]
    row = table("| proved optimal | empty mode |")[0]
    assert row[2:] == [
        f(exact["bleu"]),
        f(exact["chrf"]),
        f(exact["len_ratio"], 3),
        f(exact["mean_logprob"]),
        f"{exact['decode_seconds']:.0f} s ({exact['decode_seconds'] / 60:.0f} min)",
    ]
    assert said(f"mean reference log-prob is {f(exact['mean_ref_logprob'])}")
    gru = pd.read_csv(REPORTS / "search_errors/gru/analysis_sentences.csv")
    mode = gru[gru["run"] == gru["run"].iloc[0]]
    g = pd.read_csv(REPORTS / "search_errors/gru/analysis_rates.csv").iloc[0]
    assert said(
        f"proved {int(mode.proved_optimal.sum())} / 1000 sentences optimal; the mode: sacreBLEU "
        f"{f(g.exact_bleu)}, len ratio {f(g.exact_len_ratio, 3)}, mean log-prob "
        f"{f(mode.exact_logprob.mean())}, empty for {int((mode.exact_length == 1).sum())} sentences"
    )


def test_sampling_tables() -> None:
    one = {
        "greedy": "search=greedy",
        "beam 5": "search=beam",
        "ancestral sample": "search.processors=[],search=sample",
        "temperature 0.7": "search.processors=[{name:temperature,temperature:0.7}],search=sample",
        "top-k 10": "search.processors=[{name:top_k,top_k:10}],search=sample",
        "top-p 0.9": "search.processors=[{name:top_p,top_p:0.9}],search=sample",
        "epsilon 0.02": "search.processors=[{name:epsilon,epsilon:0.02}],search=sample",
    }
    for name, *cells in table("| search | sacreBLEU | chrF | len ratio | repetition |"):
        r = run("sampling_mbr/runs", one[name])
        assert cells == [f(r.bleu), f(r.chrf), f(r.len_ratio, 3), pct(r.repetition_rate)], name
    beam, beam_cost = (
        run("sampling_mbr/runs", "search=beam"),
        run("sampling_mbr/cost/runs", "search=beam"),
    )
    rows = table("| candidates | chrF |")
    assert rows[0][5:7] == [f(beam_cost.decode_seconds, 1), "1.0"]
    nbest = "+search.candidates={name:beam,beam_size:5,nbest:5},search=mbr,~search.candidates=null"
    for name, chrf, gain, bleu, ratio, seconds, times, gen, sel, _ in rows[1:]:
        n = name.split()[0]
        key = f"search.candidates.num_samples={n},search=mbr" if n.isdigit() else nbest
        r, cost = run("sampling_mbr/runs", key), run("sampling_mbr/cost/runs", key)
        assert [chrf, gain, bleu, ratio] == [
            f(r.chrf),
            f"{r.chrf - beam.chrf:+.2f}",
            f(r.bleu),
            f(r.len_ratio, 3),
        ], name
        assert (cost.chrf, cost.bleu) == (r.chrf, r.bleu), name  # re-measured: same outputs
        assert [seconds, times, gen, sel] == [
            f(cost.decode_seconds, 1),
            f(cost.decode_seconds / beam_cost.decode_seconds, 1),
            f(cost.cost_generation_seconds, 1),
            f(cost.cost_selection_seconds, 1),
        ], name
    div = run(
        "sampling_mbr/runs", "search.diversity_strength=1.0,search.nbest=10,search=diverse_beam"
    )
    b10 = run("sampling_mbr/runs", "search.beam_size=10,search.nbest=10,search=beam")
    assert said(
        f"gives {f(div.distinct_4 / b10.distinct_4)}x beam's distinct-4 at "
        f"{f(div.bleu - b10.bleu)} top-1 BLEU"
    )


def test_toolkits_and_ct2() -> None:
    beam5 = pd.read_csv(REPORTS / "toolkits/toolkits_beam5.csv").set_index("run")
    presets = beam5.loc[["beam_hf", "beam_fairseq", "beam_onmt", "beam_ct2"], "bleu"]
    assert said(f"come within {f(presets.max() - presets.min())} BLEU of each")
    ct2 = {
        k: json.loads((REPORTS / f"toolkits/ct2_{k}.json").read_text())
        for k in ("beam5", "int8_beam5")
    }
    fp, q = ct2["beam5"], ct2["int8_beam5"]
    assert said(
        f"the lab takes {f(fp['lab_vs_ct2_time_ratio'])}x CTranslate2's time in float32"
        f" ({fp['lab_seconds']:.1f} s / {fp['ct2_seconds']:.1f} s) and"
        f" {f(q['lab_vs_ct2_time_ratio'])}x in int8"
    )
    assert q["lab_seconds"] < fp["lab_seconds"] and q["ct2_seconds"] < fp["ct2_seconds"]
    for name, res in (("`ct2_beam5.json`) | 100.0%", fp), ("int8 both sides", q)):
        row = f"{res['lab_seconds']:.1f} s / {res['ct2_seconds']:.1f} s |"
        assert said(row) and any(name in line and row in line for line in PROSE.splitlines())
    assert said(
        f"+{f(q['lab_bleu'] - fp['lab_bleu'])} (lab) and "
        f"+{f(q['ct2_bleu'] - fp['ct2_bleu'])} (CTranslate2)"
    )
    assert said(f"agree on {100 * q['identical']:.0f}%")


def test_bench_figures() -> None:
    b = json.loads((REPORTS / "bench/bench.json").read_text())
    assert b["environment"]["cpu"] == "AMD EPYC" and said("torch 2.13.0+cpu on an AMD EPYC")

    def verdict(name: str) -> str:
        return "met" if b["targets"][name]["pass"] else "**not met**"

    target = {k: v["target"] for k, v in b["targets"].items()}
    assert target["search_overhead_beam5"] == "<= 1.05"
    assert said(
        f"`search_overhead_beam5` {b['search_overhead_beam5']:.3f} against a target of at most"
        f" 1.05: {verdict('search_overhead_beam5')} in this run"
    )
    assert said(f"`cache_speedup_50` {b['cache_speedup_50']:.1f} (target at least 3: met)")
    assert b["targets"]["cache_speedup_50"]["pass"]
    for name, bound in (
        ("sample_overhead_n16", "1.15"),
        ("stochastic_beam_vs_beam10", "1.3"),
        ("lab_vs_hf_beam5_time_ratio", "0.7"),
        ("lab_vs_ct2_greedy_time_ratio", "1.4"),
    ):
        assert target[name] == f"<= {bound}", name
        assert said(f"`{name}` {b[name]:.3f} against at most {bound}: {verdict(name)} in this run")
    ct2 = "lab_vs_ct2_beam5_time_ratio"
    assert said(f"`{ct2}` {b[ct2]:.3f} against at most 1.3 (goal 1.2): {verdict(ct2)} in this run")
    assert said(f"layout is `sample_apart_layout_n16` {b['sample_apart_layout_n16']:.3f}")
    assert b["lab_vs_hf_beam5_identical"] == b["lab_vs_hf_greedy_identical"] == 1.0
    assert b["lab_vs_ct2_greedy_identical"] == 1.0
    assert said(f"int8 on both sides {b['lab_int8_vs_ct2_int8_beam5_time_ratio']:.3f}")
    assert said(f"makes the lab's beam 5 {b['int8_speedup_beam5']:.3f}x faster")
    t = json.loads((REPORTS / "throughput/throughput.json").read_text())
    rows = {r["launcher"]: r["decode_s"] for r in t["rows"]}
    slow, fast = rows["basic"], rows["basic-1thread"]
    assert said(
        f"decoding {slow / fast:.0f}x slower in `reports/throughput/` "
        f"({slow:.1f} s against {fast:.1f} s",
        MAIN,
    )


def _pooled_cell(text: str) -> str:
    """``21.48 ± 2.05 (n=3)`` as the README writes it: ``21.48 ± 2.05``."""
    return text.rsplit(" (n=", 1)[0]


def test_babi_and_squad() -> None:
    seeds = pd.read_csv(REPORTS / "babi/babi_joint_seeds.csv")
    assert (seeds["mean error"].str.endswith("(n=3)")).all()  # every setting on three seeds
    for label, model in (
        ("facts Transformer, joint", "facts"),
        ("facts Transformer + copy, joint", "facts + copy"),
    ):
        row = next(r for r in table("| | greedy | beam 5 (first_k) |") if r[0] == label)
        for cell, search, rule in zip(
            row[1:], ("greedy", "beam", "beam"), ("-", "first_k", "canonical"), strict=True
        ):
            s = seeds[(seeds.model == model) & (seeds.search == search)]
            s = s[s["stop rule"] == rule].iloc[0]
            want = f"{_pooled_cell(s['mean error'])} ({_pooled_cell(s['failed tasks'])})"
            assert cell.replace("**", "") == want, (label, search, rule)
    train = training(_frame(REPORTS / "babi/runs/babi_joint"))
    for label, *cells in table("| model | updates (best update), seeds 0 / 1 / 2 |"):
        t = train[train.model == ("facts + copy" if "copy" in label else "facts")]
        t = t.sort_values("seed")
        pairs = zip(t.updates, t["best update"], strict=True)
        ups = " / ".join(f"{int(u):,} ({int(b):,})" for u, b in pairs)
        assert cells[0] == ups and cells[1] == " / ".join(f"{m:.1f}" for m in t.minutes)
        assert cells[2] == f"{round(t.parameters.iloc[0] / 1000)}k"
        assert (t.updates < 60_000).all()  # "the cap of 60,000 updates is never reached"
    squad = {
        "floor": "squad/search=",
        "copy": "squad_copy/search=",
        "the same": "squad_copy/model.dropout=0.3,search=",
        "plain": "squad_copy/model.copy=False,search=",
    }
    suffix = {"the same": ",train.max_steps=2400,train.patience=6"}
    for label, _, minutes, greedy, beam in table("| model | updates (best) |"):
        key = next(k for k in squad if label.startswith(k))
        g, b = (
            run("squad/runs", f"{squad[key]}{s}{suffix.get(key, '')}") for s in ("greedy", "beam")
        )
        assert minutes == f"{g['train.train_seconds'] / 60:.1f} min"
        assert [greedy, beam] == [f"{f(g.em)} / {f(g.f1)}", f"{f(b.em)} / {f(b.f1)}"]
