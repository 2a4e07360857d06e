"""Markdown reports of the benchmarks: ``bench.md`` (``lab bench``) and ``throughput.md``
(``lab throughput``), each rendered from the dict that is also written as JSON."""

from __future__ import annotations

from typing import Any

from lab.bench.figures import FIGURES

PASS_MARK = {True: "pass", False: "FAIL", None: "skipped"}


def cpu_name(env: dict[str, Any]) -> str:
    """`` (the CPU model)`` for an environment that recorded it; older JSON did not."""
    return f" ({env['cpu']})" if env.get("cpu") else ""


def render_md(res: dict[str, Any]) -> str:
    """``bench.md``: the figures against their targets, then how they were measured."""
    env = res["environment"]
    lines = [
        f"# lab bench ({res['mode']})",
        "",
        f"{env['date']}: torch {env['torch']}, transformers {env['transformers']}, "
        f"{env['torch_threads']} torch threads, {env['cpu_count']} CPUs{cpu_name(env)},"
        f" {env['platform']}.",
        "",
        "| figure | value | target | pass |",
        "|---|---|---|---|",
    ]
    for fig in FIGURES:
        if fig.key not in res:  # a figure added after this bench.json was written
            continue
        t = res["targets"].get(fig.key) if fig.target is not None else None
        value = res.get(fig.key) if t is None else t["value"]
        shown = "n/a" if value is None else format(value, fig.fmt)
        tail = " | |" if t is None else f" {t['target']} | {PASS_MARK[t['pass']]} |"
        lines.append(f"| `{fig.key}` | {shown} |{tail}")
    lines += ["", "## Method", "", *_method(res), ""]
    lines += [
        "Raw medians (s): "
        + ", ".join(f"`{k}` {v:.4f}" for k, v in sorted(res.get("times_s", {}).items())),
        "",
    ]
    if res.get("notes"):
        lines += ["Notes:", ""] + [f"- {n}" for n in res["notes"]] + [""]
    return "\n".join(lines)


def _method(res: dict[str, Any]) -> list[str]:
    """The method section of ``bench.md``, with the sizes of the mode that ran."""
    s = res["settings"]
    searches = [] if "search_batch" not in s else _search_method(s, res.get("search_rounds"))
    return [
        f"Lab-internal figures: the lab `transformer` with random weights (d_model {s['d_model']},"
        f" {s['n_heads']} heads, {s['layers']}+{s['layers']} layers, d_ff {s['d_ff']}, vocabulary"
        f" {s['vocab']}), a fixed batch of {s['batch']} random sentences of {s['src_min']}-"
        f"{s['src_max']} tokens (seed {s['seed']}), outputs forced to {s['out_len']} tokens"
        " (`min_length` processor with the limit at the same length). Wall times are medians of"
        f" {s['repeats']} interleaved repeats after one warm-up, under `torch.inference_mode`.",
        "",
        "- `search_overhead_beam5`: `beam` (k=5) / the floor: `encode` once, then per step one"
        " `step` on B*K rows and one `reorder` with a fixed index (the cache copy beam search"
        " cannot avoid)"
        + (
            f"; the median over {res['overhead_rounds']} interleaved rounds of the two timed in"
            " the same round."
            if "overhead_rounds" in res
            else "."
        ),
        *searches,
        f"- `cache_speedup_50`: greedy over {s['cache_len']} tokens on the first"
        f" {s['cache_batch']} sentences, recomputing the prefix with"
        " the teacher-forced `forward` every step (which re-runs the encoder) / `step` with the"
        " KV cache.",
        "- `lab_vs_hf_*`: a random `MarianMTModel` of the same size saved with"
        " `save_pretrained` (decoder cross-attention scaled up so that outputs depend on the"
        " source, EOS output row scaled x10 so that EOS is likely at some steps), decoded by the"
        " lab through `model=hf` and by `generate` (plain SDPA"
        " attention) on the same batch. Timing: beam 5, outputs forced to"
        f" {s['hf_len']} tokens, `early_stopping=False` / `stop_rule=heuristic`, "
        "`length_penalty=1.0` / `penalty=average alpha=1`. Identity: natural stopping up to"
        f" {s['natural_max_len']} new tokens, the EOS logit biased (bias found by"
        " bisection with which greedy ends half the sentences early), best output tokens compared.",
        "- `lab_vs_ct2_*`: the lab-internal model converted to CTranslate2 weight by weight"
        " (`lab.ct2.convert`, float32), the same batch decoded by the lab (`beam` k=5,"
        f" `greedy`) and by `translate_batch` (beam_size 5, 1), all outputs {s['hf_len']} tokens"
        " (CTranslate2: `min_decoding_length` one less, as it does not count EOS;"
        " `<pad>`/`<s>` suppressed, as the lab never generates them), one `intra_threads` per"
        " torch thread, medians of interleaved repeats.",
        f"- Peak memory: beam {s['mem_beams'][0]} and beam {s['mem_beams'][1]} on the lab model,"
        f" batch {s['batch']}, {s['mem_len']} tokens, each in a fresh subprocess: resident memory"
        " high-water mark during the search minus resident memory just before it"
        f" (method `{res.get('mem_method')}`: `VmHWM` after resetting it through"
        " `/proc/self/clear_refs`, else the `ru_maxrss` delta). Torch's CPU allocator returns"
        " large blocks to the OS, so RSS sees tensors that tracemalloc would not.",
    ]


