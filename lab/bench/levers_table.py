"""``reports/bench/levers/levers.md``: the speed levers table, one row per lever, from the JSON
that measured it (``reports/bench/levers.py`` for the code levers, ``lab.bench.int8`` for int8
on a trained model). A speedup is time with the lever off / time with everything on (above 1:
the lever pays), with its 95% interval; "identical" says whether the outputs kept every
token.
"""

from __future__ import annotations

from typing import Any

from lab.bench.render import cpu_name


def _yes(value: bool) -> str:
    return "yes" if value else "**no**"


def _ratio(r: dict[str, float]) -> str:
    """A per-round ratio: median [95% bootstrap interval]."""
    return f"{r['median']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"


def _row(name: str, what: str, shipped: str, r: dict[str, Any], kept: bool, cmd: str) -> str:
    return (
        f"| {name} | {what} | {shipped} | {_ratio(r['greedy'])} | {_ratio(r['beam5'])} |"
        f" {_yes(kept)} | `{cmd}` |"
    )


def lever_rows(levers: dict[str, Any]) -> list[str]:
    """The noise control, one row per shipped lever, everything off, each lever tried and not
    shipped, then ``torch.compile``."""
    same, cmd = levers["identical_to_all_on"], levers["command"]

    def kept(config: str) -> bool:
        return same[f"{config}/greedy"] and same[f"{config}/beam5"]

    noise = "everything on, timed twice: the machine's noise"
    rows = [_row("(none)", noise, "", levers["noise"], True, cmd)]
    for name, lever in sorted(levers["levers"].items()):
        rows.append(_row(f"`{name}`", lever["what"], "yes", lever, kept(f"no_{name}"), cmd))
    off = "every shipped lever off at once"
    rows.append(
        _row("all of the above", off, "yes", levers["all_off_vs_all_on"], kept("all_off"), cmd)
    )
    for name, lever in sorted(levers["tried"].items()):
        rows.append(_row(f"`{name}`", lever["what"], "no", lever, kept(f"with_{name}"), cmd))
    if "compile" in levers:
        c = levers["compile"]
        what = f"the step compiled (`dynamic=True`); first call {c['first_call_s']:.0f} s"
        rows.append(
            f"| `torch.compile` | {what} | no | {_ratio(c['greedy'])} | |"
            f" {_yes(c['identical'])} | `{cmd}` |"
        )
    return rows


def int8_row(label: str, res: dict[str, Any]) -> str:
    """One row of a ``lab.bench.int8`` JSON: int8 against float32 on a trained model."""
    bleu = res["bleu"]
    what = (
        f"`model.quantize=int8` on {label}: {res['n']} sentences, batch {res['batch_size']};"
        f" BLEU {bleu['fp32']:.2f} (fp32) / {bleu['int8']:.2f} (int8); identical outputs"
        f" {100 * res['identical']:.1f}%; medians of {res['repeats']} ABBA repeats"
        f" ({res['median_s']['fp32']:.1f} s / {res['median_s']['int8']:.1f} s)"
    )
    speedup = f"{res['int8_speedup']:.3f}"
    cmd = f"python -m lab.bench.int8 {res['run']} --batch-size {res['batch_size']}"
    cmd += f" --repeats {res['repeats']}"
    return f"| `int8` | {what} | option | | {speedup} | **no** | `{cmd}` |"


def batching_row(label: str, res: dict[str, Any]) -> str:
    """One row of a ``lab.bench.batching`` JSON: length-sorted batches against file order."""
    what = (
        f"batches sorted by source length (`lab.data.sentence_batches`) against the split's own"
        f" order, on {label}: {res['n']} sentences, batch {res['batch_size']}; medians of"
        f" {res['repeats']} ABBA repeats ({res['median_s']['file_order']:.1f} s /"
        f" {res['median_s']['sorted']:.1f} s)"
    )
    cmd = f"python -m lab.bench.batching {res['run']} --batch-size {res['batch_size']}"
    cmd += f" --repeats {res['repeats']}"
    same, speedup = _yes(res["identical"] == 1.0), f"{res['sorting_speedup']:.3f}"
    return f"| `sorted_batches` | {what} | yes | | {speedup} | {same} | `{cmd}` |"


def exact_rows(compares: dict[str, dict[str, Any]]) -> list[str]:
    """The exact-search table: one ``lab.bench.exact_compare`` JSON a row, whole runs."""
    if not compares:
        return []
    rows = [
        "",
        "Exact search, whole runs (`lab.bench.exact_compare`: the run before the lever against"
        " the run with it, each one `lab run` of the split; one run each, so no interval):",
        "",
        "| lever | what | speedup | same proved set | proved outputs identical | command |",
        "|---|---|---|---|---|---|",
    ]
    for label, res in sorted(compares.items()):
        sec, proved, n = res["decode_seconds"], res["proved"], res["n"]
        what = (
            f"{n} sentences: {sec['before']:.0f} s -> {sec['after']:.0f} s; proved"
            f" {proved['before']} -> {proved['after']}; all outputs identical"
            f" {100 * res['identical']:.1f}%"
        )
        rows.append(
            f"| {label} | {what} | {res['speedup']:.3f} | {_yes(res['same_proved_set'])} |"
            f" {100 * res['identical_proved']:.1f}% | `{res['command']}` |"
        )
    return rows


def render_levers(
    levers: dict[str, Any],
    int8: dict[str, dict[str, Any]],
    batching: dict[str, dict[str, Any]] | None = None,
    exact: dict[str, dict[str, Any]] | None = None,
) -> str:
    """The page: the environment, the table, the raw medians."""
    env = levers["environment"]
    head = [
        "# Speed levers, one by one",
        "",
        f"{env['date']}: torch {env['torch']}, {env['torch_threads']} torch thread,"
        f" {env['cpu_count']} CPUs{cpu_name(env)}, {env['platform']}.",
        "",
        "Speedup of a shipped lever: time with it switched off (all else on) / time with every"
        " lever on; of a lever tried and not shipped: time with every shipped lever on / time"
        " with it switched on too. Above 1: the lever pays. Each is the median over"
        f" {levers['repeats']} interleaved rounds of the round's ratio [95% bootstrap interval]:"
        " an interval holding 1 shows no effect. The first row is the noise of the machine."
        " Greedy and beam 5 on the `lab bench` full-mode model (random lab Transformer,"
        " d_model 256, 3+3 layers, vocabulary 8000, batch of 32 unsorted sentences), outputs"
        " forced to 30 tokens. The sorted-batches and int8 rows decode a trained model's whole test"
        " split (beam column: that run's search; medians of ABBA repeats). Raw JSON beside this"
        " page.",
        "",
        "| lever | what | shipped | greedy speedup | beam 5 speedup | token-identical | command |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = lever_rows(levers)
    rows += [batching_row(label, res) for label, res in sorted((batching or {}).items())]
    rows += [int8_row(label, res) for label, res in sorted(int8.items())]
    rows += exact_rows(exact or {})
    times = ", ".join(f"`{k}` {v:.4f}" for k, v in sorted(levers["times_s"].items()))
    return "\n".join(head + rows + ["", f"Raw medians (s): {times}", ""])
