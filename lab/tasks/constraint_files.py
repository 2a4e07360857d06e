"""Write constraint side files (``task.constraints_path``) from a reference file.

    python -m lab.tasks.constraint_files terms REF_FILE OUT [--seed 0]
    python -m lab.tasks.constraint_files prefix REF_FILE OUT --k 2

``terms``: the terminology setting of Post & Vilar (2018), who constrain each sentence with
phrases drawn from its reference: per sentence one or two distinct words of the reference
(letters only, at least ``MIN_LETTERS`` long, so that articles and punctuation are not drawn),
chosen at random with ``--seed``; ``{}`` for a sentence without such a word. ``prefix``: the
first ``k`` whitespace tokens of the reference as a forced prefix (interactive translation:
what a translator has typed). ``REF_FILE`` may be gzipped; a relative path is looked up under
``LAB_DATA_DIR`` first, then the working directory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

from lab.errors import LabError
from lab.io import atomic_write_text
from lab.tasks.base import read_lines

MIN_LETTERS = 4


def term_constraints(refs: list[str], seed: int) -> list[dict[str, list[str]]]:
    """One or two reference words per sentence as ``include`` constraints (seeded)."""
    rng = random.Random(seed)
    out: list[dict[str, list[str]]] = []
    for ref in refs:
        words = list(dict.fromkeys(w for w in ref.split() if w.isalpha() and len(w) >= MIN_LETTERS))
        count = min(len(words), rng.choice((1, 2)))
        picked = sorted(rng.sample(range(len(words)), count))
        out.append({"include": [words[i] for i in picked]} if picked else {})
    return out


def prefix_constraints(refs: list[str], k: int) -> list[dict[str, str]]:
    """The first ``k`` tokens of each reference as its forced ``prefix``."""
    if k < 1:
        raise LabError(f"--k must be 1 or more, got {k}")
    return [{"prefix": " ".join(ref.split()[:k])} if ref.split() else {} for ref in refs]


def _reference_path(value: str) -> Path:
    path = Path(value).expanduser()
    data = Path(os.environ.get("LAB_DATA_DIR", "data"))
    for candidate in [path] if path.is_absolute() else [data / path, Path.cwd() / path]:
        if candidate.is_file():
            return candidate
    raise LabError(f"reference file not found: {value} (looked in {data} and the working dir)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.tasks.constraint_files")
    parser.add_argument("kind", choices=("terms", "prefix"))
    parser.add_argument("refs", help="reference file, one sentence per line (gzip allowed)")
    parser.add_argument("out", type=Path, help="the constraints file to write (JSON lines)")
    parser.add_argument("--seed", type=int, default=0, help="terms: the draw's seed")
    parser.add_argument("--k", type=int, default=2, help="prefix: reference tokens forced")
    args = parser.parse_args(argv)
    try:
        refs = read_lines(_reference_path(args.refs))
        rows = (
            term_constraints(refs, args.seed)
            if args.kind == "terms"
            else prefix_constraints(refs, args.k)
        )
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"{args.out}: {len(rows)} lines, {sum(bool(r) for r in rows)} with a constraint")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
