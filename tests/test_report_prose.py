"""The figures quoted in the sentences of reports/README.md are the committed data's
(``test_report_numbers`` checks the tables): each sentence is rebuilt from the per-run
summaries and analysis files and must appear in the text as it stands.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from lab.rebuild.babi_seeds import _frame, per_seed, training
from tests.report_data import (
    REPORTS,
    f,
    interval,
    pct,
    run,
    runs,
    said,
    table,
)


def test_beam_curse_prose() -> None:
    def bc(beam: int, penalty: str) -> pd.Series:
        return run("beam_curse/runs", f"search.beam_size={beam},search.penalty={penalty}")

    greedy, peak, wide = bc(1, "none"), bc(4, "none"), bc(64, "none")
    assert said(f"peaks at beam 4 ({f(peak.bleu)}, +{f(peak.bleu - greedy.bleu)} over greedy)")
    assert said(f"falls steadily to {f(wide.bleu)} at beam 64")
    assert said(f"({f(greedy.mean_logprob)} to {f(wide.mean_logprob)} nats a sentence)")
    assert said(f"(length ratio {f(greedy.len_ratio)} to {f(wide.len_ratio)})")
    assert said(
        f"BLEU rises to {f(bc(16, 'average').bleu)} at beam 16 and stays there "
        f"({f(bc(64, 'average').bleu)} at beam 64)"
    )


def _babi(name: str, task: int, search: str, **where: Any) -> pd.Series:
    df = runs(name)
    sel = df[(df["task.task_id"] == task) & (df["search"] == search)]
    for key, value in where.items():
        column = sel[key.replace("__", ".")]
        sel = sel[column.isna() if value is None else column == value]
    assert len(sel) == 1, (name, task, search, where)
    return sel.iloc[0]


def test_babi_prose() -> None:
    one = "babi/runs/babi_1k"
    assert said(f"task 1, one supporting fact: {_babi(one, 1, 'greedy').accuracy:.0f}% accuracy")
    g8, b8 = _babi(one, 8, "greedy"), _babi(one, 8, "beam")
    assert said(f"loses {f(g8.accuracy - b8.accuracy, 1)} points of accuracy")
    assert said(f"({f(g8.accuracy, 1)} -> {f(b8.accuracy, 1)})")
    for name, row in (("babi_1k", "20 tasks x 1k"), ("babi_10k", "tasks 1, 2, 8, 19 x 10k")):
        df = runs(f"babi/runs/{name}").sort_values("task.task_id")
        means = [f(df[df.search == s].error.mean()) for s in ("greedy", "beam")]
        cells = next(r for r in table("| | greedy | beam 5 | anchor |") if row in r[0])
        assert cells[1:3] == means, name
    _babi_joint_prose()


def _babi_joint_prose() -> None:
    """The joint models over three seeds: pooled means, the copy ablation, the goal, the stop
    rule's intervals (reports/babi/babi_joint_seeds.md, the pivot and the paired tests)."""
    df = _frame(REPORTS / "babi/runs/babi_joint")
    seeds = per_seed(df)

    def means(model: str, search: str = "greedy", rule: str = "-") -> pd.Series:
        d = seeds[(seeds.model == model) & (seeds.search == search)]
        return d[d["search.stop_rule"] == rule].sort_values("seed").mean_error

    plain, copy = means("facts"), means("facts + copy")
    assert len(plain) == len(copy) == 3
    assert seeds.mean_error.max() < 26.8 and said(f"scores {f(seeds.mean_error.max())}")
    updates = training(df).updates
    assert said(
        f"{updates.min() / 300:.0f} to {updates.max() / 300:.0f} times more updates "
        f"({int(updates.min()):,} to {int(updates.max()):,} against 300 a task)"
    )
    assert said(
        f"greedy error is {f(copy.mean())} ± {f(copy.std())} against "
        f"{f(plain.mean())} ± {f(plain.std())}, {f(plain.mean() - copy.mean())} points lower"
    )
    assert said(f"per seed {' / '.join(f(e) for e in plain)} (plain) and")
    assert said(f"{' / '.join(f(e) for e in copy)} (copy)")
    greedy = df[df.search == "greedy"].pivot_table(
        index="task.task_id", columns="model", values="error"
    )
    for task in (2, 3, 18):
        p, c = greedy.loc[task]
        assert said(f"task {task}: {f(p, 1)} -> {f(c, 1)}") and p > c, task
    p, c = greedy.loc[4]
    assert said(f"it rises on task 4 ({f(p, 1)} -> {f(c, 1)})") and c > p
    assert copy.min() > 12.4 and said(f"its best seed {f(copy.min())}")
    first = df[(df.model == "facts + copy") & (df.seed == 0)].iloc[0]
    assert (first["train.steps"], first["train.best.step"]) == (24_000, 19_584)
    tests = pd.read_csv(REPORTS / "babi/babi_joint_paired_tests.csv")
    fk = tests[~tests.baseline & (tests.search == "beam")]
    fk = fk[fk["search.stop_rule"].fillna("first_k") == "first_k"]
    below = fk.groupby("task.task_id").accuracy_delta_high.apply(lambda h: int((h < 0).sum()))
    assert said(
        f"below 0 on task 8 ({below[8]} of 6 model-seeds), task 10 ({below[10]} of 6) and "
        f"task 20 ({below[20]} of 6)"
    )
    for task in set(below[below > 0].index) - {8, 10, 20}:
        assert below[task] == 1 and said(f"once on task {task} (1 of 6)"), task
    for model, label in (("facts", "plain"), ("facts + copy", "copy")):
        canon, fkm = means(model, "beam", "canonical"), means(model, "beam", "first_k")
        g = means(model)
        assert said(
            f"{label}: {f(canon.mean())} against greedy's {f(g.mean())} and first_k's "
            f"{f(fkm.mean())}"
        )