def _search_method(s: dict[str, Any], rounds: int | None = None) -> list[str]:
    """The method line of the search figures (``lab.bench.searches``); ``rounds``: the paired
    rounds each ratio is the median of (None: a ratio of medians, as benches before)."""
    how = (
        "in the same interleaved repeats"
        if rounds is None
        else f"over {rounds} interleaved rounds, each ratio the median of the two timed in a round"
    )
    return [
        f"- Search figures (`lab.bench.searches`): the first {s['search_batch']} sentences,"
        " outputs forced to the same length; `sample_overhead_n16` against the forward passes"
        " of the same rows, `stochastic_beam_vs_beam10` and `diverse_beam_vs_beam10` against"
        f" `beam` k=10 {how}; `mbr_selection_share` from MBR's own"
        " cost split (32 samples, fast_chrf, natural stopping); `exact` under a budget of"
        f" {s['exact_budget']} expansions per sentence on the first 4 sentences, one call,"
        " against `beam` k=4 there."
    ]


def render_throughput(data: dict[str, Any]) -> str:
    """``throughput.md``: one row per launcher, then what each column means."""
    m = data["machine"]
    lines = [
        "# Launcher throughput",
        "",
        f"The same sweep under each launcher: `{' '.join(data['sweep'])}` "
        "(8 decode-only runs over one cached checkpoint).",
        "",
        f"Measured {data['date']} with `{data['command']}` on {m['cpus']} CPUs "
        f"({m['platform']}, Python {m['python']}, torch {m['torch']}); load average "
        f"{m['load_average_before'][0]} before, {m['load_average_after'][0]} after.",
    ]
    if data.get("note"):
        lines += ["", f"**Note:** {data['note']}"]
    lines += [
        "",
        "| launcher | runs | wall (s) | decoding (s, summed) | in-run overhead (s/run) "
        "| wall, 1 sentence/run (s) | fixed cost (s/run) | speed-up vs basic | torch threads |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in data["rows"]:
        lines.append(
            f"| {r['launcher']} | {r['runs']} | {r['wall_s']:.1f} | {r['decode_s']:.1f} "
            f"| {r['in_run_overhead_s']:.2f} | {r['null_wall_s']:.1f} "
            f"| {r['fixed_cost_per_run_s']:.2f} | {r['speedup_vs_basic']:.2f} "
            f"| {','.join(str(t) for t in r['torch_threads'])} |"
        )
    lines += [
        "",
        f"A single `lab run` (1 sentence, cached checkpoint) takes {data['single_run_wall_s']:.1f}"
        " s from command to exit.",
        "",
        "* wall: the sweep command, start to exit.",
        "* decoding: the searches' own time (`metrics.decode_seconds`), summed over the runs.",
        "* in-run overhead: per run, `results.json` seconds minus decoding: task, tokenizer, "
        "checkpoint and W&B start inside the job.",
        "* fixed cost: the same sweep decoding one sentence per run, wall / runs: everything a "
        "run costs besides decoding (process start-up, imports, config composition, W&B init and "
        "finish, model loading), amortized over the launcher's parallelism.",
        "",
    ]
    return "\n".join(lines)


DEVICE_COLUMNS = (
    ("lab_beam5_s", "lab beam5 (s)"),
    ("lab_greedy_s", "lab greedy (s)"),
    ("lab_vs_ct2_beam5_time_ratio", "lab/ct2 beam5"),
    ("lab_vs_ct2_greedy_time_ratio", "lab/ct2 greedy"),
    ("lab_vs_hf_beam5_time_ratio", "lab/hf beam5"),
    ("lab_vs_ct2_beam5_identical", "= ct2 beam5"),
    ("lab_vs_ct2_greedy_identical", "= ct2 greedy"),
    ("lab_vs_hf_beam5_identical", "= hf beam5"),
    ("lab_vs_hf_greedy_identical", "= hf greedy"),
    ("beam5_identical_to_fp32", "= fp32 beam5"),
    ("beam5_max_logprob_gap_vs_fp32", "max gap beam5"),
)


def render_device_md(res: dict[str, Any]) -> str:
    """``device_bench.md``: the device and versions, one row per batch and precision, then the
    lab-internal figures; every number is in ``device_bench.json`` too."""
    env = res["environment"]
    name = env.get("device_name") or env["platform"]
    lines = [
        f"# lab bench --device {env['device']} ({res['mode']})",
        "",
        f"{env['date']}: {name}; torch {env['torch']}, CUDA {env.get('cuda')}, cuDNN "
        f"{env.get('cudnn')}, transformers {env['transformers']}, CTranslate2 "
        f"{env.get('ctranslate2')}, {env['torch_threads']} torch threads.",
        "",
        "| batch | precision | " + " | ".join(title for _, title in DEVICE_COLUMNS) + " |",
        "|---|---|" + "---:|" * len(DEVICE_COLUMNS),
    ]
    for row in res["rows"]:
        cells = [_cell(row.get(key)) for key, _ in DEVICE_COLUMNS]
        lines.append(f"| {row['batch']} | {row['precision']} | " + " | ".join(cells) + " |")
    ex = res["exact"]
    lines += [
        "",
        f"- `search_overhead_beam5` {res['search_overhead_beam5']:.3f}; `sample_n16` "
        f"{res['sample_n16_s']:.4f} s ({res['sample_n16_overhead']:.3f} x its forward passes);"
        f" `exact` on {ex['sentences']} sentences, budget {ex['budget']}: {ex['seconds']:.3f} s,"
        f" {ex['expanded']} nodes, {ex['proved_share']:.2f} proved.",
        "- Ratios are lab / other (below 1: the lab is faster); `=` columns are shares of"
        " sentences with identical output tokens; all outputs are forced to the same length.",
        "",
    ]
    lines += [f"- {n}" for n in res.get("notes", [])]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    """A table cell: n/a for a figure not measured, else 3 decimals (4 below 0.1)."""
    if value is None:
        return "n/a"
    return f"{value:.4f}" if abs(value) < 0.1 else f"{value:.3f}"
