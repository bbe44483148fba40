"""The one error every schedule, duration and spec problem raises.

Its own module so that ``zones`` and ``durations`` can raise it below the ``Schedule`` interface.
"""

from __future__ import annotations


class ScheduleError(ValueError):
    """A schedule, duration or spec a user typed is not valid; the message is one line."""