def test_search_errors_prose() -> None:
    rates = pd.read_csv(REPORTS / "search_errors/analysis_rates.csv").set_index("beam_size")
    gru = pd.read_csv(REPORTS / "search_errors/gru/analysis_rates.csv").set_index("beam_size")
    assert said(
        f"Here: greedy {pct(rates.search_error[1])}, beam 10 {pct(rates.search_error[10])}, "
        f"beam 64 {pct(rates.search_error[64])}"
    )
    exact = rates.iloc[0]
    assert said(
        f"scores {f(exact.exact_bleu, 1)} BLEU, "
        f"{f(rates.bleu[4] - exact.exact_bleu, 1)} below beam 4"
    )
    assert said(
        f"length ratio {f(rates.len_ratio[1])} -> {f(rates.len_ratio[64])} -> "
        f"{f(exact.exact_len_ratio)}"
    )
    ref_words = run("multi30k/runs", "model=transformer,search=greedy").mean_ref_len
    assert said(f"({f(ref_words, 1)} reference words on average)")
    assert said(f"(greedy {pct(gru.search_error[1])} vs {pct(rates.search_error[1])})")
    g = gru.iloc[0]
    assert said(f"as short ({f(g.exact_len_ratio)} against {f(exact.exact_len_ratio)})")
    assert said(
        f"worse than its beams by {gru.bleu.min() - g.exact_bleu:.1f}-"
        f"{gru.bleu.max() - g.exact_bleu:.1f} BLEU"
    )


