"""The figures of reports/README.md's multimodel section are the committed tables': LM fusion
against the translation model alone, and noisy-channel reranking against length-only
reranking and against beam 5, each with its paired interval."""

from __future__ import annotations

import json

import pandas as pd

from tests.report_data import REPORTS, f, interval, paired_table, pct, runs, said

AFTER = REPORTS / "multimodel/speculative/narrow/after/runs/search=greedy,repeat=2"

GRID_OFF = "[0]"


def _fusion(search: str) -> pd.DataFrame:
    t = paired_table("multimodel/fusion/fusion_paired")
    t = t[(t.search == search) & ~t.baseline & (t.seed == 0)]
    return t.set_index("model.lm_weight")


def test_fusion_helps_greedy_bleu_and_hurts_beam() -> None:
    greedy, beam = _fusion("greedy"), _fusion("beam")
    for w, label in ((0.1, "at w = 0.1"), (0.2, "at 0.2")):
        assert greedy.loc[w].bleu_delta_low > 0 and said(f"{interval(greedy.loc[w])} {label}")
    assert said(f"and {interval(greedy.loc[0.3])} at 0.3")
    chrf = ", ".join(f"{greedy.loc[w].chrf_delta:+.2f}" for w in (0.1, 0.2, 0.3))
    assert said(f"chrF does not move ({chrf}, every interval")
    assert all(
        greedy.loc[w].chrf_delta_low < 0 < greedy.loc[w].chrf_delta_high for w in (0.1, 0.2, 0.3)
    )
    assert said(f"at 0.5 BLEU falls ({interval(greedy.loc[0.5])})")
    assert (beam.bleu_delta_high < 0).all()
    assert said(f"{interval(beam.loc[0.1])} at 0.1 down to {interval(beam.loc[0.5])} at 0.5")
    df = runs("multimodel/fusion/runs")
    df = df[df.seed == 0]
    at = df.set_index(["search", "model.lm_weight"])
    assert said(
        f"(length ratio {f(at.loc[('beam', 0.0)].len_ratio)} at w = 0, "
        f"{f(at.loc[('beam', 0.5)].len_ratio)} at 0.5)"
    )
    assert said(
        f"greedy's get longer ({f(at.loc[('greedy', 0.0)].len_ratio)} to "
        f"{f(at.loc[('greedy', 0.5)].len_ratio)})"
    )
    assert (df.empty_rate == 0).all()
    assert said(
        f"(greedy {f(at.loc[('greedy', 0.0)].mean_logprob)} at w = 0, "
        f"{f(at.loc[('greedy', 0.5)].mean_logprob)} at 0.5)"
    )


def _channel(name: str) -> pd.DataFrame:
    t = paired_table(f"multimodel/channel/{name}")
    return t[~t.baseline]


def _setting(t: pd.DataFrame, channel: bool, lm: bool) -> pd.Series:
    on = (t["search.grid.channel"] != GRID_OFF) == channel
    return t[on & ((t["search.grid.lm"] != GRID_OFF) == lm)].iloc[0]


def test_channel_reranking_figures() -> None:
    vs_beam, vs_length = _channel("channel_vs_beam5"), _channel("channel_paired")
    length = _setting(vs_beam[vs_beam.search == "rerank"], False, False)
    assert said(f"give {f(length.bleu)} BLEU, {interval(length)} over beam 5")
    beam10 = vs_beam[vs_beam.search == "beam"].iloc[0]
    assert said(f"scores {f(beam10.bleu)}, {interval(beam10)}")
    channel, both = _setting(vs_length, True, False), _setting(vs_length, True, True)
    assert said(f"{interval(channel)} BLEU and {interval(channel, 'chrf')} chrF over")
    assert said(f"{interval(both)} BLEU and {interval(both, 'chrf')} chrF")
    best = _setting(vs_beam[vs_beam.search == "rerank"], True, True)
    assert (vs_beam[vs_beam.search == "rerank"].bleu_delta_low > 0).all()
    assert said(f"That run scores {f(best.bleu)} BLEU, {interval(best)} over beam 5")
    lm_only = _setting(vs_length, False, True)
    assert lm_only.bleu_delta == 0 and lm_only.chrf_delta == 0
    df = runs("multimodel/channel/runs")
    df["on"] = list(
        zip(df["search.grid.channel"] != GRID_OFF, df["search.grid.lm"] != GRID_OFF, strict=True)
    )
    w = df.set_index("on")
    for key, text in (
        ((True, False), "(c = {channel}, r = {length})"),
        ((True, True), "(c = {channel}, l = {lm}, r = {length})"),
    ):
        weights = {
            s: f"{w.loc[[key]].iloc[0][f'search_settings.weights.{s}']:.1f}"
            for s in ("channel", "lm", "length")
        }
        assert said(text.format(**weights)), key
    assert w.loc[[(False, True)]].iloc[0]["search_settings.weights.lm"] == 0
    assert said(f"(r = {w.loc[[(False, False)]].iloc[0]['search_settings.weights.length']:.1f})")
    vals = [
        f(w.loc[[k]].iloc[0]["search_settings.tuned_quality"])
        for k in ((False, False), (True, False), (True, True))
    ]
    tests = [f(w.loc[[k]].iloc[0].bleu) for k in ((False, False), (True, False), (True, True))]
    assert said(f"(validation {vals[0]}, {vals[1]} and {vals[2]}")
    assert said(f"test {tests[0]}, {tests[1]} and {tests[2]})")
    secs = df.decode_seconds
    assert said(f"Cost: {secs.min():.0f}-{secs.max():.0f} s of decoding")


