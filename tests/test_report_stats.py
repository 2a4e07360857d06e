"""What makes a report trustworthy: cells pool only repeats over seeds, a run found twice counts
once, paired bootstrap tests against a baseline, and exports that sacreBLEU rescores.

Runs are written by hand the way ``lab run`` writes them (``predictions.jsonl`` and a
``results.json`` whose BLEU and chrF the lab's own metrics computed); nothing is trained.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest

from lab.errors import LabError
from lab.report import ReportNote, load_runs, pivot_stats, report, write_report
from lab.report.plot import plot
from tests.helpers.lab_process import lab_here as _lab
from tests.helpers.report_runs import BASE_HYPS, REFS, WORSE_HYPS, completed_run, drop_words

# -- pooling: a cell holds one run or repeats over seeds, never different experiments --------


def test_a_cell_over_seeds_shows_mean_std_and_n(tmp_path: Path):
    for seed, words in ((1, 2), (2, 3), (3, 4)):
        completed_run(tmp_path / "runs", f"s{seed}", drop_words(REFS, 4, words), seed=seed)
    df = load_runs(tmp_path / "runs")
    stats = pivot_stats(df, "bleu", "model", "search")
    assert stats.n.loc["transformer", "beam"] == 3
    assert stats.std.loc["transformer", "beam"] == pytest.approx(df["bleu"].std())
    write_report(df, tmp_path / "out")
    cell = f"{df['bleu'].mean():.2f} ± {df['bleu'].std():.2f} (n=3)"
    assert f"| transformer | {cell} |" in (tmp_path / "out" / "report_pivot.md").read_text()
    csv = pd.read_csv(tmp_path / "out" / "report_pivot.csv")
    assert csv.loc[0, "beam_n"] == 3 and csv.loc[0, "beam"] == pytest.approx(df["bleu"].mean())


def test_a_searchs_own_seed_pools_with_the_run_seed_but_other_settings_do_not(tmp_path):
    for seed, words in ((1, 2), (2, 3)):  # mbr's candidates are seeded with ${seed}
        completed_run(
            tmp_path / "runs", f"s{seed}", drop_words(REFS, 4, words), seed=seed,
            search__candidates__seed=seed, search__seed=seed,
        )  # fmt: skip
    df = load_runs(tmp_path / "runs")
    assert pivot_stats(df, "bleu", "model", "search").n.loc["transformer", "beam"] == 2
    completed_run(tmp_path / "runs", "s3", REFS, seed=3, search__candidates__num_samples=8)
    with pytest.raises(LabError, match="differ in search.candidates.num_samples"):
        pivot_stats(load_runs(tmp_path / "runs"), "bleu", "model", "search")


def test_runs_differing_in_another_setting_are_refused_with_the_keys_to_add(tmp_path, capsys):
    completed_run(tmp_path, "b5", BASE_HYPS, search__beam_size=5)
    completed_run(tmp_path, "b10", REFS, search__beam_size=10, search__alpha=0.6)
    status, _, err = _lab(["report", str(tmp_path)], capsys)
    assert status == 2 and err.count("\n") == 1
    assert err.startswith("error: runs pooled in one cell differ in search.beam_size, search.alpha")
    assert "e.g. --rows model,search.beam_size." in err
    args = ["--rows", "model,search.beam_size", "--x", "search.beam_size", "--hue", "model,search"]
    assert _lab(["report", str(tmp_path), *args], capsys)[0] == 0
    assert (tmp_path / "report" / "report_plot.png").is_file()


def test_threads_loggers_and_output_dirs_do_not_split_a_cell(tmp_path: Path):
    from lab.pipeline import VOLATILE_KEYS
    from lab.report.settings import VOLATILE_KEYS as REPORT_VOLATILE

    assert REPORT_VOLATILE == VOLATILE_KEYS  # the report ignores what the pipeline ignores
    completed_run(
        tmp_path, "a", BASE_HYPS, threads=1, logger__mode="offline", out=str(tmp_path / "a")
    )
    completed_run(
        tmp_path, "b", REFS, seed=2, threads=4, logger__mode="disabled", out=str(tmp_path / "b")
    )
    assert pivot_stats(load_runs(tmp_path), "bleu", "model", "search").n.iloc[0, 0] == 2


def test_plot_points_follow_the_same_rule(tmp_path: Path):
    completed_run(tmp_path, "beam", BASE_HYPS)
    completed_run(tmp_path, "sample", REFS, search__name="sample")
    fix = r"in one point differ in search \(.*add the keys to --hue, e.g. --hue model,search\."
    with pytest.raises(LabError, match=fix):
        plot(load_runs(tmp_path), "bleu", "search.beam_size", ["model"])


# -- duplicates: the same run found twice counts once; reports go next to the runs ------------


def test_a_run_found_twice_counts_once_and_a_note_names_it(tmp_path, capsys):
    kept = completed_run(tmp_path / "joblib", "0", BASE_HYPS)
    dropped = completed_run(tmp_path / "submitit", "0", BASE_HYPS, threads=8)  # another launcher
    completed_run(tmp_path / "joblib", "1", REFS, seed=2)  # another seed: a repeat, not a duplicate
    with pytest.warns(ReportNote, match=f"dropped 1 duplicate run.*{dropped} \\(= {kept}\\)"):
        df = load_runs(tmp_path)
    assert sorted(df["run_dir"]) == [str(kept), str(tmp_path / "joblib" / "1")]
    status, _, err = _lab(["report", str(tmp_path), "--out", str(tmp_path / "out")], capsys)
    assert status == 0 and "note: dropped 1 duplicate run(s)" in err and str(dropped) in err
    assert "(n=2)" in (tmp_path / "out" / "report_pivot.md").read_text()
    assert "1 duplicate run(s) dropped" in (tmp_path / "out" / "report_runs.md").read_text()


def test_without_out_a_report_goes_next_to_the_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    completed_run(tmp_path / "sweep", "0", BASE_HYPS)
    status, out, _ = _lab(["report", "sweep"], capsys)
    assert status == 0 and (tmp_path / "sweep" / "report" / "report_pivot.md").is_file()
    assert not (tmp_path / "reports").exists()
    assert all(Path(p).parent == Path("sweep/report") for p in out.split())
    written = report(tmp_path / "sweep" / "0" / "results.json")
    assert written[0].parent == tmp_path / "sweep" / "0" / "report"


# -- paired bootstrap tests against a baseline run --------------------------------------------


@pytest.fixture
def systems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Per model: the baseline (beam), a clearly worse run (greedy) and a run with the
    baseline's very outputs (sample); the transformer's greedy run lists its examples in
    reverse order, which must not matter."""
    monkeypatch.delenv("SACREBLEU_SEED", raising=False)
    root = tmp_path / "runs"
    for model in ("lstm", "transformer"):
        completed_run(root, f"{model}-beam", BASE_HYPS, model__name=model)
        worse = completed_run(
            root, f"{model}-greedy", WORSE_HYPS, model__name=model, search__name="greedy"
        )
        completed_run(root, f"{model}-sample", BASE_HYPS, model__name=model, search__name="sample")
        if model == "transformer":
            lines = (worse / "predictions.jsonl").read_text().splitlines(keepends=True)
            (worse / "predictions.jsonl").write_text("".join(reversed(lines)))
    return root