def test_sampling_and_toolkits_prose() -> None:
    def mbr(n: int) -> pd.Series:
        return run("sampling_mbr/runs", f"search.candidates.num_samples={n},search=mbr")

    beam = run("sampling_mbr/runs", "search=beam")
    nbest = runs("sampling_mbr/runs").iloc[0]
    falls = [beam.bleu - mbr(n).bleu for n in (8, 16, 32, 64)]
    assert said(f"BLEU falls (by {min(falls):.1f}-{max(falls):.1f})")

    def cost(key: str) -> pd.Series:  # the re-measured wall times
        return run("sampling_mbr/cost/runs", key)

    ratio = cost(nbest["name"]).decode_seconds / cost("search=beam").decode_seconds
    assert said(
        f"raises chrF by +{f(nbest.chrf - beam.chrf)} ["
    )  # intervals: test_report_intervals
    assert said(f"at {ratio:.1f}x; its BLEU gain, +{f(nbest.bleu - beam.bleu)} [")
    m64 = cost("search.candidates.num_samples=64,search=mbr")
    assert said(
        f"scores {m64.cost_utility_calls / 1e6:.0f} million pairs in "
        f"{m64.cost_selection_seconds:.1f} s, and generation is {m64.cost_generation_seconds:.1f}"
        f" s of the {m64.decode_seconds:.1f} s at 64 samples"
    )
    beam_s = cost("search=beam").decode_seconds
    assert said(f"beam 5 took {beam_s:.1f} s.")
    times = {
        n: cost(f"search.candidates.num_samples={n},search=mbr").decode_seconds / beam_s
        for n in (16, 32, 64)
    }
    assert said(
        f"{times[16]:.1f}x (16 samples) and +{f(mbr(32).chrf - beam.chrf)} at {times[32]:.1f}x"
    )
    assert said(f"64 samples (+{f(mbr(64).chrf - beam.chrf)}) cost {times[64]:.1f}x.")
    assert said(f"in line with the {times[16]:.1f}x of the re-measured one-seed table")
    div = run(
        "sampling_mbr/runs", "search.diversity_strength=0.8,search.nbest=10,search=diverse_beam"
    )
    low = run(
        "sampling_mbr/runs", "search.diversity_strength=0.2,search.nbest=10,search=diverse_beam"
    )
    b10 = run("sampling_mbr/runs", "search.beam_size=10,search.nbest=10,search=beam")
    samples = run("sampling_mbr/runs", "search.num_samples=10,search=sample")
    stoch = run("sampling_mbr/runs", "search.beam_size=10,search=stochastic_beam")
    assert said(f"({f(div.distinct_4 / b10.distinct_4)}x at 0.8, {f(div.bleu - b10.bleu)} BLEU)")
    assert said(f"{low.dup_rate * 100:.0f}% of the entries at lambda 0.2 duplicate")
    assert said(f"independent samples repeat {pct(samples.dup_rate)} of their")
    assert said(
        f"{stoch.decode_seconds / samples.decode_seconds:.0f}x that of 10 samples and "
        f"{stoch.decode_seconds / b10.decode_seconds:.1f}x beam 10"
    )
    defaults = pd.read_csv(REPORTS / "toolkits/toolkits_defaults_pairs.csv")
    assert said(
        f"disagree on {100 * defaults.differ.min():.0f}-{100 * defaults.differ.max():.0f}% of the"
    )
    beam5 = pd.read_csv(REPORTS / "toolkits/toolkits_beam5.csv").set_index("run").bleu
    gaps = [beam5[p] - beam5["beam"] for p in ("beam_hf", "beam_fairseq", "beam_onmt", "beam_ct2")]
    assert said(f"outlier ({min(gaps):.1f}-{max(gaps):.1f} BLEU lower")


def _seed_tests() -> pd.DataFrame:
    tests = pd.read_csv(REPORTS / "multi30k/multi30k_seeds_paired_tests.csv")
    return tests[~tests["baseline"]].set_index("seed")


def test_multi30k_seeds_prose() -> None:
    df = runs("multi30k/seeds")
    seeds = sorted(df["seed"].unique())
    assert said(f"seeds {', '.join(str(s) for s in seeds)}")
    by = {s: df[df.search == s].set_index("seed") for s in ("greedy", "beam")}
    for metric in ("bleu", "bleu_tok_lc"):
        for search in ("greedy", "beam"):
            values = by[search][metric]
            assert said(f"{search} {f(values.mean())} ± {f(values.std())}"), (metric, search)
    tests = _seed_tests()
    for seed, row in tests.iterrows():
        assert said(
            f"seed {seed}: {row.bleu_delta:+.2f} [{row.bleu_delta_low:+.2f}, "
            f"{row.bleu_delta_high:+.2f}]"
        ), seed
    greedy_lc = by["greedy"]["bleu_tok_lc"]
    assert said(f"(lowest {f(greedy_lc.min())})") and greedy_lc.min() > 35
    assert said(f"(highest {f(greedy_lc.max())})") and greedy_lc.max() < 36.5
    apart = [s for s, row in tests.iterrows() if row.chrf_delta_low > 0 or row.chrf_delta_high < 0]
    assert apart == [0] and said("only seed 0's interval excludes 0")
    gain = by["beam"]["bleu"] - by["greedy"]["bleu"]
    assert said(f"beam's gain {f(gain.mean())} ± {f(gain.std())} BLEU (n={len(gain)})")