def test_ensemble_search_error_figures() -> None:
    t = pd.read_csv(REPORTS / "multimodel/ensemble_search_errors.csv").set_index("model")
    assert (t.n == 200).all()
    ens, seeds = t.loc["ensemble"], t.drop(index="ensemble")
    errors = ", ".join(pct(v) for v in seeds.search_error.iloc[:2])
    assert said(f"ensemble's mode on {pct(ens.search_error)} of the sentences, against {errors}")
    assert said(f"and {pct(seeds.search_error.iloc[2])} for the seeds")
    model = ", ".join(pct(v) for v in seeds.model_error)
    assert said(f"reference on {pct(ens.model_error)} (seeds: {model})")
    assert round(ens.empty_mode * ens.n) == 1 and said(
        f"({pct(ens.empty_mode)}; seed 1's six times)"
    )
    assert round(seeds.loc["seed1"].empty_mode * 200) == 6


def test_fusion_over_seeds() -> None:
    t = paired_table("multimodel/fusion/fusion_paired")
    at = t[~t.baseline & (t["model.lm_weight"] == 0.2)].sort_values("seed").set_index("search")
    greedy, beam = at.loc[["greedy"]], at.loc[["beam"]]
    assert list(greedy.seed) == [0, 1, 2] and list(beam.seed) == [0, 1, 2]
    g = greedy.iloc[1:]
    assert ((g.bleu_delta_low < 0) & (g.bleu_delta_high > 0)).all()
    assert said(f"greedy's gain is not shown: {interval(g.iloc[0])} and {interval(g.iloc[1])} BLEU")
    assert (beam.bleu_delta_high < 0).all()
    text = [interval(r) for _, r in beam.iterrows()]
    assert said(f"seed: {text[0]}, {text[1]} and {text[2]}")


def test_speculative_figures() -> None:
    df = runs("multimodel/speculative/runs").set_index("search.gamma")
    greedy = df[df.search == "greedy"].iloc[0]
    spec = df[df.search == "speculative"].sort_index()
    assert list(spec.index) == ["2", "4", "6"] or list(spec.index) == [2, 4, 6]
    assert (spec.bleu == greedy.bleu).all() and said(f"BLEU {f(greedy.bleu)} each")
    pairs = pd.read_csv(REPORTS / "multimodel/speculative/speculative_outputs_pairs.csv")
    assert len(pairs) == 6 and (pairs.differ == 0).all()
    acc = [f(v) for v in spec.spec_acceptance]
    assert said(f"is {acc[0]} at gamma 2, {acc[1]} at 4 and {acc[2]} at 6")
    calls = greedy.cost_model_calls / greedy.cost_sentences
    target = [f"{v:.1f}" for v in spec.spec_target_calls]
    assert said(f"from {calls:.1f} a sentence under greedy")
    assert said(f"to {target[0]}, {target[1]} and {target[2]}")
    secs = [f"{v:.1f}" for v in spec.decode_seconds]
    assert said(f"Greedy took {greedy.decode_seconds:.1f} s for the")
    assert said(f"speculative {secs[0]}, {secs[1]} and {secs[2]} s")
    speed = [f(greedy.decode_seconds / v) for v in spec.decode_seconds]
    assert said(f"that is {speed[0]}x, {speed[1]}x and {speed[2]}x greedy's")
    assert max(greedy.decode_seconds / v for v in spec.decode_seconds) < 1.5
    drafts = [f"{v:.1f}" for v in spec.spec_draft_calls]
    assert said(f"The draft's calls ({drafts[0]}, {drafts[1]} and {drafts[2]} a sentence)")


def test_the_second_models_figures() -> None:
    lm = runs("multimodel/fusion/lm/runs").iloc[0]
    assert said(f"(d=256, {lm['train.params'] / 1e6:.2f}M") and lm.model == "decoder_only"
    assert said(f"(validation perplexity {f(lm['train.best.valid/ppl'])} per subword")
    channel = runs("multimodel/channel/channel_model/runs").iloc[0]
    assert (channel["task.src"], channel["task.tgt"]) == ("en", "de")
    assert said(f"{channel['train.params'] / 1e6:.2f}M parameters, {f(channel.bleu)} BLEU en->de")
    exact = runs("multimodel/search_errors/runs").iloc[0]
    assert exact.search == "exact" and exact.model == "ensemble" and exact.cost_sentences == 200
    assert said(f"search ran, {exact.decode_seconds:.0f} s on one core")


