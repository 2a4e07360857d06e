"""Notes: what a reader of a report must know about how it was made, said once, in one line.

A note is a warning of its own category, so that library callers can catch or silence it like
any warning, and ``lab report`` prints it as ``note: ...`` (duplicate runs that were dropped,
references that an export had to pad).
"""

from __future__ import annotations

import warnings


class ReportNote(UserWarning):
    """Something the report did to its input that its reader should know about."""


def note(message: str) -> None:
    """Issue ``message`` as a ``ReportNote`` (pointing at the caller of our caller)."""
    warnings.warn(message, ReportNote, stacklevel=3)