def _curse_test(base: int, beam: int, penalty: str, seed: int) -> str:
    tests = pd.read_csv(REPORTS / f"beam_curse/beam_curse_seeds_vs{base}_tests.csv")
    row = tests[
        (tests["search.beam_size"] == beam)
        & (tests["search.penalty"] == penalty)
        & (tests["seed"] == seed)
    ].iloc[0]
    return f"{row.bleu_delta:+.2f} [{row.bleu_delta_low:+.2f}, {row.bleu_delta_high:+.2f}]"


def test_beam_curse_seeds_prose() -> None:
    df = runs("beam_curse/seeds")

    def cell(beam: int, penalty: str, metric: str = "bleu") -> str:
        values = df[(df["search.beam_size"] == beam) & (df["search.penalty"] == penalty)][metric]
        return f"{f(values.mean())} ± {f(values.std())}"

    assert said(
        f"goes {cell(1, 'none')} (greedy), {cell(4, 'none')} (beam 4), {cell(64, 'none')} (beam 64)"
    )
    ratios = [
        f(df[(df["search.beam_size"] == b) & (df["search.penalty"] == "none")].len_ratio.mean())
        for b in (1, 4, 64)
    ]
    assert said(f"the length ratio {' -> '.join(ratios)}")
    assert said(f"with it {cell(4, 'average')} at beam 4 and {cell(64, 'average')} at beam 64")
    seeds = (0, 1, 2)
    loses = [_curse_test(4, 64, "none", s) for s in seeds]
    assert said(f"loses {loses[0]} (seed 0), {loses[1]} (seed 1) and {loses[2]} (seed 2) BLEU")
    assert all(float(x.split("[")[1].split(",")[1].rstrip("]")) < 0 for x in loses)
    flat = [_curse_test(4, 64, "average", s) for s in seeds]
    assert said(f"is {flat[0]}, {flat[1]} and {flat[2]}: no drop")
    gains = [_curse_test(1, 4, "average", s) for s in seeds]
    assert said(f"gains {gains[0]}, {gains[1]} and {gains[2]}")
    tests = pd.read_csv(REPORTS / "beam_curse/beam_curse_seeds_vs1_tests.csv")
    plain4 = tests[(tests["search.beam_size"] == 4) & (tests["search.penalty"] == "none")]
    assert sorted(plain4[plain4.bleu_delta_low > 0].seed) == [0, 2]
    assert said("clears 0 for seeds 0 and 2 only")


def _pooled(df: pd.DataFrame, metric: str) -> str:
    return f"{f(df[metric].mean())} ± {f(df[metric].std())}"


def test_constrained_prose() -> None:
    seeds, terms = runs("multi30k/seeds"), runs("constrained/runs/terms")
    beam, greedy = seeds[seeds.search == "beam"], seeds[seeds.search == "greedy"]
    assert (terms.constraints_met == 1).all() and (terms.phrases_met == 1).all()
    assert said(f"BLEU rises from {_pooled(beam, 'bleu')} (plain beam) to {_pooled(terms, 'bleu')}")
    paired = pd.read_csv(REPORTS / "constrained/terms_paired_tests.csv")
    gains = paired[paired.search == "constrained_beam"].sort_values("seed")
    assert all(gains.bleu_delta_low > 0)
    assert said("per seed " + ", ".join(interval(r) for _, r in gains.iloc[:2].iterrows()))
    assert said(f"and {interval(gains.iloc[2])} (`terms_paired_tests.md`)")
    assert said(f"(length ratio {f(terms.len_ratio.mean())} against {f(beam.len_ratio.mean())})")
    cover = runs("constrained/runs/coverage")
    none = cover[cover["search.coverage"] == "none"]
    cost = terms.decode_seconds.mean() / none.decode_seconds.mean()
    assert said(f"{f(terms.decode_seconds.mean())} s for the 1000 sentences against")
    assert said(f"{f(none.decode_seconds.mean())} s for plain beam") and said(f"{cost:.1f} times")
    prefix = runs("constrained/runs/prefix")
    for search, plain in (("beam", beam), ("greedy", greedy)):
        mine = prefix[prefix.search == search]
        assert said(f"from {_pooled(plain, 'bleu')} to {_pooled(mine, 'bleu')} with {search}")
        assert said(f"{_pooled(mine, 'bleu_rest')}")
    tests = pd.read_csv(REPORTS / "constrained/prefix_paired_tests.csv")
    tested = tests[~tests.baseline]
    assert all(tested.bleu_delta_low > 0)
    assert said(f"+{f(tested.bleu_delta.min())} to +{f(tested.bleu_delta.max())} per seed")


