"""Render report tables as text: cell formatting, Markdown and LaTeX (booktabs).

Numbers are formatted here, not by pandas, so that the Markdown and LaTeX files show the same
cells (two decimals for values, integral keys without ``.0``, ``-`` for missing ones).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
from tabulate import tabulate

MISSING = "-"

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def fmt_key(value: Any) -> str:
    """A key value as text: integral floats without '.0', missing as '-'."""
    if isinstance(value, tuple):
        return " / ".join(fmt_key(v) for v in value)
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return MISSING
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def fmt_value(value: Any, digits: int = 2) -> str:
    """A metric value as text with ``digits`` decimals; non-numbers as keys."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return fmt_key(value)
    if pd.isna(value):
        return MISSING
    return f"{value:.{digits}f}"


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


class Table:
    """A table ready to write: headers, raw rows for CSV, and which columns hold values."""

    def __init__(self, frame: pd.DataFrame, value_columns: Iterable[str], caption: str) -> None:
        self.frame = frame
        self.values = set(value_columns)
        self.caption = caption

    def cells(self) -> list[list[str]]:
        """Every row as formatted text: value columns as numbers, the others as keys."""
        fmts = [fmt_value if c in self.values else fmt_key for c in self.frame.columns]
        return [
            [f(v) for f, v in zip(fmts, row, strict=True)]
            for row in self.frame.itertuples(index=False)
        ]

    def align(self) -> list[str]:
        """``right`` for numeric columns, ``left`` for the others."""
        return ["right" if self._is_number(c) else "left" for c in self.frame.columns]

    def _is_number(self, column: str) -> bool:
        series = self.frame[column]
        return column in self.values or (
            pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        )

    def csv(self) -> str:
        """The raw (unformatted) frame as CSV text, without the index."""
        return self.frame.to_csv(index=False)

    def markdown(self) -> str:
        """The caption, then a pipe table."""
        body = tabulate(
            self.cells(),
            headers=list(self.frame.columns),
            tablefmt="pipe",
            colalign=self.align(),
            disable_numparse=True,
        )
        return f"{self.caption}\n\n{body}\n"

    def latex(self) -> str:
        """A booktabs ``tabular`` with the caption as a comment."""
        spec = "".join("r" if a == "right" else "l" for a in self.align())
        line = " & ".join
        lines = [
            f"% {self.caption} (needs \\usepackage{{booktabs}})",
            f"\\begin{{tabular}}{{{spec}}}",
            "\\toprule",
            line(latex_escape(str(c)) for c in self.frame.columns) + r" \\",
            "\\midrule",
            *(line(latex_escape(c) for c in row) + r" \\" for row in self.cells()),
            "\\bottomrule",
            "\\end{tabular}",
        ]
        return "\n".join(lines) + "\n"
