"""``lab bench`` writes every figure, with sane values, on tiny shapes (``--tiny``); ``--device``
is refused in one line where it cannot run and writes every row on the CPU."""

import json
import statistics

import pytest
import torch

from lab.bench import cmd_bench
from lab.bench.common import MODES, median_times
from lab.bench.figures import TARGETS
from lab.bench.searches import bench_searches
from lab.errors import LabError

SEARCH_KEYS = [
    "sample_overhead_n16",
    "sample_apart_layout_n16",
    "stochastic_beam_vs_beam10",
    "diverse_beam_vs_beam10",
    "beam10_overhead",
    "mbr_selection_share",
    "exact_expansions_per_s",
    "exact_vs_beam4",
]
KEYS = [
    *SEARCH_KEYS,
    "search_overhead_beam5",
    "cache_speedup_50",
    "lab_vs_hf_beam5_time_ratio",
    "lab_vs_hf_beam5_identical",
    "lab_vs_hf_greedy_identical",
    "lab_vs_ct2_beam5_time_ratio",
    "lab_vs_ct2_greedy_time_ratio",
    "lab_vs_ct2_greedy_identical",
    "peak_mem_beam5_mb",
    "peak_mem_beam64_mb",
]


def test_median_times_runs_every_function_once_per_repeat_after_a_warm_up():
    calls = {"a": 0, "b": 0}

    def bump(name):
        return lambda: calls.__setitem__(name, calls[name] + 1)

    times = median_times({"a": bump("a"), "b": bump("b")}, repeats=3)
    assert calls == {"a": 4, "b": 4}
    assert set(times) == {"a", "b"} and all(t >= 0 for t in times.values())


def test_the_search_figures_are_ratios_of_times_measured_in_the_same_run():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as lab bench runs them; more only stall on a busy CPU
    try:
        res = bench_searches(MODES["tiny"])
    finally:
        torch.set_num_threads(threads)
    times, rounds = res["times_s"], res["search_rounds_s"]
    for key in SEARCH_KEYS:
        assert res[key] > 0 and res[key] < float("inf"), key
    assert res["search_rounds"] >= 7 and all(
        len(v) == res["search_rounds"] for v in rounds.values()
    )

    def paired(slow: str, fast: str) -> float:  # the median of the rounds' own ratios
        return statistics.median(a / b for a, b in zip(rounds[slow], rounds[fast], strict=True))

    assert res["sample_overhead_n16"] == paired("sample_n16", "floor_n16")
    assert res["sample_apart_layout_n16"] == paired("floor_n16_apart", "floor_n16")
    assert res["stochastic_beam_vs_beam10"] == paired("stochastic_beam10", "beam10")
    assert res["diverse_beam_vs_beam10"] == paired("diverse_beam10", "beam10")
    assert times["beam10"] == statistics.median(rounds["beam10"])
    assert res["exact_vs_beam4"] == times["exact"] / times["beam4_exact_sentences"]
    assert 0 <= res["exact_proved_share"] <= 1
    assert {"sample_overhead_n16", "stochastic_beam_vs_beam10"} <= set(TARGETS)


