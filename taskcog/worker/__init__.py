"""``python -m taskcog.worker``: runs the killfeed's ingest steps and history-import slices
sent by a bot on the ``taskiq`` backend. Imports no Red and no Discord."""