def test_narrow_draft_figures() -> None:
    df = runs("multimodel/speculative/narrow/runs")
    greedy = df[df.search == "greedy"].iloc[0]  # the run before the sweep
    after = json.loads((AFTER / "results.json").read_text())["metrics"]  # rerun after the sweep
    assert df[df.search == "greedy"].decode_seconds.tolist() == [greedy.decode_seconds]
    spec = df[df.search == "speculative"].set_index("search.gamma").sort_index()
    assert list(spec.index.astype(int)) == [2, 3, 4] and (spec.bleu == greedy.bleu).all()
    pairs = pd.read_csv(REPORTS / "multimodel/speculative/narrow/narrow_outputs_pairs.csv")
    assert (pairs.differ == 0).all()
    assert said(f"the same core, {greedy.decode_seconds:.1f} s, and again")
    assert said(f"just after it, {after['decode_seconds']:.1f} s")
    base, n = greedy.decode_seconds, spec.cost_sentences.iloc[0]
    draft = runs("multimodel/speculative/narrow/draft/runs").iloc[0]
    assert said(f"{draft['train.params'] / 1e6:.2f}M parameters") and said(f"({f(draft.bleu)} BLEU")

    def listed(values, fmt="{:.1f}") -> str:  # noqa: ANN001
        v = [fmt.format(x) for x in values]
        return f"{v[0]}, {v[1]} and {v[2]}"

    acc = [f(v) for v in spec.spec_acceptance]
    assert said(f"Acceptance is {acc[0]} at gamma 2, {acc[1]} at 3 and {acc[2]} at 4")
    assert said(f"took {listed(spec.decode_seconds)}")
    assert said(f"that is {listed(base / spec.decode_seconds, '{:.2f}x')} greedy's speed")
    assert max(base / v for v in spec.decode_seconds) < 1.5  # "not met"
    assert said(f"draft's side took {listed(spec.spec_draft_seconds)} s")
    per_draft = spec.spec_draft_seconds.iloc[0] / (spec.spec_draft_calls.iloc[0] * n) * 1e3
    per_greedy = base / greedy.cost_model_calls * 1e3
    assert said(f"({per_draft:.2f} ms per draft call at gamma 2, against {per_greedy:.1f} ms")
    target = spec.decode_seconds - spec.spec_draft_seconds
    assert said(f"took {listed(target)} s")
    assert said(f"that would be {listed(base / target, '{:.2f}x')} greedy's")
    assert (base / target).iloc[0] > 1.5 and (base / target).iloc[1:].max() < 1.5
    per_call = target / (spec.spec_target_calls * n) * 1e3
    assert said(f"({listed(per_call, '{:.2f}')} ms per call)")


def test_search_errors_under_the_fused_score() -> None:
    rates = {
        w: pd.read_csv(
            REPORTS / f"multimodel/search_errors/fusion_w{w}/analysis_rates.csv"
        ).set_index("search")
        for w in ("0.0", "0.2")
    }
    plain, fused = rates["0.0"], rates["0.2"]
    assert (plain.n == 200).all() and (fused.n == 200).all()
    exact = f(fused.exact_bleu.iloc[0]), f(fused.exact_len_ratio.iloc[0])
    assert said(f"at w = 0.2 it scores {exact[0]} BLEU with a length ratio of {exact[1]}")
    assert said(f"against {f(plain.exact_bleu.iloc[0])} and {f(plain.exact_len_ratio.iloc[0])} for")
    beam, greedy = (fused.loc[s].search_error for s in ("beam", "greedy"))
    beam0, greedy0 = (plain.loc[s].search_error for s in ("beam", "greedy"))
    assert said(f"on {pct(beam)} of the sentences against {pct(beam0)}; greedy on {pct(greedy)}")
    assert said(f"against {pct(greedy0)}. Beam's outputs")
    assert beam > beam0 and greedy > greedy0  # "adds search errors"
    assert said(f"({f(fused.loc['beam'].bleu)} BLEU against {f(plain.loc['beam'].bleu)}")
    lens = f(fused.loc["beam"].len_ratio), f(plain.loc["beam"].len_ratio)
    assert said(f"length ratio {lens[0]} against {lens[1]})")
    model = {pct(v) for v in [*plain.model_error, *fused.model_error]}
    assert model == {"98.0%"} and said("reference on 98.0% of the sentences at both weights")
    secs = [
        runs("multimodel/search_errors/fusion/runs").set_index("model.lm_weight").decode_seconds
    ][0]
    assert said(f"took {secs[0.0]:.0f} s at w = 0 and {secs[0.2]:.0f} s at w = 0.2")