def test_coverage_prose() -> None:
    cover = runs("constrained/runs/coverage")

    def at(kind: str, beta: float) -> pd.DataFrame:
        return cover[(cover["search.coverage"] == kind) & (cover["search.beta"] == beta)]

    none, wu1, summary1 = at("none", 0.0), at("wu", 1.0), at("summary", 1.0)
    assert said(f"ratio {f(none.len_ratio.mean())} -> {f(wu1.len_ratio.mean())} at beta 1")
    assert said(f"({f(none.mean_logprob.mean())} -> {f(wu1.mean_logprob.mean())} nats)")
    assert said(f"from {_pooled(none, 'bleu')} to {_pooled(wu1, 'bleu')} at beta 1")
    assert said(f"shortens ({f(summary1.len_ratio.mean())} at beta 1)")
    tests = pd.read_csv(REPORTS / "constrained/coverage_paired_tests.csv").sort_values("seed")
    wu = tests[tests["search.coverage"] == "wu"]
    assert all(wu[wu["search.beta"] >= 0.5].chrf_delta_low > 0)
    beta1 = wu[wu["search.beta"] == 1.0]
    assert said("(beta 1: " + ", ".join(interval(r, "chrf") for _, r in beta1.iterrows()) + ")")
    assert list(beta1[beta1.bleu_delta_low > 0].seed) == [1] and said("only seed 1's interval")
    summ = tests[(tests["search.coverage"] == "summary") & (tests["search.beta"] >= 0.5)]
    assert all(summ.bleu_delta_high < 0)
    s1 = summ[summ["search.beta"] == 1.0]
    assert said("(beta 1: " + ", ".join(f"{d:+.2f}" for d in s1.bleu_delta) + ", every interval")
    times = cover[cover["search.coverage"] != "none"].groupby(["search.coverage", "search.beta"])
    means = times.decode_seconds.mean()
    assert said(
        f"between {f(means.min())} and {f(means.max())} s against {f(none.decode_seconds.mean())} s"
    )


