"""What the ``lab`` commands share on the console: Python warnings as one line each, the
report's default pivot keys, and the check of an ``--out`` directory."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from lab.errors import LabError
from lab.io import unwritable


@contextmanager
def one_line_warnings() -> Iterator[None]:
    """Python warnings (torch's, SentencePiece's, ...) as one ``warning:`` line each, not the
    file, line and source excerpt that would stand before a one-line error."""

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001, ANN202
        text = " ".join(str(message).split())
        print(f"warning: {text} ({category.__name__})", file=file or sys.stderr, flush=True)

    previous = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def pivot_keys(rows: str | None, cols: str | None) -> tuple[str, str]:
    """``--rows``/``--cols`` with their defaults (model, search), a default leaving out a key
    that the other option names: ``--rows search`` alone is a pivot of one column."""
    given_rows = set((rows or "").split(","))
    given_cols = set((cols or "").split(","))
    if rows is None:
        rows = "" if "model" in given_cols else "model"
    if cols is None:
        cols = "" if "search" in given_rows else "search"
    return rows, cols


def check_out(out: str | None) -> None:
    """``--out`` (when given) must be a directory that can take files; it may not exist yet."""
    why = None if out is None else unwritable(out)
    if why is not None:
        raise LabError(
            f"--out {out} cannot take the files ({why}); pass --out <a writable directory>."
        )
