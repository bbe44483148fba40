"""Sinks: where events go once parsed (a Discord channel for the killfeed)."""

from .discord import ChannelUnavailable, KillfeedSink, ids_in_message, kill_embed

__all__ = ["ChannelUnavailable", "KillfeedSink", "ids_in_message", "kill_embed"]
