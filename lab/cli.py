"""The ``lab`` command: ``run`` (Hydra), ``list``, ``report``, ``analyze``, ``best``, ``bench``,
``throughput``, ``toolkits``, ``ct2``.

Each command imports its module when it runs, so that ``lab --help`` and ``lab list`` stay fast.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings

from lab.console import check_out, one_line_warnings, pivot_keys
from lab.errors import LabError

USAGE = """usage: lab <command> [args]

commands:
  run [OVERRIDES]      run one experiment; -m/--multirun for a sweep (every Hydra flag works)
  list [KIND]          registered plugins with a one-line description
  report [RUN_DIRS]    tables (md/csv/tex) and a plot from run directories
  analyze RUNS --exact EXACT_RUN  search errors vs model errors against an exact-search run
  best SWEEP_DIR       the best run of a sweep (e.g. an Optuna search) and the top trials
  bench [--quick]      speed of search against the model's own forward passes
  throughput [--out D] wall time of one decode sweep under each Hydra launcher
  toolkits RUN_DIRS    one model under each toolkit's beam preset: BLEU, lengths, differing outputs
  ct2 RUN_DIR          the run's beam search again, in the lab and in CTranslate2: identity, time
"""


def cmd_list(argv: list[str]) -> None:
    import lab  # noqa: F401
    import lab.metrics  # noqa: F401
    import lab.tasks  # noqa: F401
    from lab.registry import ALL, unknown_name_message

    p = argparse.ArgumentParser(prog="lab list", description="List registered plugins.")
    p.add_argument("kind", nargs="?", help=f"one of: {', '.join(ALL)}")
    args = p.parse_args(argv)
    if args.kind and args.kind not in ALL:
        raise LabError(unknown_name_message("plugin kind", args.kind, list(ALL)))
    for kind, reg in ALL.items():
        if args.kind and kind != args.kind:
            continue
        print(f"{kind}: {reg.description}")
        for e in reg.entries():
            print(f"  {e.name:<16} {e.description}")


def _report_parser() -> argparse.ArgumentParser:
    """The options of ``lab report``: a report of runs, or with ``--export`` one run's texts."""
    p = argparse.ArgumentParser(prog="lab report", description="Tables and plots from runs.")
    p.add_argument("paths", nargs="*", help="run or sweep directories (default: multirun)")
    p.add_argument(
        "--out",
        default=None,
        help="output directory (default: <first path>/report; with --export: RUN_DIR/export)",
    )
    p.add_argument("--metric", default="bleu")
    p.add_argument("--rows", default=None, help="comma-separated config keys (default: model)")
    p.add_argument("--cols", default=None, help="comma-separated config keys (default: search)")
    p.add_argument("--x", default=None, help="numeric key for the plot's x axis")
    p.add_argument("--hue", default=None, help="comma-separated keys: one line per value")
    p.add_argument("--name", default="report", help="file name prefix")
    p.add_argument("--mean-row", action="store_true", help="end the pivot with column means")
    p.add_argument(
        "--baseline",
        default=None,
        metavar="KEY=VALUE",
        help=(
            "paired bootstrap tests of BLEU/chrF (QA runs: EM/F1, accuracy) against this run "
            "of each group (search=beam)"
        ),
    )
    p.add_argument(
        "--export",
        default=None,
        metavar="RUN_DIR",
        help="instead of a report: write RUN_DIR's hyp.txt and ref.txt for the sacrebleu CLI",
    )
    p.add_argument(
        "--html",
        action="store_true",
        help="instead of the files: one self-contained page, <out>/<name>.html, with the pivots "
        "and plots of each --metric (comma-separated), the runs and a two-run drill-down",
    )
    p.add_argument(
        "--max-sentences",
        type=int,
        default=1000,
        help="with --html: sentences per run in the drill-down (the first ones; 0: none)",
    )
    return p


