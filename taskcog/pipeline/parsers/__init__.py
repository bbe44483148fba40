"""Parsers: pure functions from a source's bytes to events. No I/O happens here."""

from .deadside import KillColumns, format_kill_line, parse_kills, parse_kills_columns, to_events

__all__ = [
    "KillColumns",
    "format_kill_line",
    "parse_kills",
    "parse_kills_columns",
    "to_events",
]
