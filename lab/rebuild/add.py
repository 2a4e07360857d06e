"""Add finished runs to a section of ``reports/``: the small files a rebuild reads of them.

    python -m lab.rebuild.add RUN_DIR [RUN_DIR ...] --to reports/<section>/runs [--stats]

copies each run's ``results.json`` to ``<to>/<the run directory's name>/`` and, with
``--stats``, writes its ``sentence_stats.json.gz`` (``lab.report.sentence_stats``: what the
paired tests of a ``--baseline`` table need, without the predictions' text). Then
``python reports/build.py`` regenerates the tables. A run that did not complete is refused.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from lab.errors import LabError
from lab.report.runs import read_completed
from lab.report.sentence_stats import write_stats
from lab.results import RESULTS


def add_run(run_dir: Path, to: Path, stats: bool) -> Path:
    """Copy ``run_dir``'s summary (and with ``stats`` its statistics) to ``to/<name>``."""
    if not (run_dir / RESULTS).is_file() or read_completed(run_dir) is None:
        raise LabError(f"{run_dir} holds no completed run ({RESULTS}); finish it with `lab run`.")
    dest = to / run_dir.resolve().name
    dest.mkdir(parents=True, exist_ok=True)
    if stats:
        write_stats(run_dir, dest)
    shutil.copyfile(run_dir / RESULTS, dest / RESULTS)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.rebuild.add", description=__doc__)
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--to", required=True, type=Path, help="reports/<section>/runs")
    parser.add_argument("--stats", action="store_true", help="write sentence_stats.json.gz")
    args = parser.parse_args(argv)
    try:
        for run in args.runs:
            print(add_run(run, args.to, args.stats))
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