def _sacrebleu_paired(system: list[str]) -> dict[str, Any]:
    """sacreBLEU's paired bootstrap of ``system`` against the baseline, called directly."""
    metrics = {"bleu": BLEU(), "chrf": CHRF()}
    named = [("baseline", BASE_HYPS), ("system", system)]
    _, scores = PairedTest(named, metrics, [REFS], test_type="bs", n_samples=1000)()
    return {"bleu": scores["BLEU"][1], "chrf": scores["chrF2"][1]}


def test_a_baseline_adds_paired_tests_with_cis_marks_and_p_values(systems: Path, tmp_path):
    out = tmp_path / "out"
    write_report(load_runs(systems), out, baseline="search=beam")
    tests = pd.read_csv(out / "report_tests.csv").set_index(["model", "search"])
    expected = _sacrebleu_paired(WORSE_HYPS)
    for model in ("lstm", "transformer"):  # the same numbers, whatever the order of examples
        worse = tests.loc[(model, "greedy")]
        for metric, result in expected.items():
            assert worse[metric] == pytest.approx(result.score)
            assert worse[f"{metric}_p"] == pytest.approx(result.p_value) and result.p_value < 0.05
            assert worse[f"{metric}_ci_low"] == pytest.approx(result.mean - result.ci, abs=1e-4)
            assert worse[f"{metric}_ci_high"] == pytest.approx(result.mean + result.ci, abs=1e-4)
        assert tests.loc[(model, "sample"), "bleu_p"] == 1.0  # identical outputs: no evidence
        assert pd.isna(tests.loc[(model, "beam"), "bleu_p"]) and tests.loc[(model, "beam")].baseline
    worse = tests.loc[("lstm", "greedy")]
    md = (out / "report_tests.md").read_text()
    ci = f"[{worse['bleu_ci_low']:.2f}, {worse['bleu_ci_high']:.2f}]"
    assert re.search(rf"\| +{worse['bleu']:.2f}\* \| +{re.escape(ci)} \|", md)
    assert "lstm-beam (baseline)" in md and "bs:1000|seed:12345" in md
    assert f"{worse['bleu']:.2f}* &" in (out / "report_tests.tex").read_text()
    pivot_md = (out / "report_pivot.md").read_text()
    assert re.search(rf"\| +{worse['bleu']:.2f}\* \|", pivot_md)
    assert "p < 0.05 against --baseline search=beam" in pivot_md