def test_sampling_seeds_prose() -> None:
    df = runs("sampling_mbr/seeds")

    def pick(name: str) -> pd.DataFrame:
        return df[df["name"].str.startswith(name)].sort_values("seed")

    mbr, beam = pick("search.candidates.num_samples=16,search=mbr"), pick("search=beam,")
    beam10 = pick("search.beam_size=10,search.nbest=10,search=beam")
    diverse = pick("search.diversity_strength=1.0")
    assert said(f"scores {_pooled(mbr, 'chrf')} against beam 5's {_pooled(beam, 'chrf')} (n=3)")
    vs5 = pd.read_csv(REPORTS / "sampling_mbr/seeds/seeds_vs_beam5_tests.csv")
    gains = vs5[vs5.search == "mbr"].sort_values("seed")
    assert all(gains.chrf_delta_low > 0)
    assert said("per seed " + ", ".join(interval(r, "chrf") for _, r in gains.iloc[:2].iterrows()))
    bleu = [interval(r) for _, r in gains.iterrows()]
    assert said(f"({bleu[0]}, {bleu[2]})") and said(f"on seed 1 the fall ({bleu[1]}) is not shown")
    ratio = mbr.decode_seconds.values / beam.decode_seconds.values
    assert said(f"{ratio.mean():.2f} ± {ratio.std(ddof=1):.2f} times beam 5's")
    assert said(f"({_pooled(mbr, 'decode_seconds')} s against {_pooled(beam, 'decode_seconds')} s)")
    sel = mbr.cost_selection_seconds
    assert said(f"selection is {sel.min():.1f}-{sel.max():.1f} s")
    d4 = diverse.distinct_4.values / beam10.distinct_4.values
    assert (d4 > 1.5).all()
    assert said(f"{d4.mean():.2f} ± {d4.std(ddof=1):.2f} times beam 10's")
    assert said("(" + ", ".join(f"{x:.3f}" for x in d4) + ")")
    vs10 = pd.read_csv(REPORTS / "sampling_mbr/seeds/seeds_vs_beam10_tests.csv")
    div = vs10[vs10.search == "diverse_beam"].sort_values("seed")
    assert not any(div.bleu_delta_low > -0.5) and (div.bleu_delta < -0.5).any()
    assert said(", ".join(interval(r) for _, r in div.iloc[:2].iterrows()))


def test_trie_babi_prose() -> None:
    df = runs("trie/runs/babi")
    greedy = df[df.search == "greedy"]
    plain, trie = (greedy[greedy.experiment_name == e] for e in ("babi_joint", "trie_babi"))
    story = [1, 2, 3, 4, 5, 11, 12, 13, 14, 16]

    def mean(d: pd.DataFrame, tasks: list[int] | None = None) -> str:
        return f(d[d["task.task_id"].isin(tasks)].error.mean() if tasks else d.error.mean())

    joint = runs("babi/runs/babi_joint")
    seed0 = joint["seed"].fillna(0) == 0 if "seed" in joint else True
    alone = joint[(joint.search == "greedy") & (joint["model.copy"] != True) & seed0]  # noqa: E712
    assert mean(plain) == f(alone.error.mean())  # the retrained model gave the same answers
    assert said(f"(greedy mean error {mean(plain)})")
    assert said(
        f"mean greedy error {mean(plain, story)} without it and {mean(trie, story)} with it"
    )
    tests = pd.read_csv(REPORTS / "trie/trie_babi_paired_tests.csv")
    tests = tests[~tests.baseline]
    up = tests[tests.accuracy_delta_low > 0]
    assert list(zip(up["task.task_id"], up.search, strict=True)) == [(16, "beam")]
    row = up.iloc[0]
    assert said(f"task 16 with beam, {interval(row, 'accuracy')}")
    for task in (6, 7, 10, 17, 18, 19):
        assert (trie[trie["task.task_id"] == task].error == 100).all(), task
    assert said(f"goes from {mean(plain)} to {mean(trie)}")


def test_multimodel_prose() -> None:
    df = runs("multimodel/runs")
    ens, seeds = df[df.model == "ensemble"].iloc[0], df[df.model == "transformer"]
    assert said(f"The ensemble scores {f(ens.bleu)} BLEU against {_pooled(seeds, 'bleu')}")
    tests = pd.read_csv(REPORTS / "multimodel/ensemble_paired_tests.csv")
    rows = tests[~tests.baseline].sort_values("seed")
    assert all(rows.bleu_delta_high < 0) and all(rows.chrf_delta_high < 0)
    gaps = [
        f"{-r.bleu_delta:.2f} [{-r.bleu_delta_high:.2f}, {-r.bleu_delta_low:.2f}]"
        for _, r in rows.iterrows()
    ]
    assert said(f"by {gaps[0]}, {gaps[1]} and {gaps[2]} BLEU")
    chrf = [f"{-d:.2f}" for d in rows.chrf_delta]
    assert said(f"(chrF: {chrf[0]}, {chrf[1]} and {chrf[2]})")


