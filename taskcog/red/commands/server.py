"""``[p]taskset server …``: the game servers a guild's killfeed reads from.

Secrets never travel through a guild channel: ``add`` and ``password`` collect the SFTP
password or private key in a DM, and a command that carries one in a channel is refused (and
deleted when the bot may). Nothing here ever echoes, logs or shows a secret. An ``add`` whose
secret never arrives (cancelled, timed out, unusable, or no DM possible) is undone, so no
half-added game server lingers or counts toward the limit.
"""

from __future__ import annotations

import discord
from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import error, info, pagify, success, warning

from ...pipeline.sources import LocalSource
from ..stores.servers import ServerError, ServerInfo, check_name, classify_secret, parse_address
from ..tasks.killfeed import scope_of
from .historyoffer import offer_history
from .shared import CommandHelpers
from .taskset import TasksetCommands

_ = Translator("TaskCog", __file__)
SECRET_TIMEOUT = 300.0


class ServerCommands(CommandHelpers):
    """The ``[p]taskset server`` mixin for TaskCog."""

    @TasksetCommands.taskset_group.group(name="server", with_app_command=False)
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def taskset_server(self, ctx: commands.Context) -> None:
        """Game servers whose logs this server's killfeed reads (SFTP, or a local folder)."""

    @taskset_server.command(
        name="add",
        with_app_command=False,
        usage="<name> <sftp|local> <address or path> [username] [base path]",
    )
    async def server_add(
        self,
        ctx: commands.Context,
        name: str,
        kind: str,
        address: str,
        username: str | None = None,
        base_path: str | None = None,
        *extra: str,
    ) -> None:
        """Add a game server. I ask for its password or key in a DM, never here.

        SFTP: `[p]taskset server add <name> sftp <host[:port]> <username> [base path]`
        Local folder on the bot's host (bot owner only):
        `[p]taskset server add <name> local <path>`

        Examples:
        - `[p]taskset server add eu1 sftp 203.0.113.7:8822 deadside /home/deadside`
        - `[p]taskset server add test local /srv/deadside`
        """
        kind = kind.lower()
        if extra or (kind == "local" and username is not None):
            await self._refuse_secret_in_channel(ctx)
            return
        try:
            name = check_name(name)
            limit = int(self.settings.globals.get("max_servers", 5))
            if kind == "local":
                if not await ctx.bot.is_owner(ctx.author):
                    await ctx.send(
                        error(_("Only the bot owner may read folders on the bot's host."))
                    )
                    return
                source = LocalSource(address)
                try:
                    await source.connect()
                finally:
                    await source.close()
                server = ServerInfo(name=name, kind="local", base_path=address)
            elif kind == "sftp":
                if not username:
                    raise ServerError(_("Give the SFTP username after the address."))
                host, port = parse_address(address)
                server = ServerInfo(name, "sftp", base_path or ".", host, port, username)
            else:
                raise ServerError(
                    _("Unknown game server kind '{kind}': use sftp or local.").format(kind=kind)
                )
            await self.servers.add(ctx.guild.id, server, limit)
        except (ServerError, OSError) as exc:
            await ctx.send(error(str(exc)))
            return
        except Exception as exc:  # e.g. PathNotFound from the local check
            await ctx.send(error(str(exc) or type(exc).__name__))
            return
        if server.kind == "local":
            await ctx.send(
                success(_("Added `{name}`: {where}.").format(name=name, where=server.where()))
            )
            return
        dm = await self._ask_secret(ctx, server, adding=True)
        if dm is None:
            return
        await ctx.send(
            success(
                _(
                    "Added `{name}` ({where}). I sent you a DM: reply there with its password "
                    "or private key. Never post it in a channel."
                ).format(name=name, where=server.where())
            )
        )
        await self._collect_secret(ctx, server, dm, adding=True)

    @taskset_server.command(name="password", with_app_command=False, usage="<name>")
    async def server_password(self, ctx: commands.Context, name: str, *extra: str) -> None:
        """Replace a game server's password or key, collected in a DM.

        Example: `[p]taskset server password eu1`
        """
        if extra:
            await self._refuse_secret_in_channel(ctx)
            return
        server = await self._server(ctx, name)
        if server is None:
            return
        if server.kind != "sftp":
            await ctx.send(
                error(
                    _("`{name}` is a local folder; it has no password.").format(name=server.name)
                )
            )
            return
        dm = await self._ask_secret(ctx, server, adding=False)
        if dm is None:
            return
        await ctx.send(info(_("I sent you a DM: reply there with the new password or key.")))
        await self._collect_secret(ctx, server, dm, adding=False)

    async def _server(self, ctx: commands.Context, name: str) -> ServerInfo | None:
        """This guild's game server ``name``; else say why in one line and return None."""
        try:
            return await self.servers.get(ctx.guild.id, name)
        except ServerError as exc:
            await ctx.send(error(str(exc)))
            return None

    async def _refuse_secret_in_channel(self, ctx: commands.Context) -> None:
        note = await self._delete_secret_message(ctx)
        await ctx.send(
            error(
                _(
                    "Never type a password or key in a channel. {note} Run the command without "
                    "it and I will ask for it in a DM. Nothing was changed."
                ).format(note=note)
            )
        )

    async def _ask_secret(
        self, ctx: commands.Context, server: ServerInfo, *, adding: bool
    ) -> discord.Message | None:
        """DM the prompt for the secret; if no DM is possible say so, undo an ``add``, and
        return None."""
        prompt = _(
            "Reply with the SFTP password for **{name}** ({where}) in **{guild}**, or paste its "
            "private key (`-----BEGIN … PRIVATE KEY-----`). Reply `cancel` to stop. "
            "I will wait {minutes} minutes and never show it again."
        ).format(
            name=server.name,
            where=server.where(),
            guild=ctx.guild.name,
            minutes=int(SECRET_TIMEOUT // 60),
        )
        try:
            return await ctx.author.send(prompt)
        except discord.HTTPException:
            pass
        if adding and await self._undo_add(ctx, server):
            outcome = _("`{name}` was not added; run the same command again.")
        else:
            outcome = _("Then run `{p}taskset server password {name}`.")
        await ctx.send(
            error(
                _("I could not DM you. Allow DMs from this server's members.")
                + " "
                + outcome.format(p=ctx.clean_prefix, name=server.name)
            )
        )
        return None

    async def _collect_secret(
        self, ctx: commands.Context, server: ServerInfo, dm: discord.Message, *, adding: bool
    ) -> bool:
        """Wait for the DM reply, store it and confirm without echoing it.

        Anything but a usable secret (``cancel``, a timeout, text that is no password or key)
        saves nothing; during an ``add`` it also removes the game server that ``add`` made.
        """

        def from_author(message: discord.Message) -> bool:
            return message.author.id == ctx.author.id and message.channel.id == dm.channel.id

        try:
            reply = await ctx.bot.wait_for("message", check=from_author, timeout=SECRET_TIMEOUT)
        except TimeoutError:
            await self._nothing_saved(ctx, server, dm, _("Timed out."), adding=adding)
            return False
        if reply.content.strip().lower() == "cancel":
            await self._nothing_saved(ctx, server, dm, _("Cancelled."), adding=adding)
            return False
        try:
            kind, secret = classify_secret(reply.content)
        except ServerError as exc:
            await self._nothing_saved(ctx, server, dm, str(exc), adding=adding, bad=True)
            return False
        await self.servers.set_secret(ctx.guild.id, server.name, kind, secret)
        what = _("password") if kind == "password" else _("private key")
        await dm.channel.send(
            success(
                _(
                    "Saved the {what} for `{name}`. "
                    "Next: `{p}taskset server test {name}` in the server."
                ).format(what=what, name=server.name, p=ctx.clean_prefix)
            )
        )
        return True

    async def _nothing_saved(
        self,
        ctx: commands.Context,
        server: ServerInfo,
        dm: discord.Message,
        why: str,
        *,
        adding: bool,
        bad: bool = False,
    ) -> None:
        """Tell the DM what did (not) happen: an ``add`` is undone, a password kept."""
        if adding and await self._undo_add(ctx, server):
            outcome = _(
                "`{name}` was not added and nothing was saved; run `{p}taskset server add` "
                "again when you have its password or key."
            )
        elif adding:
            outcome = _("Nothing was saved for `{name}`.")
        else:
            outcome = _("The password or key of `{name}` was not changed.")
        text = why + " " + outcome.format(name=server.name, p=ctx.clean_prefix)
        await dm.channel.send(error(text) if bad else info(text))

    async def _undo_add(self, ctx: commands.Context, server: ServerInfo) -> bool:
        """Remove the game server this ``add`` made (if nothing changed it since)."""
        if not await self.servers.discard(ctx.guild.id, server):
            return False
        if self.ledger is not None:
            await self.ledger.forget_scope(scope_of(ctx.guild.id, server.name))
        return True

    @taskset_server.command(name="remove", with_app_command=False)
    async def server_remove(self, ctx: commands.Context, name: str) -> None:
        """Remove a game server, its secret and its killfeed position.

        Example: `[p]taskset server remove eu1`
        """
        try:
            server = await self.servers.get(ctx.guild.id, name)
            await self.servers.remove(ctx.guild.id, server.name)
        except ServerError as exc:
            await ctx.send(error(str(exc)))
            return
        await self.ledger.forget_scope(scope_of(ctx.guild.id, server.name))
        await ctx.send(success(_("Removed `{name}`.").format(name=server.name)))

    @taskset_server.command(name="list", with_app_command=False)
    async def server_list(self, ctx: commands.Context) -> None:
        """List this server's game servers (never their secrets)."""
        servers = await self.servers.list(ctx.guild.id)
        if not servers:
            await ctx.send(
                info(
                    _("No game servers yet. Add one with `{p}taskset server add`.").format(
                        p=ctx.clean_prefix
                    )
                )
            )
            return
        lines = []
        for server in servers:
            auth = {
                "password": _("password set"),
                "key": _("key set"),
                None: _("no password or key yet"),
            }.get(server.auth, server.auth)
            if server.kind == "local":
                auth = _("local")
            elif server.login_failed == "key":
                auth = _("private key unreadable: replace it")
            elif server.login_failed:
                auth = _("login refused: replace the password or key")
            lines.append(
                f"**{server.name}** — {server.where()} · {auth} · "
                + _("host key: {state}").format(state=server.host_key_state(ctx.clean_prefix))
            )
        for page in pagify("\n".join(lines)):
            await ctx.send(page)

    @taskset_server.command(name="test", with_app_command=False)
    async def server_test(self, ctx: commands.Context, name: str) -> None:
        """Connect and report reachability, login, host key, kill logs and the server log.

        Example: `[p]taskset server test eu1`
        """
        server = await self._server(ctx, name)
        if server is None:
            return
        async with ctx.typing():
            source = await self.servers.source(ctx.guild.id, server)
            report = await source.probe()
        if report.fingerprint and report.fingerprint != server.seen_fingerprint:
            server = await self.servers.update(
                ctx.guild.id, server.name, seen_fingerprint=report.fingerprint
            )
        if report.logged_in and server.login_failed:
            # the login works again (fixed on the game host): the killfeed reads it again
            server = await self.servers.update(ctx.guild.id, server.name, login_failed=None)
        lines = [f"{'✅' if c.ok else '❌'} {source.redact(c.message)}" for c in report.checks]
        if report.logged_in is False:
            lines.append(
                info(
                    _(
                        "Replace the password or key with `{p}taskset server password {name}`."
                    ).format(p=ctx.clean_prefix, name=server.name)
                )
            )
        if (
            server.kind == "sftp"
            and report.fingerprint
            and server.fingerprint != report.fingerprint
        ):
            lines.append(
                warning(
                    _(
                        "If `{fp}` is your server's host key, trust it with "
                        "`{p}taskset server trust {name}`. Nothing is fetched until you do."
                    ).format(fp=report.fingerprint, p=ctx.clean_prefix, name=server.name)
                )
            )
        await ctx.send("\n".join(lines))

    @taskset_server.command(name="trust", with_app_command=False)
    async def server_trust(self, ctx: commands.Context, name: str) -> None:
        """Trust the host key the game server showed at its last test or connection.

        Example: `[p]taskset server trust eu1`
        """
        server = await self._server(ctx, name)
        if server is None:
            return
        if server.kind != "sftp":
            await ctx.send(
                info(
                    _("`{name}` is a local folder; there is no host key.").format(name=server.name)
                )
            )
            return
        if not server.seen_fingerprint:
            await ctx.send(
                error(
                    _(
                        "I have not seen `{name}`'s host key yet. "
                        "Run `{p}taskset server test {name}` first."
                    ).format(name=server.name, p=ctx.clean_prefix)
                )
            )
            return
        await self.servers.update(ctx.guild.id, server.name, fingerprint=server.seen_fingerprint)
        await self.servers.drop_source(ctx.guild.id, server.name)
        await ctx.send(
            success(
                _(
                    "Trusted host key {fp} for `{name}`. "
                    "The killfeed reads from it at its next run."
                ).format(
                    fp=f"`{server.seen_fingerprint}`",
                    name=server.name,
                )
            )
        )
        await offer_history(self, ctx, server.name)
