"""The Red layer: the cog, its commands, its built-in tasks and its Config-backed stores.

Everything that imports ``redbot`` or ``discord`` lives here; it builds on ``taskcog.pipeline``
and ``taskcog.engine`` and nothing below imports it back.
"""
