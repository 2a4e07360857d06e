"""``lab bench`` writes every figure, with sane values, on tiny shapes (``--tiny``)."""

import json

import pytest

from lab.bench import cmd_bench
from lab.bench.common import MODES, median_times
from lab.bench.figures import TARGETS

KEYS = [
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
