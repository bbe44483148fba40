"""``[p]killfeed``: what players ask of the game servers (stats, boards, who is online).

The group lives here; each feature adds its subcommands from its own module with
``@KillfeedCommands.killfeed_group.command(...)`` (as ``[p]taskset alerts`` does), so the
stats commands and the server-log commands stay in their own rooms.
"""

from __future__ import annotations

from redbot.core import commands

from .shared import CommandHelpers


class KillfeedCommands(CommandHelpers):
    """The ``[p]killfeed`` group, for the mixins that add its subcommands."""

    @commands.hybrid_group(name="killfeed")
    @commands.guild_only()
    async def killfeed_group(self, ctx: commands.Context) -> None:
        """Player stats, leaderboards and who is online, from this server's game servers."""
