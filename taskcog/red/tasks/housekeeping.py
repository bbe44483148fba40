"""The ``housekeeping`` task (per guild): prunes this guild's stale taskcog state.

That is a channel setting that points at a deleted channel, stop flags left by an earlier bot
session, and saved counters of tasks that have not been registered for 30 days.
"""

from __future__ import annotations

import datetime as _dt

import discord
from redbot.core.i18n import Translator

from .. import formatting as fmt
from ..abc import MixinMeta
from ..registry import TaskContext, TaskSpec

_ = Translator("TaskCog", __file__)
STALE_AFTER = _dt.timedelta(days=30)


def housekeeping_spec(cog: MixinMeta) -> TaskSpec:
    async def housekeeping(ctx: TaskContext) -> str:
        guild = ctx.guild
        assert guild is not None
        notes: list[str] = []
        cleared = 0
        for name, raw in list(cog.settings.guilds.get(guild.id, {}).items()):
            channel_id = raw.get("channel")
            if (
                channel_id
                and guild.get_channel_or_thread(channel_id) is None
                and name in cog.registry
            ):
                await cog.settings.update_task(cog.registry.get(name), guild.id, channel=None)
                cleared += 1
        if cleared:
            notes.append(
                _("cleared {items}").format(
                    items=fmt.plural(cleared, _("deleted channel"), _("deleted channels"))
                )
            )
        stale_stops = [
            job
            for job, stamp in cog.state.stops.items()
            if job[1] == guild.id and stamp != cog.session_id
        ]
        for task, key in stale_stops:
            await cog.state.set_stopped(task, key, None)
        if stale_stops:
            notes.append(
                _("dropped {items}").format(
                    items=fmt.plural(len(stale_stops), _("old stop flag"), _("old stop flags"))
                )
            )
        now = discord.utils.utcnow()
        pruned = 0
        for (task, key), summary in list(cog.state.base.items()):
            if key != guild.id or task in cog.registry or cog.customs.has(key, task):
                continue
            last = summary.last_end or summary.last_start
            if last is None or now - last > STALE_AFTER:
                await cog.state.forget(task, key)
                pruned += 1
        if pruned:
            notes.append(
                _("pruned {items}").format(
                    items=fmt.plural(
                        pruned, _("unregistered task record"), _("unregistered task records")
                    )
                )
            )
        note = "; ".join(notes) or _("nothing stale")
        cog.notes[(ctx.task, guild.id)] = note
        return note

    return TaskSpec(
        name="housekeeping",
        run=housekeeping,
        description=_("Prunes this guild's stale taskcog state."),
        scope="guild",
        default_schedule="every 6h",
        min_interval=300,
        timeout=120,
        priority="low",  # waits while the event loop lags
    )
