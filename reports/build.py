"""Regenerate every table, plot and page of reports/ from the committed per-run data.

    python reports/build.py              # rewrite the derived files in place
    python reports/build.py --out DIR    # write them into DIR instead
    python reports/build.py --check      # rebuild into a temporary directory and list drift

What is data and what is derived: ``lab.rebuild``. Run from the project root.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from lab.rebuild import drift, rebuild

ROOT = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=None, help="output directory (default: reports/)"
    )
    parser.add_argument(
        "--check", action="store_true", help="list files that differ from a rebuild"
    )
    args = parser.parse_args()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            problems = drift(ROOT, Path(tmp))
        print("\n".join(problems) or "reports/ matches its rebuild")
        sys.exit(1 if problems else 0)
    for path in rebuild(ROOT, args.out or ROOT):
        print(path)


if __name__ == "__main__":
    main()
