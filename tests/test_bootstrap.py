"""Paired bootstrap from per-sentence statistics: the same numbers as rescoring the text.

The difference's interval is checked against a direct computation: sacreBLEU's corpus BLEU
and chrF of each resampled list of sentences, system minus baseline, over sacreBLEU's own
resamples. A committed summary (``results.json`` + ``sentence_stats.json``, no predictions)
gives the report the very tests its full run gives.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sacrebleu.metrics import BLEU, CHRF

from lab.errors import LabError
from lab.rebuild.add import main
from lab.report import load_runs, write_report
from lab.report.bootstrap import paired_test, percentile_ci
from lab.report.predictions import read_run
from lab.report.sentence_stats import STATS, aligned, metrics, read_stats, sentence_stats
from tests.helpers.report_runs import BASE_HYPS, REFS, WORSE_HYPS, completed_run, drop_words

SAMPLES = 40  # a direct rescoring per resample is slow; 40 resamples check the arithmetic


def _direct_deltas(base: list[str], system: list[str], metric, samples: int) -> np.ndarray:
    """system - baseline corpus score on each of sacreBLEU's resamples, from the text."""
    idxs = np.random.default_rng(12345).choice(len(REFS), size=(samples, len(REFS)))
    out = []
    for row in idxs:
        refs = [[REFS[i] for i in row]]
        sys_score = metric.corpus_score([system[i] for i in row], refs).score
        base_score = metric.corpus_score([base[i] for i in row], refs).score
        out.append(sys_score - base_score)
    return np.array(out)


@pytest.mark.parametrize("name", ["bleu", "chrf"])
def test_the_difference_and_its_interval_are_those_of_rescoring_each_resample(
    tmp_path, monkeypatch, name
):
    monkeypatch.delenv("SACREBLEU_SEED", raising=False)
    system_hyps = drop_words(REFS, 3, 1)
    base = sentence_stats(read_run(completed_run(tmp_path, "b", BASE_HYPS)))
    system = sentence_stats(read_run(completed_run(tmp_path, "s", system_hyps)))
    metric = metrics(1)[name]
    rows = [aligned(s, base, name, Path("s"), Path("b")) for s in (base, system)]
    _, result = paired_test(rows[0], [rows[1]], metric, samples=SAMPLES)
    direct_metric = BLEU() if name == "bleu" else CHRF()
    deltas = _direct_deltas(BASE_HYPS, system_hyps, direct_metric, SAMPLES)
    whole = direct_metric.corpus_score(system_hyps, [REFS]).score
    assert result.delta == pytest.approx(
        whole - direct_metric.corpus_score(BASE_HYPS, [REFS]).score
    )
    low, high = percentile_ci(deltas)
    assert (result.delta_low, result.delta_high) == pytest.approx((low, high), abs=1e-3)
    assert result.delta_low < result.delta < result.delta_high


def test_a_summary_without_predictions_gives_the_tests_of_the_full_run(tmp_path, monkeypatch):
    monkeypatch.delenv("SACREBLEU_SEED", raising=False)
    full, summary = tmp_path / "full", tmp_path / "summary"
    completed_run(full, "beam", BASE_HYPS)
    completed_run(full, "greedy", WORSE_HYPS, search__name="greedy")
    for run in ("beam", "greedy"):
        assert main([str(full / run), "--to", str(summary), "--stats"]) == 0
    outs = []
    for root in (full, summary):
        out = tmp_path / f"out-{root.name}"
        write_report(load_runs(root), out, rows="search", cols="model", baseline="search=beam")
        outs.append(pd.read_csv(out / "report_tests.csv").drop(columns="run"))
    pd.testing.assert_frame_equal(outs[0], outs[1])
    worse = outs[1].set_index("search").loc["greedy"]
    assert worse["bleu_delta_high"] < 0 and worse["bleu_p"] < 0.05  # clearly worse, and said so
    text = gzip.decompress((summary / "beam" / STATS).read_bytes()).decode()
    assert "the small red house" not in text  # statistics, not the data's text


def test_runs_with_other_references_are_not_compared(tmp_path):
    base = read_stats(completed_run(tmp_path, "b", BASE_HYPS))
    other_refs = [r.replace("house", "home") for r in REFS]
    other = read_stats(completed_run(tmp_path, "o", BASE_HYPS, refs=other_refs))
    with pytest.raises(LabError, match="different references for example 'test-0'"):
        aligned(other, base, "bleu", Path("o"), Path("b"))


def test_a_stats_file_of_another_format_names_the_command_that_rewrites_it(tmp_path):
    run = completed_run(tmp_path, "b", BASE_HYPS)
    (run / STATS).write_bytes(gzip.compress(json.dumps({"format": 0}).encode()))
    with pytest.raises(LabError, match=r"python -m lab.rebuild.add --stats RUN_DIR"):
        read_stats(run)