@pytest.mark.parametrize(
    "baseline, message",
    [
        ("serch=beam", "unknown baseline key 'serch'. Did you mean 'search'?"),
        ("seed=1", "baseline key 'seed' is not a key of the pivot; add it to --rows or --cols"),
        ("search=beem", "--baseline search=beem matches no run; search takes: beam, greedy"),
        ("beam", "--baseline takes key=value pairs such as search=beam"),
    ],
)
def test_a_wrong_baseline_is_one_error_line(systems, capsys, baseline: str, message: str):
    status, _, err = _lab(["report", str(systems), "--baseline", baseline], capsys)
    assert status == 2 and err.startswith(f"error: {message}") and err.count("\n") == 1


def test_a_baseline_must_pick_one_run_in_every_group(systems: Path, capsys):
    (systems / "lstm-beam" / "results.json").unlink()
    status, _, err = _lab(["report", str(systems), "--baseline", "search=beam"], capsys)
    assert status == 2 and "matches no run where model=lstm (search there: greedy, sample)" in err
    completed_run(systems, "lstm-beam-2", REFS, model__name="lstm", seed=2)
    completed_run(systems, "transformer-beam-2", REFS, model__name="transformer", seed=2)
    status, _, err = _lab(["report", str(systems), "--baseline", "search=beam"], capsys)
    assert status == 2
    assert "matches 2 runs where model=transformer (seeds 1, 2); add seed to --rows" in err


def test_paired_tests_compare_single_runs_so_seeds_must_be_a_pivot_key(systems: Path, capsys):
    completed_run(
        systems, "lstm-greedy-2", WORSE_HYPS, model__name="lstm", search__name="greedy", seed=2
    )
    status, _, err = _lab(["report", str(systems), "--baseline", "search=sample"], capsys)
    assert status == 2 and err.startswith(
        "error: paired tests compare single runs, but the cell model=lstm, search=greedy holds "
        "2 runs (seeds 1, 2); add seed to --rows or --cols."
    )
    args = ["--rows", "model,seed", "--baseline", "search=sample"]
    status, _, err = _lab(["report", str(systems), *args], capsys)
    assert status == 2 and "matches no run where model=lstm, seed=2 (search there: greedy)" in err


