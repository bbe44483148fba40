"""``[p]taskset global backend``: where the heavy work runs, ``local`` or ``taskiq`` workers.

The broker URL may hold a password, so like every secret it is collected in a DM and never
echoed or logged; a URL typed in a channel is refused (and deleted when the bot may).
"""

from __future__ import annotations

import discord
from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import error, info, success

from ...engine.backends.secrets import ENV_KEY
from .shared import CommandHelpers
from .taskset import TasksetCommands

_ = Translator("TaskCog", __file__)
URL_TIMEOUT = 300.0


class BackendCommands(CommandHelpers):
    """The ``[p]taskset global backend`` mixin (bot owner only, through ``taskset global``)."""

    @TasksetCommands.taskset_global.command(
        name="backend", with_app_command=False, usage="[local|taskiq]"
    )
    async def global_backend(
        self, ctx: commands.Context, kind: str | None = None, *extra: str
    ) -> None:
        """Where the killfeed's heavy work runs: `local` (this process) or `taskiq` workers.

        `[p]taskset global backend taskiq` asks for the broker URL (Redis, or NATS with
        JetStream) in a DM; workers run
        `python -m taskcog.worker --broker <url>` with the bot's secret key.
        `[p]tasks pool` shows the backend and its workers.
        """
        choice = (kind or "").strip().lower()
        if not choice:
            text = _("The backend is {kind}.").format(kind=self.backends.kind)
            await self._say(ctx, info(text))
        elif "://" in choice or "@" in choice:
            await self._refuse_url_in_channel(ctx)
        elif choice == "taskiq":
            await self._backend_taskiq(ctx, extra)
        elif choice != "local":
            await self._refuse(ctx, _("Pick `local` or `taskiq`. Nothing was changed."))
        elif extra:
            await self._refuse(ctx, _("`local` takes nothing more. Nothing was changed."))
        else:
            await self.backends.use_local()
            text = _("The backend is now local: this process does the work.")
            await self._say(ctx, success(text))

    async def _backend_taskiq(self, ctx: commands.Context, extra: tuple[str, ...]) -> None:
        """Send the heavy work to taskiq workers; I ask for the broker URL in a DM.

        Start workers with `python -m taskcog.worker --broker <url>` and the bot's secret key.
        """
        if extra:
            await self._refuse_url_in_channel(ctx)
            return
        try:
            dm = await ctx.author.send(
                _(
                    "Reply with the broker URL (`redis://[:password@]host:6379/0` or "
                    "`nats://[user:password@]host:4222`). Reply `cancel` to stop. "
                    "I will wait {minutes} minutes and never show it."
                ).format(minutes=int(URL_TIMEOUT // 60))
            )
        except discord.HTTPException:
            await self._refuse(ctx, _("I could not DM you. Allow DMs, then run it again."))
            return
        if ctx.guild is not None:
            await self._say(ctx, info(_("I sent you a DM: reply there with the broker URL.")))

        def from_author(message: discord.Message) -> bool:
            return message.author.id == ctx.author.id and message.channel.id == dm.channel.id

        try:
            reply = await ctx.bot.wait_for("message", check=from_author, timeout=URL_TIMEOUT)
        except TimeoutError:
            await dm.channel.send(info(_("Timed out. The backend was not changed.")))
            return
        if reply.content.strip().lower() == "cancel":
            await dm.channel.send(info(_("Cancelled. The backend was not changed.")))
            return
        try:
            new_key = await self.backends.use_taskiq(reply.content)
        except ValueError as exc:
            await dm.channel.send(error(str(exc)))
            return
        text = _("The backend is now taskiq on {where}.").format(where=self.backends.where)
        if new_key is None:
            text += " " + _("Workers need the same {env} as this bot.").format(env=ENV_KEY)
        else:
            text += " " + _(
                "Give your workers this secret key (it encrypts game-server passwords on the "
                "broker), e.g. `{env}=<key> python -m taskcog.worker --broker <url>`: ||{key}||"
            ).format(env=ENV_KEY, key=new_key)
        await dm.channel.send(success(text))

    async def _refuse_url_in_channel(self, ctx: commands.Context) -> None:
        note = await self._delete_secret_message(ctx)
        await self._refuse(
            ctx,
            _(
                "Never type a broker URL in a channel: it may hold a password. {note} Run "
                "`{p}taskset global backend taskiq` alone and I will ask for it in a DM. "
                "Nothing was changed."
            ).format(note=note, p=ctx.clean_prefix),
        )