def test_tiny_bench_writes_all_figures(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("ctranslate2")
    out = tmp_path / "bench"
    cmd_bench(["--tiny", "--out", str(out), "--threads", "1"])
    res = json.loads((out / "bench.json").read_text())
    for key in KEYS:
        assert key in res, key
    for key in ("search_overhead_beam5", "cache_speedup_50"):
        assert res[key] > 0
    assert res["lab_vs_hf_beam5_time_ratio"] > 0
    for key in ("lab_vs_hf_beam5_identical", "lab_vs_hf_greedy_identical"):
        assert 0.0 <= res[key] <= 1.0
    # the lab's adapter reproduces generate exactly on these inputs
    assert res["lab_vs_hf_greedy_identical"] == 1.0
    # and the CTranslate2 conversion computes what the lab model computes
    assert res["lab_vs_ct2_greedy_identical"] == 1.0
    assert res["lab_vs_ct2_beam5_time_ratio"] > 0 and res["lab_vs_ct2_greedy_time_ratio"] > 0
    assert res["fixed_length_ok"] and res["cache_tokens_identical"]
    assert res["peak_mem_beam5_mb"] >= 0 and res["peak_mem_beam64_mb"] >= 0
    env = res["environment"]
    assert env["torch_threads"] == 1 and env["torch"] and env["cpu_count"]
    assert env["cpu"] and env["cpu"] != "unknown"  # which GEMM wins depends on the CPU
    assert set(res["targets"]) == set(TARGETS)
    assert res["settings"]["mode"] == "tiny" and res["mode"] == "tiny"
    md = (out / "bench.md").read_text()
    assert all(f"`{key}`" in md for key in KEYS)
    assert "torch threads" in md


def test_modes_keep_the_documented_fixed_inputs():
    for mode in ("quick", "full"):
        s = MODES[mode]
        assert s.batch == 32 and s.vocab == 8000 and s.mem_beams == (5, 64)
        assert s.cache_len == 50


# --- lab bench --device ---------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_device_cuda_without_cuda_is_refused_in_one_line(tmp_path):
    with pytest.raises(LabError, match="torch sees no CUDA device") as e:
        cmd_bench(["--device", "cuda", "--tiny", "--out", str(tmp_path)])
    assert "\n" not in str(e.value) and "gpu_check.sh" in str(e.value)
    assert not any(tmp_path.iterdir())  # refused before anything ran


def test_an_unknown_device_is_refused_in_one_line(tmp_path):
    with pytest.raises(LabError, match="choose cpu or cuda") as e:
        cmd_bench(["--device", "tpu", "--tiny", "--out", str(tmp_path)])
    assert "\n" not in str(e.value)


def test_tiny_device_bench_on_cpu_writes_every_row_and_figure(tmp_path):
    """The code ``--device cuda`` runs, on the CPU: every batch x precision row with its
    ratios and identity rates, the lab-internal figures, the environment and the markdown."""
    pytest.importorskip("transformers")
    pytest.importorskip("ctranslate2")
    cmd_bench(["--device", "cpu", "--tiny", "--out", str(tmp_path)])
    res = json.loads((tmp_path / "device_bench.json").read_text())
    assert res["environment"]["device"] == "cpu" and res["precisions"] == ["fp32", "bf16"]
    assert [(r["batch"], r["precision"]) for r in res["rows"]] == [
        (b, p) for b in (2, 4) for p in ("fp32", "bf16")
    ]
    for row in res["rows"]:
        assert row["lab_beam5_s"] > 0 and row["lab_greedy_s"] > 0
        assert row["lab_vs_hf_beam5_time_ratio"] > 0 and 0 <= row["lab_vs_hf_beam5_identical"] <= 1
        assert 0 <= row["beam5_identical_to_fp32"] <= 1
    fp32 = [r for r in res["rows"] if r["precision"] == "fp32"]
    assert all(r["beam5_identical_to_fp32"] == 1.0 for r in fp32)
    assert all(r["lab_vs_ct2_greedy_identical"] == 1.0 for r in fp32)  # same weights, same kernels
    assert all(r["lab_vs_hf_greedy_identical"] == 1.0 for r in fp32)
    assert res["search_overhead_beam5"] > 0 and res["sample_n16_overhead"] > 0
    assert res["exact"]["sentences"] == 4 and 0 <= res["exact"]["proved_share"] <= 1
    assert res["rng_cost"]["stochastic_beam5"]["width"] == 11  # 2k + 1 uniforms a row
    md = (tmp_path / "device_bench.md").read_text()
    assert md.startswith("# lab bench --device cpu (tiny)") and "| 4 | bf16 |" in md
