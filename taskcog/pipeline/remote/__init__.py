"""Work that may run away from the bot: the ingest step and the history-import slice.

``ingest`` and ``imports`` are what a worker runs (no Red, no Discord); ``driver`` is the
bot's side, which keeps cursors, the ledger and posting; ``codec`` turns events, columns and
errors into JSON-able values for the broker.
"""
