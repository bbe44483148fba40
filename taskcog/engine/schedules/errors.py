"""The one error every schedule, duration and spec problem raises.

Its own module so that ``zones`` and ``durations`` can raise it below the ``Schedule`` interface.
"""

from __future__ import annotations

SHOWN_LIMIT = 100


class ScheduleError(ValueError):
    """A schedule, duration or spec a user typed is not valid; the message is one line."""


def shown(text: str, limit: int = SHOWN_LIMIT) -> str:
    """User text as an error message repeats it: one line, at most ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