def test_runs_of_other_examples_cannot_be_compared(systems: Path, capsys):
    preds = systems / "lstm-greedy" / "predictions.jsonl"
    preds.write_text("".join(preds.read_text().splitlines(keepends=True)[:-1]))
    status, _, err = _lab(["report", str(systems), "--baseline", "search=beam"], capsys)
    assert status == 2 and "decoded different examples (1 ids in only one of them" in err


# -- export: texts that the sacreBLEU command line rescores -------------------------------------

SACREBLEU = str(Path(sys.executable).with_name("sacrebleu"))


def _rescore(out: Path, *refs: str) -> list[float]:
    """BLEU and chrF of ``out/hyp.txt`` as the sacreBLEU command line computes them."""
    args = [SACREBLEU, *refs, "-i", "hyp.txt", "-b", "-w", "4", "-m", "bleu", "chrf"]
    proc = subprocess.run(args, cwd=out, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def test_an_export_rescored_by_sacrebleu_gives_the_runs_scores(tmp_path: Path, capsys):
    run = completed_run(tmp_path, "run", BASE_HYPS)
    status, out, _ = _lab(["report", "--export", str(run), "--out", str(tmp_path / "x")], capsys)
    assert status == 0 and out.split() == [str(tmp_path / "x" / f) for f in ("hyp.txt", "ref.txt")]
    assert (tmp_path / "x" / "hyp.txt").read_text().splitlines() == BASE_HYPS
    metrics = json.loads((run / "results.json").read_text())["metrics"]
    bleu, chrf = _rescore(tmp_path / "x", "ref.txt")
    assert bleu == pytest.approx(metrics["bleu"], abs=1e-4)
    assert chrf == pytest.approx(metrics["chrf"], abs=1e-4)


def test_extra_references_go_to_ref2_and_a_shorter_list_repeats_its_first(tmp_path, capsys):
    refs = [[r, r.replace("today", "now")] if i % 3 else r for i, r in enumerate(REFS)]
    hyps = [h.replace(" the ", "\nthe ", 1) if i == 5 else h for i, h in enumerate(BASE_HYPS)]
    run = completed_run(tmp_path, "run", hyps, refs)
    status, out, err = _lab(["report", "--export", str(run)], capsys)
    assert status == 0 and [Path(p).name for p in out.split()] == ["hyp.txt", "ref.txt", "ref2.txt"]
    assert "note: 14 of 40 examples have fewer than 2 references" in err
    assert "note: 1 texts held line breaks" in err
    ref2 = (run / "export" / "ref2.txt").read_text().splitlines()
    assert ref2[0] == REFS[0] and ref2[1] == REFS[1].replace("today", "now")
    metrics = json.loads((run / "results.json").read_text())["metrics"]
    bleu, chrf = _rescore(run / "export", "ref.txt", "ref2.txt")
    assert bleu == pytest.approx(metrics["bleu"], abs=1e-4)
    assert chrf == pytest.approx(metrics["chrf"], abs=1e-4)


def test_exporting_a_directory_without_predictions_names_the_fix(tmp_path: Path, capsys):
    completed_run(tmp_path / "sweep", "0", BASE_HYPS)
    completed_run(tmp_path / "sweep", "1", REFS, seed=2)
    (tmp_path / "empty").mkdir()
    expected = {
        "empty": "no predictions.jsonl in {d}; pass a run directory that `lab run` completed",
        "sweep": "{d} holds 2 runs but no predictions.jsonl of its own; pass one run directory",
    }
    for name, message in expected.items():
        status, _, err = _lab(["report", "--export", str(tmp_path / name)], capsys)
        assert status == 2 and err.startswith("error: " + message.format(d=tmp_path / name))
    status, _, err = _lab(["report", str(tmp_path), "--export", str(tmp_path / "sweep/0")], capsys)
    assert status == 2 and "--export takes one run directory; drop the other paths" in err
