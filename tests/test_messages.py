"""Every mistake gets one line that names the fix, and reports never stay silent: a missing
directory for ``lab ct2``, ``report --out`` at a place that cannot take files, a row key that
is also the default column, ``eval.limit`` below one, a truncated JSON line cited by the
file's line, run directories collected as symlinks, a NaN in ``results.json``, and warnings
of other libraries kept to one line each."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest

from lab.config_checks import check_config
from lab.errors import LabError
from lab.report.predictions import read_run
from lab.report.runs import load_runs
from tests.helpers.configs import resolved
from tests.helpers.lab_process import lab, lab_here
from tests.helpers.parallel_data import parallel, write_pairs
from tests.helpers.report_runs import BASE_HYPS, completed_run


def one_line(err: str, *needles: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_ct2_on_a_missing_directory_is_one_line(tmp_path, capsys):
    status, _, err = lab_here(["ct2", str(tmp_path / "nope")], capsys)
    assert status == 2
    one_line(err, "no such run directory", str(tmp_path / "nope"))


@pytest.mark.parametrize("out", ["/dev/full", "FILE"])
def test_report_out_that_is_not_a_directory_names_out(tmp_path, capsys, out):
    completed_run(tmp_path / "runs", "a", BASE_HYPS)
    if out == "FILE":
        out = str(tmp_path / "file.txt")
        Path(out).write_text("x")
    status, _, err = lab_here(["report", str(tmp_path / "runs"), "--out", out], capsys)
    assert status == 2
    line = one_line(err, "--out")
    assert "hydra.run.dir" not in line and "cache_dir" not in line and "File exists" not in line


def test_rows_search_alone_moves_search_off_the_columns(tmp_path, capsys):
    completed_run(tmp_path / "runs", "a", BASE_HYPS)
    status, out, err = lab_here(["report", str(tmp_path / "runs"), "--rows", "search"], capsys)
    assert status == 0, err
    assert "both a row and a column" not in err


@pytest.mark.parametrize("limit", [0, -1])
def test_eval_limit_below_one_asks_for_the_same_fix(limit):
    with pytest.raises(LabError, match=r"set eval.limit=1 or more"):
        check_config(resolved(f"eval.limit={limit}"))


def test_a_truncated_predictions_line_is_cited_by_its_line_in_the_file(tmp_path):
    run = completed_run(tmp_path, "a", BASE_HYPS)
    text = (run / "predictions.jsonl").read_text()
    (run / "predictions.jsonl").write_text(text[:-10])
    with pytest.raises(LabError, match=rf"line {len(BASE_HYPS)} column"):
        read_run(run)


def test_report_follows_symlinked_runs_and_survives_a_cycle(tmp_path, capsys):
    real = completed_run(tmp_path / "elsewhere", "a", BASE_HYPS)
    collected = tmp_path / "collected"
    collected.mkdir()
    (collected / "a").symlink_to(real, target_is_directory=True)
    (collected / "loop").symlink_to(collected, target_is_directory=True)
    args = ["report", str(collected), "--out", str(tmp_path / "r")]
    status, out, err = lab_here(args, capsys)
    assert status == 0, err
    assert len(load_runs(collected)) == 1


def test_a_nan_metric_is_warned_not_passed_over_silently(tmp_path, capsys):
    run = completed_run(tmp_path / "runs", "a", BASE_HYPS)
    res = json.loads((run / "results.json").read_text())
    res["metrics"]["bleu"] = math.nan
    (run / "results.json").write_text(json.dumps(res))  # json writes NaN, as a foreign tool may
    args = ["report", str(tmp_path / "runs"), "--out", str(tmp_path / "r")]
    status, _, err = lab_here(args, capsys)
    assert status == 0, err
    assert f"warning: run {run}: bleu is NaN in results.json" in err


def test_python_warnings_print_as_one_line(capsys):
    from lab.console import one_line_warnings

    with one_line_warnings():
        warnings.warn("first line\n  second line", UserWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: first line second line")


def test_a_long_test_line_is_named_with_the_fix_for_decoding(tmp_path):
    for split, n, seed in (("train", 300, 0), ("valid", 20, 1), ("test", 5, 2)):
        write_pairs(tmp_path / "d", split, n, seed)
    long = " ".join(["the big red house"] * 12)
    with open(tmp_path / "d" / "test.src", "a") as f:
        f.write(long + "\n")
    with open(tmp_path / "d" / "test.tgt", "a") as f:
        f.write(long + "\n")
    args = [*parallel(tmp_path / "d"), "model.max_positions=24", "train.max_len=20"]
    proc = lab(["run", *args, f"hydra.run.dir={tmp_path / 'r'}"], tmp_path, tmp_path / "cache")
    errors = [ln for ln in proc.stderr.splitlines() if not ln.startswith("train:")]  # progress
    line = one_line("\n".join(errors), "test example test-5 (line 6 of the split)", "positions=24")
    assert "train.max_len" not in line


def test_a_nan_metric_reads_nan_in_the_tables_and_a_missing_run_reads_dash(tmp_path, capsys):
    runs = tmp_path / "runs"
    nan_run = completed_run(runs, "a", BASE_HYPS, search__name="greedy")
    completed_run(runs, "b", BASE_HYPS)
    completed_run(runs, "c", BASE_HYPS, model__name="gru")  # no greedy gru run: '-'

    res = json.loads((nan_run / "results.json").read_text())
    res["metrics"]["bleu"] = math.nan
    (nan_run / "results.json").write_text(json.dumps(res))
    out = tmp_path / "r"
    args = ["report", str(runs), "--out", str(out), "--rows", "search", "--cols", "model"]
    status, _, err = lab_here(args, capsys)
    assert status == 0, err
    runs_md = (out / "report_runs.md").read_text()
    greedy_line = next(ln for ln in runs_md.splitlines() if "| greedy" in ln)
    assert "NaN" in greedy_line
    pivot = (out / "report_pivot.md").read_text()
    rows = {ln.split("|")[1].strip(): ln for ln in pivot.splitlines() if ln.startswith("|")}
    greedy = [cell.strip() for cell in rows["greedy"].split("|")[2:-1]]
    assert sorted(greedy) == ["-", "NaN"], pivot
    assert "NaN" not in rows["beam"] and "-" not in rows["beam"].split("|")[2:-1]


def _period_runs(root: Path, refs: list[str], hyps: list[str]) -> Path:
    """A beam and a greedy run over ``refs``: greedy translates every sentence, beam one fewer."""
    completed_run(root, "beam", [*hyps[:-1], "a dog ."], refs)
    completed_run(root, "greedy", hyps, refs, search__name="greedy")
    return root


@pytest.mark.parametrize("periods_apart", [True, False])
def test_report_baseline_warns_about_detokenizing_only_where_a_run_would(tmp_path, periods_apart):
    """sacreBLEU's "forgot to detokenize" warning (100 or more outputs ending in " .") is
    right for tokenized outputs against detokenized references, and wrong when the references
    set their period apart as well (the task's own text); ``--baseline``'s resampling says it
    where a run's metrics would, once, or not at all."""
    words = ["a man rides a horse", "two dogs play", "a girl reads a book", "people walk"]
    refs = [f"{words[i % 4]} number {i} ." for i in range(120)]
    if not periods_apart:
        refs = [r.removesuffix(" .") + "." for r in refs]
    hyps = [r.removesuffix(".").removesuffix(" ") + " ." for r in refs]
    runs = _period_runs(tmp_path / "runs", refs, hyps)
    args = ["report", str(runs), "--out", str(tmp_path / "r"), "--baseline", "search=beam"]
    proc = lab(args, tmp_path, tmp_path / "cache")  # a process: sacreBLEU logs to its stderr
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("forgot to detokenize") == (0 if periods_apart else 1), proc.stderr
