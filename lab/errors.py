"""User-facing errors: one clear line that names the fix, never a traceback."""


class LabError(Exception):
    """An error caused by the user's input or environment.

    The CLI prints ``error: <message>`` and exits with status 2; the message must say what to
    do about it (the valid choices, the missing file and how to get it).
    """


class TooLongError(LabError, ValueError):
    """An input longer than the model's positions: the fix is ``model.max_positions``."""