def cmd_report(argv: list[str]) -> None:
    from pathlib import Path

    from lab.report import ReportNote, SkippedRunWarning, export_run, report

    a = _report_parser().parse_args(argv)
    if a.export is not None and a.paths:
        raise LabError("--export takes one run directory; drop the other paths.")
    if a.html and (a.export is not None or not a.paths):
        raise LabError(
            "--html needs run or sweep directories (and no --export): lab report "
            "RUN_DIRS... --html [--out DIR]."
        )

    def split(s: str) -> tuple[str, ...]:
        return tuple(x for x in s.split(",") if x)

    a.rows, a.cols = pivot_keys(a.rows, a.cols)
    check_out(a.out)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedRunWarning)
        warnings.simplefilter("always", ReportNote)
        if a.export is not None:
            paths = export_run(Path(a.export), a.out)
        elif a.html:
            from lab.report.html import dashboard

            page = dashboard(
                [Path(x) for x in a.paths],
                a.out,
                metrics=split(a.metric),
                max_sentences=a.max_sentences,
                rows=split(a.rows),
                cols=split(a.cols),
                x=a.x,
                hue=split(a.hue) if a.hue is not None else None,
                name=a.name,
                mean_row=a.mean_row,
                baseline=a.baseline,
            )
            paths = [page]
        else:
            paths = report(
                [Path(x) for x in a.paths or ["multirun"]],
                a.out,
                metric=a.metric,
                rows=split(a.rows),
                cols=split(a.cols),
                x=a.x,
                hue=split(a.hue) if a.hue is not None else None,
                name=a.name,
                mean_row=a.mean_row,
                baseline=a.baseline,
            )
    for w in caught:
        kind = "note" if issubclass(w.category, ReportNote) else "warning"
        print(f"{kind}: {w.message}", file=sys.stderr)
    for path in paths:
        print(path)


def cmd_analyze(argv: list[str]) -> None:
    from lab.analyze import cmd_analyze as analyze

    analyze(argv)


def cmd_best(argv: list[str]) -> None:
    from lab.best import cmd_best as best

    best(argv)


def cmd_bench(argv: list[str]) -> None:
    from lab.bench import cmd_bench as bench

    bench(argv)


def cmd_toolkits(argv: list[str]) -> None:
    from lab.toolkits import cmd_toolkits as toolkits

    toolkits(argv)


def cmd_ct2(argv: list[str]) -> None:
    from lab.ct2.parity import cmd_ct2 as ct2

    ct2(argv)


def cmd_throughput(argv: list[str]) -> None:
    from lab.bench.throughput import cmd_throughput as throughput

    throughput(argv)


def cmd_run(argv: list[str]) -> None:
    from lab.app import CONF_DIR
    from lab.app import main as hydra_main
    from lab.overrides import check_overrides

    if not (CONF_DIR / "config.yaml").is_file():
        raise LabError(
            f"the lab's configs are missing (no {CONF_DIR / 'config.yaml'}); reinstall decoding-lab"
        )
    argv = check_overrides(bare_run(argv), CONF_DIR)
    if "COMP_LINE" in os.environ and any(a in ("-sc", "--shell-completion") for a in argv):
        os.environ["COMP_LINE"] = completion_line(os.environ["COMP_LINE"])

    sys.argv = ["lab", *argv]
    hydra_main()


BARE_RUN = "+experiment=quickstart"


def bare_run(argv: list[str]) -> list[str]:
    """A bare ``lab run`` runs the quickstart experiment (a small Transformer, minutes on a
    laptop) and says so: the root config's full-size defaults are a starting point for
    overrides, hours of training on their own."""
    if argv:
        return argv
    print(f"lab run with no overrides: running the quickstart ({BARE_RUN})", flush=True)
    return [BARE_RUN]


def completion_line(line: str) -> str:
    """Hydra's shell completion reads the command line after the program name: ``lab run
    search=b`` is asked as ``lab search=b``. (The installed script calls ``lab -sc query=...``,
    which ``main`` hands to ``run``.)"""
    return re.sub(r"^(\s*\S+\s+)run(\s|$)", r"\1", line, count=1)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return
    cmd, rest = argv[0], argv[1:]
    if cmd in ("-sc", "--shell-completion"):  # the installed completion script asks `lab -sc`
        cmd, rest = "run", argv
    commands = {
        "run": cmd_run,
        "list": cmd_list,
        "report": cmd_report,
        "analyze": cmd_analyze,
        "best": cmd_best,
        "bench": cmd_bench,
        "throughput": cmd_throughput,
        "toolkits": cmd_toolkits,
        "ct2": cmd_ct2,
    }
    try:
        if cmd not in commands:
            from lab.registry import unknown_name_message

            raise LabError(unknown_name_message("command", cmd, sorted(commands)))
        with one_line_warnings():
            commands[cmd](rest)
    except LabError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
