"""``[p]taskset serverlog`` (what the server-log feed posts, the voice channel, max players)
and ``[p]killfeed online`` (who is online, for how long, and the queue)."""

from __future__ import annotations

from typing import Any

import discord
from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import pagify, success

from ...pipeline.online import parse_selection
from .. import formatting as fmt
from ..live import live_store, online_lines, voice_name
from ..stores.servers import ServerError
from ..tasks.killfeed import scope_of
from ..tasks.serverlog import LOG_SCOPE, STATE_KEY
from .killfeed import KillfeedCommands
from .shared import CommandHelpers, one_line_errors
from .taskset import TasksetCommands

_ = Translator("TaskCog", __file__)
MAX_PLAYERS_LIMIT = 1000


class ServerlogCommands(CommandHelpers):
    """The ``[p]taskset serverlog`` group and ``[p]killfeed online``."""

    async def _task_options(self, guild_id: int, task: str) -> dict[str, Any]:
        spec = self.registry.get(task)
        return dict(self.settings.effective(spec, guild_id).options)

    async def _save_options(self, guild_id: int, task: str, **changes: Any) -> None:
        """Merge ``changes`` into a task's saved options; the next tick uses them."""
        spec = self.registry.get(task)
        saved = dict(self.settings.raw(spec, guild_id).get("options") or {})
        saved.update(changes)
        await self.settings.update_task(spec, guild_id, options=saved)
        await self._apply(spec, guild_id)

    @TasksetCommands.taskset_group.group(name="serverlog", with_app_command=False)
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def taskset_serverlog(self, ctx: commands.Context) -> None:
        """What the server-log feed posts. Its channel: `[p]taskset channel serverlog #log`."""

    @one_line_errors
    @taskset_serverlog.command(name="events", with_app_command=False)
    async def serverlog_events(self, ctx: commands.Context, *, events: str) -> None:
        """Choose what is posted: joins, leaves, missions, airdrops, helicrash, trader, convoy,
        kicks. Missions and events are posted when they go active; add `all` for every state.

        Examples:
        - `[p]taskset serverlog events joins,leaves`
        - `[p]taskset serverlog events joins,leaves,missions,kicks,all`
        """
        try:
            selection = parse_selection(events)
        except ValueError as exc:
            await self._refuse(ctx, fmt.error_text(str(exc)))
            return
        kinds = sorted(selection.kinds)
        await self._save_options(
            ctx.guild.id, "serverlog", events=kinds, all_states=selection.all_states
        )
        states = _("every state change") if selection.all_states else _("going active")
        await self._say(
            ctx,
            success(
                _("The server log now posts: {kinds} (missions and events: {states}).").format(
                    kinds=", ".join(kinds), states=states
                )
            ),
        )

    @one_line_errors
    @taskset_serverlog.command(name="voice", with_app_command=False)
    async def serverlog_voice(
        self, ctx: commands.Context, channel: str, server: str | None = None
    ) -> None:
        """Rename a voice channel to a game server's count, e.g. `🟢 EU1 23/50 (2 queued)`.

        At most once every 5 minutes. `off` stops it. Name the game server when there are
        several.

        Examples:
        - `[p]taskset serverlog voice #eu1-status`
        - `[p]taskset serverlog voice #eu1-status eu1`
        - `[p]taskset serverlog voice off eu1`
        """
        name = await self._one_server(ctx, server)
        if name is None:
            return
        voice = dict((await self._task_options(ctx.guild.id, "serverlog")).get("voice") or {})
        if channel.strip().lower() == "off":
            voice.pop(name, None)
            await self._save_options(ctx.guild.id, "serverlog", voice=voice)
            await self._say(
                ctx, success(_("No voice channel shows `{server}` now.").format(server=name))
            )
            return
        try:
            target = await commands.VoiceChannelConverter().convert(ctx, channel.strip())
        except commands.BadArgument:
            await self._refuse(ctx, _("I cannot find that voice channel in this server."))
            return
        perms = target.permissions_for(ctx.guild.me)
        if not (perms.view_channel and perms.manage_channels):
            await self._refuse(
                ctx,
                _("I need View Channel and Manage Channels in {channel} to rename it.").format(
                    channel=target.mention
                ),
            )
            return
        voice[name] = target.id
        await self._save_options(ctx.guild.id, "serverlog", voice=voice)
        await self._say(
            ctx,
            success(
                _(
                    "{channel} will show `{server}`'s player count (renamed at most every 5 "
                    "minutes, while the serverlog task runs)."
                ).format(channel=target.mention, server=name)
            ),
        )

    @one_line_errors
    @taskset_serverlog.command(name="maxplayers", with_app_command=False)
    async def serverlog_maxplayers(self, ctx: commands.Context, server: str, value: str) -> None:
        """A game server's player limit for the voice channel name (`off`: from the log).

        Example: `[p]taskset serverlog maxplayers eu1 50`
        """
        name = await self._one_server(ctx, server)
        if name is None:
            return
        limits = dict(
            (await self._task_options(ctx.guild.id, "serverlog")).get("max_players") or {}
        )
        if value.strip().lower() == "off":
            limits.pop(name, None)
        elif value.isdigit() and 1 <= int(value) <= MAX_PLAYERS_LIMIT:
            limits[name] = int(value)
        else:
            await self._refuse(
                ctx,
                _("'{value}' is not a player limit: use 1-{top} or `off`.").format(
                    value=fmt.user_text(value, 20), top=MAX_PLAYERS_LIMIT
                ),
            )
            return
        await self._save_options(ctx.guild.id, "serverlog", max_players=limits)
        shown = limits.get(name, _("read from the log when it says"))
        await self._say(
            ctx,
            success(_("Max players for `{server}`: {value}.").format(server=name, value=shown)),
        )

    async def _one_server(self, ctx: commands.Context, server: str | None) -> str | None:
        """The game server named (checked), or the only one; else say why and return None."""
        try:
            if server is not None:
                return (await self.servers.get(ctx.guild.id, server)).name
            servers = await self.servers.list(ctx.guild.id)
        except ServerError as exc:
            await self._refuse(ctx, fmt.error_text(str(exc)))
            return None
        if len(servers) == 1:
            return servers[0].name
        if not servers:
            await self._refuse(
                ctx,
                _("No game servers yet: add one with `{p}taskset server add`.").format(
                    p=ctx.clean_prefix
                ),
            )
        else:
            await self._refuse(
                ctx,
                _("Name the game server: {names}.").format(
                    names=", ".join(s.name for s in servers)
                ),
            )
        return None

    @one_line_errors
    @KillfeedCommands.killfeed_group.command(name="online", ignore_extra=False)
    @commands.guild_only()
    async def killfeed_online(self, ctx: commands.Context, server: str | None = None) -> None:
        """Who is online on the game servers, for how long, and who is queued.

        Examples:
        - `[p]killfeed online`
        - `[p]killfeed online eu1`
        """
        try:
            if server is not None:
                servers = [await self.servers.get(ctx.guild.id, server)]
            else:
                servers = await self.servers.list(ctx.guild.id)
        except ServerError as exc:
            await self._refuse(ctx, fmt.error_text(str(exc)))
            return
        if not servers:
            await self._refuse(ctx, _("No game servers here yet."))
            return
        live = live_store(self)
        now = discord.utils.utcnow()
        options = await self._task_options(ctx.guild.id, "serverlog")
        blocks = []
        for info in servers:
            state = await live.state(scope_of(ctx.guild.id, info.name) + LOG_SCOPE, STATE_KEY)
            head = voice_name(info.name, state, (options.get("max_players") or {}).get(info.name))
            if not state:
                blocks.append(f"**{head}** — " + _("nothing read yet (is the serverlog task on?)"))
                continue
            rows = online_lines(state, now) or [_("Nobody is online.")]
            blocks.append(f"**{head}**\n" + "\n".join(rows))
        await self._send_pages(ctx, list(pagify("\n\n".join(blocks), page_length=fmt.PAGE_LIMIT)))
