"""The bench section of reports/README.md says what the committed bench data say: the quick
runs (``bench/quick*``) figure by figure with the verdict that follows from all of them, the
levers with their intervals (``bench/levers/levers.json``), int8 on the trained model
(``bench/levers/int8_multi30k_transformer.json``) and the operator shares of the profiles."""

from __future__ import annotations

import json
import re

from tests.report_data import REPORTS, said, table

QUICK = [
    json.loads((REPORTS / f"bench/{d}/bench.json").read_text())
    for d in ("quick", "quick_2", "quick_3", "quick_4", "quick_5")
]
LEVERS = json.loads((REPORTS / "bench/levers/levers.json").read_text())
INT8 = json.loads((REPORTS / "bench/levers/int8_multi30k_transformer.json").read_text())
SORTED = json.loads((REPORTS / "bench/levers/batching_multi30k_transformer.json").read_text())


def verdict(values: list[float], target: str) -> str:
    """What the runs say about a target written ``at most X`` or ``at least X``."""
    bound = float(re.match(r"at (?:most|least) ([0-9.]+)", target).group(1))
    ok = [v <= bound if target.startswith("at most") else v >= bound for v in values]
    if all(ok):
        return "met in every run"
    if not any(ok):
        return "not met in any run"
    return f"met in {sum(ok)} of {len(ok)} runs"


def test_the_quick_table_is_every_run_with_the_verdict_they_give() -> None:
    rows = table("| figure | run 1 | run 2 | run 3 | run 4 | run 5 | target | verdict |")
    assert len(rows) == 10
    for name, *cells, target, said_verdict in rows:
        values = [q[name.strip("`")] for q in QUICK]
        assert cells == [f"{v:.3f}" for v in values], name
        assert said_verdict == (verdict(values, target) if target else ""), name
    for q in QUICK:  # outputs identical to generate and CTranslate2, as the prose says
        assert q["lab_vs_hf_beam5_identical"] == q["lab_vs_hf_greedy_identical"] == 1.0
        assert q["lab_vs_ct2_greedy_identical"] == 1.0


def _interval(r: dict[str, float]) -> str:
    return f"{r['median']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"


def _shown(r: dict[str, float]) -> bool:
    return r["low"] > 1


def test_the_levers_prose_quotes_the_levers_json() -> None:
    lv, tried, noise = LEVERS["levers"], LEVERS["tried"], LEVERS["noise"]
    assert LEVERS["repeats"] == 25 and said("the median of 25 interleaved rounds")
    assert LEVERS["environment"]["cpu"] == "AMD EPYC" and said("the same AMD EPYC as the full run")
    assert said(f"greedy {_interval(noise['greedy'])}, beam 5 {_interval(noise['beam5'])}")
    packed = lv["packed_linears"]
    assert _shown(packed["greedy"]) and _shown(packed["beam5"])
    assert said(f"(the levers table below: {packed['beam5']['median']:.2f}x at beam 5)")
    full = json.loads((REPORTS / "bench/bench.json").read_text())["environment"]["platform"]
    assert full.endswith("-v1300-x86_64-with-glibc2.36") and said("this one `...-v1300`")
    assert said(f"greedy {_interval(packed['greedy'])}, beam 5 {_interval(packed['beam5'])}")
    assert _shown(lv["two_level_topk"]["beam5"])
    assert said(f"two-level top-k, beam 5 {_interval(lv['two_level_topk']['beam5'])}")
    for words, r in (
        ("into one fill, beam 5", lv["one_fill"]["beam5"]),
        ("greedy on this unsorted batch", lv["packed_encoder"]["greedy"]),
    ):  # "not shown on this machine"
        assert not _shown(r) and said(f"{words} {_interval(r)}"), words
    off = LEVERS["all_off_vs_all_on"]
    assert _shown(off["greedy"]) and _shown(off["beam5"])
    assert said(f"greedy {_interval(off['greedy'])}, beam 5 {_interval(off['beam5'])}")
    fused, ban = tried["fused_qkv"], tried["inplace_ban"]
    assert not any(_shown(fused[k]) for k in ("greedy", "beam5")) and not _shown(ban["beam5"])
    assert said(f"greedy {_interval(fused['greedy'])} and beam 5 {_interval(fused['beam5'])}")
    assert said(f"shows nothing either, beam 5 {_interval(ban['beam5'])}")
    plain = tried["plain_step_attention"]["greedy"]
    assert plain["high"] < 1 and said(f"slows greedy, {_interval(plain)}")
    c = LEVERS["compile"]
    assert c["identical"] and c["greedy"]["high"] < 1
    assert said(f"(first call {c['first_call_s']:.0f} s) slows greedy, {_interval(c['greedy'])}")
    same = LEVERS["identical_to_all_on"]
    assert all(same[f"no_{n}/{k}"] for n in lv for k in ("greedy", "beam5"))
    assert all(same[f"with_{n}/{k}"] for n in tried for k in ("greedy", "beam5"))


