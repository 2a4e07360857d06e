"""Render report tables as text: cell formatting, Markdown and LaTeX (booktabs).

Numbers are formatted here, not by pandas, so that the Markdown and LaTeX files show the same
cells, rounded for reading: two decimals for values, none for the columns a table names as counts
(``count_columns``: steps, lengths, ``n``), keys without ``.0`` and to six significant digits
(``0.6``, not ``0.6000000000000001``), ``-`` for missing ones. CSV files keep full precision.
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Real
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
    "±": r"$\pm$",
}


def fmt_key(value: Any) -> str:
    """A key value as text: integral floats without '.0', others to six significant digits,
    missing as '-'."""
    if isinstance(value, tuple):
        return " / ".join(fmt_key(v) for v in value)
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return MISSING
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.6g}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def fmt_value(value: Any, digits: int = 2) -> str:
    """A metric value as text with ``digits`` decimals; non-numbers as keys."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return fmt_key(value)
    if pd.isna(value):
        return MISSING
    return f"{value:.{digits}f}"


def is_count(values: Iterable[Any]) -> bool:
    """True when every present value is a whole number (and one is present): a count, such as
    ``cost_steps`` or sacreBLEU's ``bleu_sys_len`` (a float that is always whole)."""
    present = [v for v in values if _is_number(v) and not pd.isna(v)]
    return bool(present) and all(float(v).is_integer() for v in present)


def count_columns(frame: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    """Those of ``columns`` that hold counts (``is_count``), to be shown without decimals."""
    return [c for c in columns if c in frame.columns and is_count(frame[c])]


def fmt_cell(mean: Any, std: Any, n: Any, digits: int = 2) -> str:
    """A pooled cell: ``mean ± std (n=N)`` over several runs, the bare value over one;
    ``NaN`` where runs hold NaN (``n`` counts them), ``-`` where there is no run."""
    if pd.isna(mean):
        return MISSING if pd.isna(n) or int(n) == 0 else "NaN"
    if pd.isna(n) or int(n) <= 1 or pd.isna(std):
        return fmt_value(mean, digits)
    return f"{fmt_value(mean, digits)} ± {fmt_value(std, digits)} (n={int(n)})"


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


class Table:
    """A table ready to write: what Markdown and LaTeX show (``frame``), what CSV keeps
    (``raw``, by default ``frame``), and which columns hold values rather than keys.

    Value columns get two decimals, ``counts`` (value columns too) none; text in a value
    column (a cell already formatted, such as ``36.20 ± 0.30 (n=3)``) is shown as it is. The
    caption may span several lines.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        value_columns: Iterable[str],
        caption: str,
        raw: pd.DataFrame | None = None,
        counts: Iterable[str] = (),
    ) -> None:
        self.frame = frame
        self.counts = set(counts)
        self.values = set(value_columns) | self.counts
        self.caption = caption
        self.raw = frame if raw is None else raw

    def cells(self) -> list[list[str]]:
        """Every row as formatted text: value columns as numbers, the others as keys."""
        digits = {c: 0 if c in self.counts else 2 for c in self.frame.columns if c in self.values}
        return [
            [
                fmt_value(v, digits[c]) if c in digits else fmt_key(v)
                for c, v in zip(self.frame.columns, row, strict=True)
            ]
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
        return self.raw.to_csv(index=False)

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
        caption = self.caption.splitlines() or [""]
        caption[-1] += " (needs \\usepackage{booktabs})"
        lines = [
            *(f"% {text}" for text in caption),
            f"\\begin{{tabular}}{{{spec}}}",
            "\\toprule",
            line(latex_escape(str(c)) for c in self.frame.columns) + r" \\",
            "\\midrule",
            *(line(latex_escape(c) for c in row) + r" \\" for row in self.cells()),
            "\\bottomrule",
            "\\end{tabular}",
        ]
        return "\n".join(lines) + "\n"
