"""A small fake Discord: the REST routes and the gateway a real Red needs to log in and chat.

Tests point ``discord.http.Route.BASE`` of a real ``redbot`` process at ``FakeDiscord.api_base``
and then talk to the bot as its owner would, through :meth:`FakeDiscord.send_message`. Everything
the bot posts is recorded in :attr:`FakeDiscord.messages`; waiting is done on a condition that is
notified per recorded message, never by sleeping. Routes the fake does not know answer with a
Discord-shaped 404 and are kept in :attr:`FakeDiscord.unknown_routes`, so a new Red call shows up
as a clear test failure instead of a hang.

Every channel keeps its history (:attr:`FakeDiscord.history`), readable by the bot through
``GET /channels/{id}/messages`` with Discord's ``limit``/``before``/``after`` rules. Crash tests
arm a :class:`PostFault`: the n-th message POSTed to a channel runs a hook (say, SIGKILL the bot)
and is never answered, optionally after it was created, so the bot cannot know its id.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

log = logging.getLogger("fakediscord")

DISCORD_EPOCH_MS = 1420070400000
API_PREFIX = "/api/v10"

# Gateway opcodes (https://discord.com/developers/docs/topics/opcodes-and-status-codes).
OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_PRESENCE = 3
OP_RESUME = 6
OP_REQUEST_MEMBERS = 8
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11

# @everyone may talk; the bot's own role is administrator, as on a typical server.
EVERYONE_PERMISSIONS = (1 << 6) | (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16)
ADMINISTRATOR = 1 << 3

BotMessage = dict[str, Any]
HISTORY_MAX_LIMIT = 100  # Discord's cap on one GET /channels/{id}/messages


@dataclass
class PostFault:
    """The ``nth`` message POSTed to ``channel_id`` (counted from arming) is never answered.

    With ``record`` the message is created first (it is in the channel's history, as when a
    connection drops after Discord committed a send); without it the request is dropped on
    receipt. ``hook`` runs before the request is abandoned; ``fired`` is set once it has.
    """

    channel_id: str
    nth: int
    record: bool
    hook: Callable[[], Awaitable[None] | None] | None = None
    seen: int = 0
    message: BotMessage | None = None
    fired: asyncio.Event = field(default_factory=asyncio.Event)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


class _Snowflakes:
    """Snowflakes from the real clock, so ``created_at`` is now (Red checks clock drift)."""

    def __init__(self) -> None:
        self._last = 0

    def __call__(self) -> str:
        now = ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | 1
        self._last = max(now, self._last + 1)
        return str(self._last)


@dataclass
class FakeUser:
    """A Discord user the fake knows; ``bot`` marks the bot account itself."""

    id: str
    name: str
    bot: bool = False

    def payload(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.name,
            "global_name": self.name,
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
        }


@dataclass
class FakeGuild:
    """One guild with text channels, an @everyone role, a bot role and its members."""

    id: str
    name: str
    owner_id: str
    channel_ids: list[str]
    bot_role_id: str
    members: list[FakeUser] = field(default_factory=list)


class FakeDiscord:
    """REST + gateway on 127.0.0.1, one guild, one owner, one bot account.

    Typical use::

        fake = FakeDiscord()
        await fake.start()
        ...start redbot with Route.BASE = fake.api_base and RED_TOKEN = fake.token...
        await fake.wait_until_connected(60)
        reply = await fake.command("!ping")
        await fake.stop()
    """

    def __init__(self, *, token: str | None = None, host: str = "127.0.0.1") -> None:
        self._snowflake = _Snowflakes()
        self.host = host
        self.port: int | None = None
        self.token = token or "fake." + "x" * 60
        self.bot_user = FakeUser(self._snowflake(), "TaskBot", bot=True)
        self.owner = FakeUser(self._snowflake(), "Owner")
        self.application_id = self.bot_user.id
        channel_ids = [self._snowflake(), self._snowflake()]
        self.guild = FakeGuild(
            id=self._snowflake(),
            name="Fake Guild",
            owner_id=self.owner.id,
            channel_ids=channel_ids,
            bot_role_id=self._snowflake(),
            members=[self.bot_user, self.owner],
        )
        self.channel_names = {channel_ids[0]: "general", channel_ids[1]: "killfeed"}
        self.users: dict[str, FakeUser] = {u.id: u for u in self.guild.members}
        self.dm_channels: dict[str, str] = {}  # channel id -> recipient user id
        self.messages: list[BotMessage] = []
        self.history: dict[str, list[BotMessage]] = {}  # channel id -> messages, oldest first
        self.post_faults: list[PostFault] = []
        self.edits: list[BotMessage] = []
        self.reactions: list[tuple[str, str, str]] = []
        self.deleted: list[str] = []
        self.interaction_responses: list[dict[str, Any]] = []
        self.unknown_routes: list[tuple[str, str]] = []
        self.click_retries = 0
        self.identifies = 0
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.disconnected.set()
        self._interactions: dict[str, dict[str, Any]] = {}  # token -> INTERACTION_CREATE data
        self._answers: dict[str, asyncio.Future[dict[str, Any]]] = {}  # token -> callback body
        self._heartbeat_waiters: list[asyncio.Future[None]] = []
        self._posted = asyncio.Condition()
        self._ws: web.WebSocketResponse | None = None
        self._seq = itertools.count(1)
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def channel_id(self) -> str:
        """The guild's main text channel (``#general``)."""
        return self.guild.channel_ids[0]

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeDiscord is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        """The value for ``discord.http.Route.BASE`` in the bot process."""
        return self.base_url + API_PREFIX

    async def start(self) -> None:
        """Bind an ephemeral port and start serving REST and the gateway."""
        app = web.Application(middlewares=[self._auth_and_log])
        app.add_routes(
            [
                web.get("/gateway", self._gateway),
                web.get(API_PREFIX + "/users/@me", self._get_me),
                web.get(API_PREFIX + "/users/{user_id}", self._get_user),
                web.post(API_PREFIX + "/users/@me/channels", self._create_dm),
                web.get(API_PREFIX + "/oauth2/applications/@me", self._get_application),
                web.get(API_PREFIX + "/applications/@me", self._get_application),
                web.get(API_PREFIX + "/gateway/bot", self._get_gateway_bot),
                web.get(API_PREFIX + "/gateway", self._get_gateway_bot),
                web.post(API_PREFIX + "/channels/{channel_id}/messages", self._post_message),
                web.get(API_PREFIX + "/channels/{channel_id}/messages", self._get_messages),
                web.patch(
                    API_PREFIX + "/channels/{channel_id}/messages/{message_id}",
                    self._edit_message,
                ),
                web.delete(
                    API_PREFIX + "/channels/{channel_id}/messages/{message_id}",
                    self._delete_message,
                ),
                web.post(API_PREFIX + "/channels/{channel_id}/typing", self._no_content),
                web.put(
                    API_PREFIX + "/channels/{channel_id}/messages/{message_id}"
                    "/reactions/{emoji}/@me",
                    self._add_reaction,
                ),
                web.get(API_PREFIX + "/applications/{app_id}/commands", self._list_app_commands),
                web.post(
                    API_PREFIX + "/interactions/{interaction_id}/{token}/callback",
                    self._interaction_callback,
                ),
                web.post(API_PREFIX + "/webhooks/{app_id}/{token}", self._followup),
                web.route("*", "/{tail:.*}", self._unknown),
            ]
        )
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("fake discord listening on %s", self.base_url)

    async def stop(self) -> None:
        """Close the gateway socket and the server."""
        if self._ws is not None and not self._ws.closed:
            await self._ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ test API

    def add_member(self, name: str) -> FakeUser:
        """Add a plain (non-owner) member to the guild; do it before the bot connects."""
        user = FakeUser(self._snowflake(), name)
        self.guild.members.append(user)
        self.users[user.id] = user
        return user

    async def wait_until_connected(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        """Wait until the bot identified and received its guild over the gateway."""
        await asyncio.wait_for(self.connected.wait(), timeout)

    async def wait_until_disconnected(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        """Wait until the bot's gateway socket is closed (e.g. after its process was killed)."""
        await asyncio.wait_for(self.disconnected.wait(), timeout)

    def fail_post(
        self,
        channel_id: str,
        nth: int = 1,
        *,
        record: bool,
        hook: Callable[[], Awaitable[None] | None] | None = None,
    ) -> PostFault:
        """Arm a :class:`PostFault` on ``channel_id``; it fires once, on the ``nth`` POST."""
        if nth < 1:
            raise ValueError("nth counts POSTs from 1")
        fault = PostFault(channel_id, nth, record, hook)
        self.post_faults.append(fault)
        return fault

    def channel_history(self, channel_id: str) -> list[BotMessage]:
        """The messages in ``channel_id`` that were not deleted, oldest first."""
        return [m for m in self.history.get(channel_id, []) if m["id"] not in self.deleted]

    async def send_message(self, channel_id: str, author_id: str, content: str) -> dict[str, Any]:
        """Dispatch a MESSAGE_CREATE from ``author_id`` in ``channel_id``; return the message."""
        if self._ws is None or self._ws.closed:
            raise RuntimeError("the bot is not connected to the gateway")
        author = self.users[author_id]
        message = self._message_payload(channel_id, author, content)
        self.history.setdefault(channel_id, []).append(message)
        await self._dispatch("MESSAGE_CREATE", message)
        return message

    async def wait_for_bot_message(
        self,
        predicate: Callable[[BotMessage], bool] | None = None,
        timeout: float = 60.0,  # noqa: ASYNC109 - the harness API the tests were promised
        *,
        start: int = 0,
    ) -> BotMessage:
        """Return the first message the bot posted at index >= ``start`` matching ``predicate``.

        Raises ``TimeoutError`` (with what the bot did post) if none arrives in time.
        """

        def find() -> BotMessage | None:
            for message in self.messages[start:]:
                if predicate is None or predicate(message):
                    return message
            return None

        async with self._posted:
            try:
                await asyncio.wait_for(self._posted.wait_for(lambda: find() is not None), timeout)
            except TimeoutError:
                seen = [message_text(m) for m in self.messages[start:]]
                raise TimeoutError(
                    f"bot posted no matching message in {timeout}s; it posted {seen!r}; "
                    f"unknown routes: {self.unknown_routes!r}"
                ) from None
        found = find()
        assert found is not None
        return found

    async def command(
        self,
        content: str,
        *,
        channel_id: str | None = None,
        author_id: str | None = None,
        timeout: float = 60.0,  # noqa: ASYNC109
        predicate: Callable[[BotMessage], bool] | None = None,
    ) -> BotMessage:
        """Send ``content`` as the owner and return the bot's next message in that channel."""
        channel_id = channel_id or self.channel_id
        start = len(self.messages)
        await self.send_message(channel_id, author_id or self.owner.id, content)

        def in_channel(message: BotMessage) -> bool:
            return message["channel_id"] == channel_id and (
                predicate is None or predicate(message)
            )

        return await self.wait_for_bot_message(in_channel, timeout, start=start)

    async def click_button(
        self,
        message: BotMessage,
        label: str,
        *,
        user_id: str | None = None,
        ack_timeout: float = 3.0,
        attempts: int = 3,
    ) -> dict[str, Any]:
        """Press the button labelled ``label`` on a bot message and return the bot's answer.

        The answer is the body the bot POSTs to ``/interactions/{id}/{token}/callback``. discord.py
        only knows a view once it has processed the HTTP reply to its send, which a click sent
        right after the message was recorded can overtake. A gateway round trip first lets the
        bot's loop catch up (measured: 15/15 clicks answered first time, 1/15 without it); if no
        answer comes within Discord's own 3 s deadline, press again, as a user would.
        """
        custom_id = _find_button(message, label)
        answered: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        await self.round_trip()
        for attempt in range(attempts):
            if attempt:
                self.click_retries += 1
            interaction = self._interaction_payload(message, custom_id, user_id)
            self._interactions[interaction["token"]] = interaction
            self._answers[interaction["token"]] = answered
            await self._dispatch("INTERACTION_CREATE", interaction)
            try:
                return await asyncio.wait_for(asyncio.shield(answered), ack_timeout)
            except TimeoutError:
                continue
        raise TimeoutError(f"the bot did not answer {attempts} clicks on {label!r}")

    async def round_trip(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Ask the bot for a heartbeat and wait for it: its event loop has run since our sends."""
        if self._ws is None or self._ws.closed:
            raise RuntimeError("the bot is not connected to the gateway")
        beat = asyncio.get_running_loop().create_future()
        self._heartbeat_waiters.append(beat)
        await self._ws.send_json({"op": OP_HEARTBEAT, "d": None})
        await asyncio.wait_for(beat, timeout)

    def _interaction_payload(
        self, message: BotMessage, custom_id: str, user_id: str | None
    ) -> dict[str, Any]:
        user = self.users[user_id or self.owner.id]
        member = self._member_payload(user)
        member["permissions"] = str(EVERYONE_PERMISSIONS)
        channel_id = message["channel_id"]
        interaction = {
            "id": self._snowflake(),
            "application_id": self.application_id,
            "type": 3,
            "token": f"interaction-token-{self._snowflake()}",
            "version": 1,
            "data": {"custom_id": custom_id, "component_type": 2},
            "channel_id": channel_id,
            "channel": (
                self._channel_payload(channel_id, 0)
                if channel_id in self.guild.channel_ids
                else {"id": channel_id, "type": 1}
            ),
            "message": message,
            "locale": "en-US",
            "app_permissions": str(ADMINISTRATOR | EVERYONE_PERMISSIONS),
            "entitlements": [],
            "authorizing_integration_owners": {"0": self.guild.id},
            "context": 0,
            "attachment_size_limit": 8 * 1024 * 1024,
        }
        if channel_id in self.guild.channel_ids:
            interaction["guild_id"] = self.guild.id
            interaction["guild_locale"] = "en-US"
            interaction["member"] = member
        else:
            interaction["user"] = user.payload()
        return interaction

    # ------------------------------------------------------------------ payloads

    def _member_payload(self, user: FakeUser) -> dict[str, Any]:
        roles = [self.guild.bot_role_id] if user.bot else []
        return {
            "user": user.payload(),
            "roles": roles,
            "joined_at": _iso(datetime.now(UTC)),
            "nick": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
        }

    def _channel_payload(self, channel_id: str, position: int) -> dict[str, Any]:
        return {
            "id": channel_id,
            "type": 0,
            "guild_id": self.guild.id,
            "name": self.channel_names[channel_id],
            "position": position,
            "permission_overwrites": [],
            "nsfw": False,
            "topic": None,
            "last_message_id": None,
            "parent_id": None,
            "rate_limit_per_user": 0,
        }

    def _guild_payload(self) -> dict[str, Any]:
        g = self.guild
        roles = [
            {
                "id": g.id,
                "name": "@everyone",
                "permissions": str(EVERYONE_PERMISSIONS),
                "position": 0,
                "color": 0,
                "hoist": False,
                "managed": False,
                "mentionable": False,
                "flags": 0,
            },
            {
                "id": g.bot_role_id,
                "name": "TaskBot",
                "permissions": str(ADMINISTRATOR | EVERYONE_PERMISSIONS),
                "position": 1,
                "color": 0,
                "hoist": False,
                "managed": True,
                "mentionable": False,
                "flags": 0,
                "tags": {"bot_id": self.bot_user.id},
            },
        ]
        return {
            "id": g.id,
            "name": g.name,
            "icon": None,
            "owner_id": g.owner_id,
            "unavailable": False,
            "large": False,
            "member_count": len(g.members),
            "joined_at": _iso(datetime.now(UTC)),
            "roles": roles,
            "channels": [self._channel_payload(c, i) for i, c in enumerate(g.channel_ids)],
            "members": [self._member_payload(u) for u in g.members],
            "presences": [],
            "voice_states": [],
            "threads": [],
            "emojis": [],
            "stickers": [],
            "features": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "afk_timeout": 300,
            "afk_channel_id": None,
            "system_channel_id": g.channel_ids[0],
            "system_channel_flags": 0,
            "preferred_locale": "en-US",
            "application_id": None,
        }

    def _message_payload(
        self,
        channel_id: str,
        author: FakeUser,
        content: str,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body = body or {}
        message: dict[str, Any] = {
            "id": self._snowflake(),
            "channel_id": channel_id,
            "author": author.payload(),
            "content": content,
            "timestamp": _iso(datetime.now(UTC)),
            "edited_timestamp": None,
            "tts": bool(body.get("tts", False)),
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "pinned": False,
            "type": 0,
            "flags": int(body.get("flags") or 0),
        }
        for i, upload in enumerate(body.get("_files") or []):
            message["attachments"].append(
                {
                    "id": self._snowflake(),
                    "filename": upload["filename"] or f"file{i}",
                    "size": upload["size"],
                    "url": f"{self.base_url}/attachments/{upload['filename']}",
                    "proxy_url": f"{self.base_url}/attachments/{upload['filename']}",
                }
            )
        if body.get("nonce") is not None:
            message["nonce"] = body["nonce"]
        if body.get("message_reference"):
            message["type"] = 19
            message["message_reference"] = body["message_reference"]
        if channel_id in self.guild.channel_ids:
            message["guild_id"] = self.guild.id
            member = self._member_payload(author)
            del member["user"]
            message["member"] = member
        return message

    # ------------------------------------------------------------------ REST

    @web.middleware
    async def _auth_and_log(self, request: web.Request, handler: Any) -> web.StreamResponse:
        # Interaction responses authenticate with the token in their path, as on Discord.
        unauthenticated = ("/interactions/", "/webhooks/")
        if request.path.startswith(API_PREFIX) and not any(
            request.path.startswith(API_PREFIX + prefix) for prefix in unauthenticated
        ):
            if request.headers.get("Authorization") != f"Bot {self.token}":
                return _error(401, 0, "401: Unauthorized")
        log.debug("%s %s", request.method, request.path)
        return await handler(request)

    async def _unknown(self, request: web.Request) -> web.Response:
        self.unknown_routes.append((request.method, request.path))
        log.warning("fake discord: unhandled route %s %s", request.method, request.path)
        return _error(404, 0, "404: Not Found (fake discord does not implement this route)")

    async def _no_content(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def _get_me(self, request: web.Request) -> web.Response:
        return _json(self.bot_user.payload() | {"verified": True, "mfa_enabled": True})

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self.users.get(request.match_info["user_id"])
        if user is None:
            return _error(404, 10013, "Unknown User")
        return _json(user.payload())

    async def _create_dm(self, request: web.Request) -> web.Response:
        recipient_id = str((await request.json())["recipient_id"])
        channel_id = (
            next((c for c, u in self.dm_channels.items() if u == recipient_id), None)
            or self._snowflake()
        )
        self.dm_channels[channel_id] = recipient_id
        recipient = self.users[recipient_id]
        return _json(
            {
                "id": channel_id,
                "type": 1,
                "last_message_id": None,
                "recipients": [recipient.payload()],
            }
        )

    async def _get_application(self, request: web.Request) -> web.Response:
        return _json(
            {
                "id": self.application_id,
                "name": self.bot_user.name,
                "icon": None,
                "description": "",
                "rpc_origins": [],
                "bot_public": False,
                "bot_require_code_grant": False,
                "owner": self.owner.payload(),
                "team": None,
                "summary": "",
                "verify_key": "0" * 64,
                "flags": 0,
                "bot": self.bot_user.payload(),
            }
        )

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        return _json(
            {
                "url": f"ws://{self.host}:{self.port}/gateway",
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 0,
                    "max_concurrency": 1,
                },
            }
        )

    async def _list_app_commands(self, request: web.Request) -> web.Response:
        return _json([])

    async def _post_message(self, request: web.Request) -> web.Response:
        channel_id = request.match_info["channel_id"]
        if channel_id not in self.guild.channel_ids and channel_id not in self.dm_channels:
            return _error(404, 10003, "Unknown Channel")
        fault = self._take_fault(channel_id)
        body = await _read_message_body(request)
        message = self._message_payload(channel_id, self.bot_user, body.get("content") or "", body)
        if fault is not None:
            return await self._abandon(request, fault, message)
        # Answer the bot before anyone waiting on `messages` can react (e.g. click a button).
        response = _json(message)
        await response.prepare(request)
        await response.write_eof()
        await self._record(message)
        if self._ws is not None and not self._ws.closed:
            await self._dispatch("MESSAGE_CREATE", message)
        return response

    def _take_fault(self, channel_id: str) -> PostFault | None:
        for fault in self.post_faults:
            if fault.channel_id == channel_id and not fault.fired.is_set():
                fault.seen += 1
                if fault.seen == fault.nth:
                    self.post_faults.remove(fault)
                    return fault
        return None

    async def _abandon(
        self, request: web.Request, fault: PostFault, message: BotMessage
    ) -> web.Response:
        """Create the message (or not), run the hook, and drop the request unanswered."""
        if fault.record:
            fault.message = message
            await self._record(message)  # no MESSAGE_CREATE: the bot must not learn the id
        if fault.hook is not None:
            result = fault.hook()
            if result is not None:
                await result
        fault.fired.set()
        log.info(
            "fake discord: abandoned a POST to %s (recorded: %s)", fault.channel_id, fault.record
        )
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=204)  # never reaches the client: the socket is closed

    async def _get_messages(self, request: web.Request) -> web.Response:
        """Discord's channel history: ``limit`` messages, always newest first in the response.

        Without ``after`` they are the newest ones (before ``before`` if given); with ``after``
        they are the oldest ones after that id, still sent newest first (discord.py reverses).
        """
        channel_id = request.match_info["channel_id"]
        if channel_id not in self.guild.channel_ids and channel_id not in self.dm_channels:
            return _error(404, 10003, "Unknown Channel")
        query = request.query
        if "around" in query:
            return _error(400, 50035, "Invalid Form Body (fake discord: around is not supported)")
        try:
            limit = int(query.get("limit", "50"))
            before = int(query["before"]) if "before" in query else None
            after = int(query["after"]) if "after" in query else None
        except ValueError:
            return _error(400, 50035, "Invalid Form Body")
        if not 1 <= limit <= HISTORY_MAX_LIMIT:
            return _error(400, 50035, "Invalid Form Body (limit must be 1 to 100)")
        found = [
            m
            for m in self.channel_history(channel_id)
            if (before is None or int(m["id"]) < before)
            and (after is None or int(m["id"]) > after)
        ]
        chosen = found[:limit] if after is not None and before is None else found[-limit:]
        return _json(list(reversed(chosen)))

    async def _edit_message(self, request: web.Request) -> web.Response:
        message_id = request.match_info["message_id"]
        body = await _read_message_body(request)
        for message in self.messages:
            if message["id"] == message_id:
                for key in ("content", "embeds", "components", "flags"):
                    if key in body:
                        message[key] = body[key]
                message["edited_timestamp"] = _iso(datetime.now(UTC))
                async with self._posted:
                    self.edits.append(dict(message))
                    self._posted.notify_all()
                return _json(message)
        return _error(404, 10008, "Unknown Message")

    async def _add_reaction(self, request: web.Request) -> web.Response:
        info = request.match_info
        self.reactions.append((info["channel_id"], info["message_id"], info["emoji"]))
        return web.Response(status=204)

    async def _delete_message(self, request: web.Request) -> web.Response:
        self.deleted.append(request.match_info["message_id"])
        return web.Response(status=204)

    async def _record(self, message: BotMessage) -> None:
        async with self._posted:
            self.messages.append(message)
            self.history.setdefault(message["channel_id"], []).append(message)
            self._posted.notify_all()
        log.info("bot posted in %s: %r", message["channel_id"], message_text(message))

    async def _interaction_callback(self, request: web.Request) -> web.Response:
        interaction = self._interactions.get(request.match_info["token"])
        if interaction is None or interaction["id"] != request.match_info["interaction_id"]:
            return _error(404, 10062, "Unknown interaction")
        body = await _read_message_body(request)
        self.interaction_responses.append(body)
        answered = self._answers.get(request.match_info["token"])
        if answered is not None and not answered.done():
            answered.set_result(body)
        kind = body.get("type")
        data = body.get("data") or {}
        callback: dict[str, Any] = {
            "interaction": {
                "id": interaction["id"],
                "type": interaction["type"],
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(int(data.get("flags") or 0) & 64),
            }
        }
        if kind == 4:  # CHANNEL_MESSAGE_WITH_SOURCE
            message = self._message_payload(
                interaction["channel_id"], self.bot_user, data.get("content") or "", data
            )
            message["interaction_metadata"] = {"id": interaction["id"], "type": 3}
            await self._record(message)
            callback["interaction"]["response_message_id"] = message["id"]
            callback["resource"] = {"type": kind, "message": message}
        elif kind == 7:  # UPDATE_MESSAGE
            message = interaction["message"]
            for key in ("content", "embeds", "components"):
                if key in data:
                    message[key] = data[key]
            callback["resource"] = {"type": kind, "message": message}
        return _json(callback)

    async def _followup(self, request: web.Request) -> web.Response:
        interaction = self._interactions.get(request.match_info["token"])
        if interaction is None:
            return _error(404, 10015, "Unknown Webhook")
        body = await _read_message_body(request)
        message = self._message_payload(
            interaction["channel_id"], self.bot_user, body.get("content") or "", body
        )
        await self._record(message)
        return _json(message)

    # ------------------------------------------------------------------ gateway

    async def _dispatch(self, event: str, data: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send_str(
            json.dumps({"op": OP_DISPATCH, "t": event, "s": next(self._seq), "d": data})
        )

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        await ws.send_json({"op": OP_HELLO, "d": {"heartbeat_interval": 41250}})
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            payload = json.loads(msg.data)
            op = payload.get("op")
            if op == OP_HEARTBEAT:
                await ws.send_json({"op": OP_HEARTBEAT_ACK})
                waiters, self._heartbeat_waiters = self._heartbeat_waiters, []
                for beat in waiters:
                    if not beat.done():
                        beat.set_result(None)
            elif op == OP_IDENTIFY:
                if payload["d"].get("token") != self.token:
                    await ws.close(code=4004, message=b"Authentication failed.")
                    break
                await self._identify(ws)
            elif op == OP_RESUME:
                # Sessions are not kept: make the client identify again.
                await ws.send_json({"op": OP_INVALID_SESSION, "d": False})
            elif op == OP_REQUEST_MEMBERS:
                await self._members_chunk(payload["d"])
            elif op == OP_PRESENCE:
                pass
            else:
                log.warning("fake discord: unhandled gateway op %s", op)
        if self._ws is ws:
            self._ws = None
            self.connected.clear()
            self.disconnected.set()
        return ws

    async def _identify(self, ws: web.WebSocketResponse) -> None:
        self.identifies += 1
        self._ws = ws
        self.disconnected.clear()
        self._seq = itertools.count(1)
        ready = {
            "v": 10,
            "user": self.bot_user.payload() | {"verified": True, "mfa_enabled": True},
            "guilds": [{"id": self.guild.id, "unavailable": True}],
            "session_id": f"session-{self.identifies}",
            "resume_gateway_url": f"ws://{self.host}:{self.port}/gateway",
            "shard": [0, 1],
            "application": {"id": self.application_id, "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
        }
        await self._dispatch("READY", ready)
        await self._dispatch("GUILD_CREATE", self._guild_payload())
        # Later messages on this socket are parsed after the guild is cached.
        self.connected.set()

    async def _members_chunk(self, request: dict[str, Any]) -> None:
        chunk = {
            "guild_id": str(request["guild_id"]),
            "members": [self._member_payload(u) for u in self.guild.members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if request.get("nonce"):
            chunk["nonce"] = request["nonce"]
        await self._dispatch("GUILD_MEMBERS_CHUNK", chunk)


def message_text(message: BotMessage) -> str:
    """The readable text of a bot message: its content plus every embed's text."""
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts.append(embed.get("title") or "")
        parts.append(embed.get("description") or "")
        for fld in embed.get("fields") or []:
            parts.append(f"{fld.get('name', '')}\n{fld.get('value', '')}")
        parts.append((embed.get("footer") or {}).get("text") or "")
    return "\n".join(p for p in parts if p)


async def _read_message_body(request: web.Request) -> dict[str, Any]:
    """discord.py sends JSON, or multipart with a ``payload_json`` part when files are attached."""
    if request.content_type.startswith("multipart/"):
        body: dict[str, Any] = {}
        files = []
        reader = await request.multipart()
        async for part in reader:
            if part.name == "payload_json":
                body = json.loads(await part.text())
            else:
                data = await part.read()
                files.append({"name": part.name, "filename": part.filename, "size": len(data)})
        body["_files"] = files
        return body
    return await request.json()


def _find_button(message: BotMessage, label: str) -> str:
    labels = []
    for row in message.get("components") or []:
        for component in row.get("components") or []:
            if component.get("type") == 2:
                labels.append(component.get("label"))
                if component.get("label") == label:
                    return component["custom_id"]
    raise LookupError(f"no button {label!r} on the message; its buttons are {labels!r}")


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py only parses bodies whose Content-Type is exactly "application/json".
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"}
    )


def _error(status: int, code: int, message: str) -> web.Response:
    return _json({"message": message, "code": code}, status=status)