def test_trie_squad_prose() -> None:
    df = runs("trie/runs/squad")
    committed = runs("squad/runs")
    copy = committed[(committed["model.copy"] == True) & (committed["model.dropout"] == 0.1)]  # noqa: E712
    tests = pd.read_csv(REPORTS / "trie/trie_squad_paired_tests.csv")
    for search, label in (("greedy", "greedy"), ("beam", "beam 5")):
        plain = df[(df.experiment_name == "squad_copy") & (df.search == search)].iloc[0]
        mine = copy[copy.search == search].iloc[0]
        assert (f(plain.em), f(plain.f1)) == (f(mine.em), f(mine.f1)), search  # retrained alike
        trie = df[(df.experiment_name == "trie_squad") & (df.search == search)].iloc[0]
        row = tests[(tests.search == search) & ~tests.baseline].iloc[0]
        em = f"EM {f(plain.em)} -> {f(trie.em)}, {interval(row, 'em')}"
        f1 = f"F1 {f(plain.f1)} -> {f(trie.f1)}, {interval(row, 'f1')}"
        assert said(f"{label}: {em}") and said(f1), search
    assert (tests[~tests.baseline].f1_delta_low > 0).all()
    beam = tests[(tests.search == "beam") & ~tests.baseline].iloc[0]
    assert beam.em_delta_low < 0 < beam.em_delta_high
    spans = pd.concat([runs("trie/runs/squad_spans"), df[df.experiment_name == "trie_squad"]])
    assert sorted(spans["task.max_span"]) == [5, 5, 10, 10, 20, 20]
    assert set(spans.groupby("search").f1.nunique()) == {1}  # the limit never binds


def test_squad_recipe_ablation_prose() -> None:
    tests = pd.read_csv(REPORTS / "squad/squad_recipe_paired_tests.csv")
    gains = tests[~tests.baseline].set_index("search")
    assert (gains[["em_delta_low", "f1_delta_low"]] > 0).all().all()  # "every interval above 0"
    g, b = gains.loc["greedy"], gains.loc["beam"]
    assert said(f"F1 {interval(g, 'f1')} (greedy) and {interval(b, 'f1')} (beam 5)")
    assert said(f"EM {interval(g, 'em')} and {interval(b, 'em')}")
    plain = run("squad/runs", "squad_copy/model.copy=False,search=greedy")
    copy = run("squad/runs", "squad_copy/search=greedy")
    assert said(
        f"(best validation loss {f(plain['train.best.valid/loss'])} at "
        f"{int(plain['train.best.step']):,} updates, against the copy model's "
        f"{f(copy['train.best.valid/loss'])} at {int(copy['train.best.step']):,})"
    )


def test_label_smoothing_ablation_prose() -> None:
    with_ls = pd.read_csv(REPORTS / "search_errors/analysis_rates.csv").set_index("beam_size")
    without = pd.read_csv(REPORTS / "search_errors/ls0/analysis_rates.csv").set_index("beam_size")
    beams = [1, 4, 64]
    assert said(", ".join(pct(without.ref_above_hyp[b]) for b in beams[:2]) + " and "
                + f"{pct(without.ref_above_hyp[64])} of")  # fmt: skip
    assert said(", ".join(pct(with_ls.ref_above_hyp[b]) for b in beams[:2]) + " and "
                + f"{pct(with_ls.ref_above_hyp[64])}; the mode")  # fmt: skip
    assert said(
        f"reference for {pct(without.model_error[1])} ({pct(with_ls.model_error[1])} with it)"
    )
    ratios = [f(r.exact_len_ratio[1], 3) for r in (without, with_ls)]
    assert said(f"(length ratio {ratios[0]} against {ratios[1]})")
    assert said(f"scores {f(without.exact_bleu[1])} BLEU against {f(with_ls.exact_bleu[1])}")
    for b in (4, 64):
        assert said(
            f"beam {b}: {pct(without.search_error[b])} against {pct(with_ls.search_error[b])}"
        )
    proved = [pct(r.exact_proved[1]) for r in (without, with_ls)]
    assert said(f"proves {proved[0]} of the sentences ({proved[1]} with it)")
    exact = runs("search_errors/runs/exact").set_index("train.label_smoothing")
    assert said(f"it took {f(exact.decode_seconds[0.0], 1)} s")
    assert said(f"exact search, rerun in the same session, {f(exact.decode_seconds[0.1], 1)} s")
    assert f(exact.bleu[0.1]) == f(with_ls.exact_bleu[1]) == "33.00"
    assert said(f"in {100 * exact.decode_seconds[0.1] / 2637:.0f}% of its 2637 s")


