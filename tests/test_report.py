"""Report over run directories written the way ``lab run`` writes them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from lab.errors import LabError
from lab.report import (
    SkippedRunWarning,
    find_runs,
    latex_escape,
    load_runs,
    pivot,
    report,
    runs_table,
    write_report,
)
from lab.report.plot import log2_x, plot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _config(model: str, search: str, beam: int, seed: int, out_dir: Path) -> dict:
    return {
        "task": {"name": "multi30k", "split": "test", "src_lang": "de", "tgt_lang": "en"},
        "model": {"name": model, "d_model": 256, "layers": 3},
        "search": {
            "name": search,
            "beam_size": beam,
            "max_len_a": 1.2,
            "max_len_b": 10,
            "processors": [],
        },
        "seed": seed,
        "out_dir": str(out_dir),
    }


def _write_run(
    root: Path,
    name: str,
    model: str,
    search: str,
    beam: int,
    bleu: float,
    seed: int = 1,
    status: str = "completed",
) -> Path:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    results = {
        "status": status,
        "task": "multi30k",
        "model": model,
        "search": search,
        "config": _config(model, search, beam, seed, run_dir),
        "metrics": {
            "bleu": bleu,
            "bleu_signature": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
            "chrf": bleu + 20.0,
            "len_ratio": 0.9 + beam / 100,
            "bleu_sys_len": 900.0 + beam,  # a count that sacrebleu gives as a float
        },
        "n_examples": 1000,
        "seconds": 10 + beam / 3,
        "checkpoint": f"checkpoints/{model}/best.pt",
        "cost": {"steps": 30 * beam, "model_calls": 31 * beam},
    }
    (run_dir / "results.json").write_text(json.dumps(results), encoding="utf-8")
    (run_dir / "predictions.jsonl").write_text('{"id": 0, "hyp": "a cat"}\n', encoding="utf-8")
    return run_dir


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """Five completed runs (one repeated with another seed), one running, one crashed."""
    root = tmp_path / "sweep"
    _write_run(root, "0", "transformer", "greedy", 1, 34.0)
    _write_run(root, "1", "transformer", "beam", 5, 36.0, seed=1)
    _write_run(root, "2", "transformer", "beam", 5, 37.0, seed=2)
    _write_run(root, "3", "lstm", "greedy", 1, 30.0)
    _write_run(root, "4", "lstm", "beam", 5, 31.5)
    _write_run(root, "5", "lstm", "beam", 10, 99.0, status="running")
    crashed = root / "6"
    (crashed / ".hydra").mkdir(parents=True)
    (crashed / ".hydra" / "config.yaml").write_text("seed: 1\n", encoding="utf-8")
    return root


def _load(paths) -> pd.DataFrame:
    with pytest.warns(SkippedRunWarning):
        return load_runs(paths)


def test_skips_incomplete_runs_with_warnings_naming_them(sweep: Path):
    with pytest.warns(SkippedRunWarning) as record:
        df = load_runs([sweep])
    messages = [str(w.message) for w in record]
    assert any(str(sweep / "5") in m and "'running'" in m for m in messages)
    assert any(str(sweep / "6") in m and "results.json" in m for m in messages)
    assert len(df) == 5
    assert sorted(Path(d).name for d in df["run_dir"]) == ["0", "1", "2", "3", "4"]


def test_find_runs_accepts_run_dirs_sweeps_and_results_files(sweep: Path):
    with pytest.warns(SkippedRunWarning):
        everything = find_runs([sweep])
    assert len(everything) == 6  # the running one is filtered later, by load_runs
    both = find_runs([sweep / "0", sweep / "1" / "results.json", sweep / "0"])
    assert both == [sweep / "0", sweep / "1"]
    with pytest.raises(LabError, match="no such run or sweep directory"):
        find_runs([sweep / "missing"])


def test_unreadable_results_are_skipped(tmp_path: Path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.json").write_text("{not json", encoding="utf-8")
    with pytest.warns(SkippedRunWarning, match="cannot read results.json"):
        df = load_runs([tmp_path])
    assert df.empty


def test_column_naming(sweep: Path):
    df = _load([sweep])
    for column in (
        "run_dir",
        "task",
        "model",
        "search",
        "bleu",
        "bleu_signature",
        "chrf",
        "n_examples",
        "checkpoint",
        "cost.steps",
        "search.beam_size",
        "model.d_model",
        "task.name",
        "seed",
    ):
        assert column in df.columns, column
    metrics = ["bleu", "bleu_signature", "chrf", "len_ratio", "bleu_sys_len"]
    assert df.attrs["columns"]["metric"] == metrics
    assert pd.api.types.is_numeric_dtype(df["bleu"])
    assert df["search.processors"].iloc[0] == "[]"


def test_name_collisions_get_a_source_prefix(tmp_path: Path):
    run = _write_run(tmp_path, "r", "lstm", "greedy", 1, 30.0)
    data = json.loads((run / "results.json").read_text())
    data["config"]["checkpoint"] = "from/config.pt"
    data["metrics"]["n_examples"] = 7
    (run / "results.json").write_text(json.dumps(data))
    df = load_runs([run])
    assert df.loc[0, "checkpoint"] == "checkpoints/lstm/best.pt"
    assert df.loc[0, "config.checkpoint"] == "from/config.pt"
    assert df.loc[0, "n_examples"] == 7
    assert df.loc[0, "results.n_examples"] == 1000


def test_pivot_means_repeats_over_seeds(sweep: Path):
    df = _load([sweep])
    table = pivot(df, "bleu", "model", "search")
    assert table.loc["transformer", "beam"] == pytest.approx(36.5)  # seeds 1 and 2
    assert table.loc["transformer", "greedy"] == pytest.approx(34.0)
    assert table.loc["lstm", "beam"] == pytest.approx(31.5)
    assert list(table.index) == ["lstm", "transformer"]


def test_pivot_with_lists_of_keys_and_empty_sides(sweep: Path):
    df = _load([sweep])
    table = pivot(df, "bleu", ["model", "search"], ["search.beam_size"])
    assert table.loc[("transformer", "beam"), 5] == pytest.approx(36.5)
    assert math.isnan(table.loc[("transformer", "beam"), 1])
    only_cols = pivot(df, "chrf", [], ["model", "search"])
    assert only_cols.loc["chrf", ("lstm", "beam")] == pytest.approx(51.5)
    only_rows = pivot(df, "bleu", ["search", "model"], [])
    assert only_rows.loc[("greedy", "lstm"), "bleu"] == pytest.approx(30.0)
    with pytest.raises(LabError, match="both a row and a column"):
        pivot(df, "bleu", "model", "model")


def test_write_report_writes_all_files(sweep: Path, tmp_path: Path):
    df = _load([sweep])
    out = tmp_path / "out"
    written = write_report(
        df, out, metric="bleu", rows="model", cols="search", x="search.beam_size", name="beams"
    )
    names = sorted(p.name for p in written)
    assert names == sorted(
        [
            "beams_pivot.md",
            "beams_pivot.csv",
            "beams_pivot.tex",
            "beams_runs.md",
            "beams_runs.csv",
            "beams_runs.tex",
            "beams_plot.png",
        ]
    )
    assert all(p.is_file() and p.stat().st_size > 0 for p in written)
    assert sorted(p.name for p in out.iterdir()) == names  # no temporary files left
    assert (out / "beams_plot.png").read_bytes()[:8] == PNG_MAGIC

    pivot_md = (out / "beams_pivot.md").read_text()
    assert "| transformer |" in pivot_md and "36.50" in pivot_md
    pivot_tex = (out / "beams_pivot.tex").read_text()
    assert "\\begin{tabular}" in pivot_tex and "\\end{tabular}" in pivot_tex
    assert "transformer & 36.50 $\\pm$ 0.71 (n=2) & 34.00 \\\\" in pivot_tex
    pivot_csv = pd.read_csv(out / "beams_pivot.csv")
    assert list(pivot_csv.columns) == [
        "model",
        *("beam", "beam_std", "beam_n"),
        *("greedy", "greedy_std", "greedy_n"),
    ]
    assert pivot_csv.set_index("model").loc["lstm", "greedy"] == pytest.approx(30.0)


def test_mean_row_averages_each_column_and_refuses_partial_columns(sweep: Path, tmp_path: Path):
    df = _load([sweep])
    write_report(df, tmp_path, metric="bleu", rows="model", cols="search", mean_row=True)
    table = pd.read_csv(tmp_path / "report_pivot.csv")
    assert table["model"].tolist() == ["lstm", "transformer", "mean"]
    mean = table.set_index("model").loc["mean"]
    assert mean["greedy"] == pytest.approx((30.0 + 34.0) / 2)
    assert mean["beam"] == pytest.approx((31.5 + 36.5) / 2)
    assert "| mean        |" in (tmp_path / "report_pivot.md").read_text()
    # greedy runs only at beam 1, beam runs only at beam 5: no column is complete
    rows = ["search.beam_size", "model"]
    write_report(df, tmp_path, metric="bleu", rows=rows, cols="search", mean_row=True)
    md = (tmp_path / "report_pivot.md").read_text()
    assert md.splitlines()[-1].replace(" ", "") == "|mean|-|-|-|"


def test_runs_table_keeps_what_varies(sweep: Path, tmp_path: Path):
    df = _load([sweep])
    table = runs_table(df, "chrf")
    columns = list(table.columns)
    assert columns[:4] == ["run", "task", "model", "search"]
    assert {"search.beam_size", "seed", "cost.steps"} <= set(columns)
    assert columns.index("chrf") < columns.index("bleu")  # the reported metric first
    for dropped in (
        "model.d_model",
        "n_examples",
        "bleu_signature",
        "out_dir",
        "checkpoint",
        "model.name",
        "task.name",
        "run_dir",
    ):
        assert dropped not in columns, dropped
    assert len(table) == 5

    write_report(df, tmp_path, metric="chrf", name="r")
    runs_csv = pd.read_csv(tmp_path / "r_runs.csv")
    assert len(runs_csv) == 5 and "search.beam_size" in runs_csv.columns
    assert "\\begin{tabular}" in (tmp_path / "r_runs.tex").read_text()
    assert "search.beam\\_size" in (tmp_path / "r_runs.tex").read_text()


def test_no_plot_without_x(sweep: Path, tmp_path: Path):
    written = write_report(_load([sweep]), tmp_path)
    assert not any(p.suffix == ".png" for p in written)
    assert len(written) == 6


def test_plot_with_explicit_hue(sweep: Path, tmp_path: Path):
    written = write_report(_load([sweep]), tmp_path, x="search.beam_size", hue="model")
    png = [p for p in written if p.suffix == ".png"]
    assert png and png[0].read_bytes()[:8] == PNG_MAGIC


def test_numbers_read_with_two_decimals_and_counts_without(sweep: Path, tmp_path: Path):
    write_report(_load([sweep]), tmp_path)
    md = (tmp_path / "report_runs.md").read_text()
    beam5 = next(line for line in md.splitlines() if line.startswith("| 1 "))
    cells = [c.strip() for c in beam5.strip("|").split("|")]
    assert "36.00" in cells and "0.95" in cells  # bleu, len_ratio
    assert "11.67" in cells  # seconds, 11.666...
    assert {"150", "155", "905"} <= set(cells)  # cost.steps, cost.model_calls, bleu_sys_len
    assert not any(c.endswith(".00") and c[:-3] in ("150", "155", "905") for c in cells)
    csv = pd.read_csv(tmp_path / "report_runs.csv").set_index("run")
    assert csv.loc[1, "seconds"] == pytest.approx(10 + 5 / 3)  # the CSV keeps every digit


def test_plot_labels_axes_draws_beam_sizes_on_a_log2_axis_and_seeds_as_error_bars(sweep: Path):
    fig = plot(_load([sweep]), "bleu", "search.beam_size", ["model", "search"])
    (ax,) = fig.axes
    assert ax.get_xlabel() == "search.beam_size"
    assert ax.get_ylabel() == "bleu (mean ± std over seeds)"
    assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
    lines = {c.get_label(): c for c in ax.containers}
    assert not lines["lstm / beam"].has_yerr  # one run: a point without a bar
    (bar,) = lines["transformer / beam"].lines[2][0].get_segments()  # seeds 1 and 2: 36, 37
    assert bar[:, 1] == pytest.approx([36.5 - 0.5**0.5, 36.5 + 0.5**0.5])


@pytest.mark.parametrize(
    "key, values, log2",
    [
        ("search.beam_size", [1, 2], True),  # a beam size, however few
        ("eval.limit", [10, 100], True),  # a positive size over more than a factor of 8
        ("search.alpha", [0.2, 1.0], False),
        ("search.min_len", [0, 16], False),  # no log of 0
    ],
)
def test_log2_x_axis_for_sizes(key: str, values: list[float], log2: bool):
    assert log2_x(key, pd.Series(values)) is log2


def test_unknown_metric_lists_choices(sweep: Path, tmp_path: Path):
    df = _load([sweep])
    with pytest.raises(LabError) as err:
        write_report(df, tmp_path / "out", metric="blue")
    message = str(err.value)
    assert "\n" not in message
    assert "Did you mean 'bleu'?" in message
    assert "Valid choices: bleu, chrf, len_ratio" in message
    assert not (tmp_path / "out").exists()  # nothing written on error


def test_unknown_and_unusable_keys(sweep: Path, tmp_path: Path):
    df = _load([sweep])
    with pytest.raises(LabError, match="unknown key 'beam_size'. Did you mean 'search.beam_size'"):
        write_report(df, tmp_path, rows="beam_size")
    with pytest.raises(LabError, match="unknown x key 'beamsize'"):
        write_report(df, tmp_path, x="beamsize")
    with pytest.raises(LabError, match="x key 'model' is not numeric"):
        write_report(df, tmp_path, x="model")
    with pytest.raises(LabError, match="metric 'bleu_signature' is not numeric"):
        pivot(df, "bleu_signature", "model", "search")


def test_report_convenience(sweep: Path, tmp_path: Path):
    with pytest.warns(SkippedRunWarning):
        written = report([sweep], tmp_path / "rep", metric="chrf", x="search.beam_size")
    assert (tmp_path / "rep" / "report_plot.png") in written
    assert len(written) == 7


def test_report_without_completed_runs_is_a_lab_error(sweep: Path, tmp_path: Path):
    with pytest.warns(SkippedRunWarning), pytest.raises(LabError, match="no completed runs"):
        report([sweep / "5", sweep / "6"], tmp_path / "rep")


def test_latex_escape():
    assert latex_escape("a_b & 50% #1 {x} ~^\\") == (
        "a\\_b \\& 50\\% \\#1 \\{x\\} \\textasciitilde{}\\textasciicircum{}\\textbackslash{}"
    )