def test_the_sixth_quick_run_on_the_current_code() -> None:
    q6 = json.loads((REPORTS / "bench/quick_6/bench.json").read_text())
    full = json.loads((REPORTS / "bench/bench.json").read_text())
    assert q6["environment"]["cpu"] == full["environment"]["cpu"]
    names = (
        "search_overhead_beam5", "sample_overhead_n16", "stochastic_beam_vs_beam10",
        "lab_vs_hf_beam5_time_ratio", "lab_vs_ct2_beam5_time_ratio",
        "lab_vs_ct2_greedy_time_ratio",
    )  # fmt: skip
    assert all(said(f"`{n}` {q6[n]:.3f}") for n in names)
    assert said(f"(layout {q6['sample_apart_layout_n16']:.3f})")
    beam = "lab_vs_ct2_beam5_time_ratio"
    assert full["targets"][beam]["pass"] and not q6["targets"][beam]["pass"]
    assert said(f"Beside the full run's {full[beam]:.3f}, the beam ratio")


def test_int8_and_the_profiles_as_quoted() -> None:
    m = INT8["median_s"]
    assert said(
        f"is {INT8['int8_speedup']:.2f}x faster ({m['int8']:.1f} s against {m['fp32']:.1f} s),"
        f" BLEU {INT8['bleu']['int8']:.2f} against {INT8['bleu']['fp32']:.2f}, with"
        f" {100 * INT8['identical']:.1f}% of outputs identical"
    )
    speedups = [q["int8_speedup_beam5"] for q in QUICK]
    assert said(f"it is {min(speedups):.2f}x to {max(speedups):.2f}x faster")

    def share(name: str) -> float:
        """The linear layers' share: the packed kernel and any plain product left."""
        text = (REPORTS / f"bench/profiles/{name}.txt").read_text()
        ops = ("mkldnn::_linear_pointwise", "aten::addmm", "aten::mm")
        found = [re.search(rf"{re.escape(op)}\s+([0-9.]+)%", text) for op in ops]
        return sum(float(m.group(1)) for m in found if m)

    assert said(f"Linear layers are still {share('greedy'):.0f}% of greedy's operator time and")
    assert said(f"{share('beam5'):.0f}% of beam 5's")


def test_sorted_batches_as_quoted() -> None:
    m = SORTED["median_s"]
    assert SORTED["identical"] == 1.0 and SORTED["n"] == 1000 and SORTED["batch_size"] == 100
    assert said(
        f"decodes test2016 {SORTED['sorting_speedup']:.2f}x faster sorted"
        f" ({m['sorted']:.1f} s against {m['file_order']:.1f} s), with every output identical"
    )


def test_the_layout_part_of_samples_overhead() -> None:
    last = QUICK[-1]
    assert all("sample_apart_layout_n16" not in q for q in QUICK[:-1])
    layout, total = last["sample_apart_layout_n16"], last["sample_overhead_n16"]
    assert said(f"took {layout:.3f} times the grouped floor's")
    assert layout >= total and said(f"as much as all of sample's overhead ({total:.3f})")
    assert last["search_rounds"] >= 7 and last["overhead_rounds"] >= 5


def test_exact_search_speed_figures() -> None:
    kernels, frontier = (
        json.loads((REPORTS / f"bench/levers/exact_{name}.json").read_text())
        for name in ("kernels", "frontier_1024")
    )
    assert kernels["search"]["before"]["frontier"] == kernels["search"]["after"]["frontier"] == 256
    assert frontier["search"]["after"]["frontier"] == 1024
    assert kernels["decode_seconds"]["after"] == frontier["decode_seconds"]["before"]
    k, fr = kernels["decode_seconds"], frontier["decode_seconds"]
    assert said(f"{k['after']:.0f} s against the {k['before']:.0f} s of the committed run")
    assert said(f"a ratio of {kernels['speedup']:.3f}. No gain is shown")
    assert said(f"{fr['after']:.0f} s against {fr['before']:.0f} s, {frontier['speedup']:.3f}x")
    steps, exp = frontier["steps"], frontier["expanded"]
    assert said(f"in {steps['after']} `step` calls against {steps['before']}")
    assert said(f"(and {exp['after']} expansions against {exp['before']}")
    for res in (kernels, frontier):
        assert res["same_proved_set"] and res["identical_proved"] == 1.0
    proved = frontier["proved"]["after"]
    assert said(f"Both runs prove the same {proved} sentences, and every proved output")
    unproved = frontier["n"] - proved
    assert said("Three of the six sentences") and unproved == 6
    assert len(frontier["differing_ids"]) == 3
    minutes = fr["after"] / 60
    assert fr["after"] <= 15 * 60 and said(
        f"**met in this run**: {fr['after']:.0f} s, {minutes:.1f}"
    )
    assert said(f"and {k['before']:.0f} s in its rerun")


def test_where_beams_own_time_goes() -> None:
    d = json.loads((REPORTS / "bench/levers/overhead_parts.json").read_text())
    parts = {k: v["share"] for k, v in d["parts"].items()}

    def pct(name: str) -> str:
        return f"{100 * parts[name]:.1f}%"

    assert said(f"{d['repeats']} calls of {1000 * d['call_s']:.0f} ms")
    assert said(f"the model's steps {pct('model step')} and its reorders {pct('model reorder')}")
    stepper, selection = pct("stepper (all of advance)"), pct("candidate selection (top 2K)")
    assert said(f"the stepper {stepper} (its candidate selection {selection}")
    assert said(f"the logits processors {pct('processors')}.")
    assert parts["stepper (all of advance)"] + parts["processors"] > 0.05  # "more than the 5%"
    assert parts["candidate selection (top 2K)"] < parts["stepper (all of advance)"]