def test_search_error_seeds_prose() -> None:
    seeds = {
        s: pd.read_csv(REPORTS / f"search_errors/seeds/seed{s}/analysis_rates.csv") for s in (1, 2)
    }
    seeds[0] = pd.read_csv(REPORTS / "search_errors/analysis_rates.csv")
    at = {
        b: pd.DataFrame([r[r.beam_size == b].iloc[0] for r in seeds.values()]) for b in (1, 4, 64)
    }

    def pc(values: pd.Series) -> str:
        return f"{100 * values.mean():.1f}% ± {100 * values.std():.1f}"

    errors = [pc(at[b].search_error) for b in (1, 4, 64)]
    assert said(f"Search errors: {errors[0]}, {errors[1]} and {errors[2]} of sentences")
    above = [pc(at[b].ref_above_hyp) for b in (1, 4, 64)]
    assert said(f"the reference above the output: {above[0]}, {above[1]} and {above[2]}")
    assert said(f"the mode above the reference: {pc(at[1].model_error)}")
    mode = at[1]
    assert said(f"The mode: {_pooled(mode, 'exact_bleu')} BLEU, length ratio")
    assert said(f"{mode.exact_len_ratio.mean():.3f} ± {mode.exact_len_ratio.std():.3f}")
    assert said(f"{pc(mode.exact_proved)} of sentences proved")
    empty = {s: r.empty_mode.iloc[0] for s, r in seeds.items()}
    assert empty[0] == empty[2] == 0 and said(f"but {pct(empty[1])} of sentences on seed 1")
    assert said(f"({round(empty[1] * 1000)} sentences whose highest-scoring output is the empty")
    assert said(f"seed 1's is, for {pct(empty[1])} of sentences")


def test_toolkits_over_seeds_prose() -> None:
    names = {
        "beam": "lab `beam`",
        "beam_hf": "HF generate",
        "beam_fairseq": "fairseq",
        "beam_onmt": "OpenNMT-py",
        "beam_ct2": "CTranslate2",
    }
    pooled = {
        kind: runs(f"toolkits/runs/seeds/{kind}")
        .groupby("search")
        .bleu.agg(["mean", "std", "size"])
        for kind in ("defaults", "beam5")
    }
    for label, defaults, beam5 in table("| search | defaults: BLEU | at beam 5: BLEU |"):
        key = next(k for k, n in names.items() if n == label)
        for cell, kind in ((defaults, "defaults"), (beam5, "beam5")):
            p = pooled[kind].loc[key]
            assert p["size"] == 3 and cell == f"{f(p['mean'])} ± {f(p['std'])}", (label, kind)

    def intervals(kind: str, search: str) -> tuple[str, pd.DataFrame]:
        t = pd.read_csv(REPORTS / f"toolkits/seeds/toolkits_{kind}_seeds_paired_tests.csv")
        t = t[~t.baseline & (t.search == search)].sort_values("seed")
        return ", ".join(interval(r) for _, r in t.iterrows()), t

    for search, label in (
        ("beam_fairseq", "by"),
        ("beam_onmt", "OpenNMT-py by"),
        ("beam_hf", "HF by"),
    ):
        text, t = intervals("beam5", search)
        assert (t.bleu_delta_low > 0).all() and said(f"{label} {text}"), search
    for search in ("beam_fairseq", "beam_onmt"):
        assert (intervals("defaults", search)[1].bleu_delta_low > 0).all(), search
    text, t = intervals("defaults", "beam_ct2")
    assert ((t.bleu_delta_low < 0) & (t.bleu_delta_high > 0)).all() and said(f"({text})")
    text, t = intervals("defaults", "beam_hf")
    assert list(t.bleu_delta_high < 0) == [True, False, True] and said(f"seed 1 ({text})")
