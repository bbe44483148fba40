"""taskcog's data pipeline: sources give bytes, parsers turn them into events, sinks use them.

Nothing here imports Red (the cog adapts the pipeline to Red); only the Discord sink imports
discord.py. Parsers are pure functions: bytes in, events out. I/O lives in sources and sinks.
"""

from .events import KillEvent, ParseResult

__all__ = ["KillEvent", "ParseResult"]
