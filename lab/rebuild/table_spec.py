"""One ``lab report`` table of ``reports/``: which summaries it reads and what it writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TableSpec:
    """One ``lab report`` call: summaries under ``runs`` (relative to reports/; one directory
    or several), files into ``out``; ``options`` are ``lab.report.ReportSpec``'s fields."""

    runs: str | tuple[str, ...]
    out: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.options["name"])

    @property
    def dirs(self) -> tuple[str, ...]:
        """The directories whose summaries the table reads."""
        return (self.runs,) if isinstance(self.runs, str) else self.runs
