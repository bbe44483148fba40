"""The killfeed's Discord sink: kill events become embeds, ten to a message, posted once.

Exactly once, with the :class:`~taskcog.pipeline.ledger.Ledger`: before a message is sent its
event ids are written as a *pending batch*; after it is sent they are recorded as posted and the
batch is deleted, in one transaction. If the process dies in between, :meth:`KillfeedSink.recover`
finds the message in the channel's recent history by the event ids in its embeds' footers
(``kill <id>``), so the events are neither lost nor posted twice.

Errors: a 429 (``discord.RateLimited`` or an ``HTTPException`` with status 429) propagates
untouched so supervision waits ``retry_after``; a missing or forbidden channel raises
:class:`ChannelUnavailable`, one sentence for the server admins. Either way nothing was recorded
as posted, so the caller's cursor does not move and the events are posted on a later run.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Callable, Sequence

import discord

from ..events import KILL, SUICIDE, UNKNOWN, VEHICLE, KillEvent
from ..ledger import AsyncLedger

MAX_EMBEDS = 10  # Discord's limit per message
FOOTER_PREFIX = "kill "
_FOOTER_RE = re.compile(r"(?:kill|log) ([0-9a-f]{8,64})")  # "log": server-log notices
_NAME_CHARS = 48  # keeps ten embeds well under Discord's 6,000 characters per message
_CAUSE_CHARS = 64

COLOURS = {
    KILL: discord.Colour(0xC0392B),
    VEHICLE: discord.Colour(0xE67E22),
    SUICIDE: discord.Colour(0x7F8C8D),
    UNKNOWN: discord.Colour(0x34495E),
}


class ChannelUnavailable(Exception):
    """The killfeed channel is gone, or the bot may not post or read there.

    ``str()`` says what to fix; the task backs off and posts everything once it is fixed.
    """


# -- embeds ----------------------------------------------------------------------------------


def _clean(text: str, limit: int) -> str:
    """Shorten, then escape, so Discord shows a player's name as typed and pings nobody."""
    text = text.strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return discord.utils.escape_mentions(discord.utils.escape_markdown(text))


def _distance(metres: float) -> str:
    return f"{metres:.0f} m" if float(metres).is_integer() else f"{metres:.1f} m"


def kill_embed(event: KillEvent) -> discord.Embed:
    """One event as an embed: who killed whom, how, how far, platforms and when.

    Suicides, vehicle and unknown-cause deaths get their own title and colour. The footer
    carries ``kill <event id>`` so :func:`ids_in_message` can recognise the post later.
    """
    killer = _clean(event.killer, _NAME_CHARS) or "Someone"
    victim = _clean(event.victim, _NAME_CHARS) or "Someone"
    cause = _clean(event.cause, _CAUSE_CHARS)
    lines: list[str] = []
    if event.kind == SUICIDE:
        title = f"💀 {victim} died ({cause or 'suicide'})"
    elif event.kind == UNKNOWN:
        title = f"❔ {victim} died"
        lines.append(f"**Cause:** {cause or 'unknown'}")
    elif event.kind == VEHICLE:
        vehicle = "boat" if event.cause == "boat" else "land vehicle"
        title = f"{'🚤' if vehicle == 'boat' else '🚗'} {killer} → {victim}"
        lines.append(f"**Vehicle:** {vehicle}")
    else:
        title = f"🔫 {killer} → {victim}"
        lines.append(f"**Weapon:** {cause or 'unknown'}")
    if event.kind in (KILL, VEHICLE):
        if event.distance is not None:
            lines.append(f"**Distance:** {_distance(event.distance)}")
        if event.killer_platform or event.victim_platform:
            killer_platform = _clean(event.killer_platform or "?", _NAME_CHARS)
            victim_platform = _clean(event.victim_platform or "?", _NAME_CHARS)
            lines.append(f"**Platforms:** {killer_platform} → {victim_platform}")
    elif event.victim_platform:
        lines.append(f"**Platform:** {_clean(event.victim_platform, _NAME_CHARS)}")
    lines.append(discord.utils.format_dt(event.at, "f"))
    embed = discord.Embed(
        title=title,
        description="\n".join(lines),
        colour=COLOURS.get(event.kind, COLOURS[KILL]),
        timestamp=event.at,
    )
    embed.set_footer(text=f"{FOOTER_PREFIX}{event.id}")
    return embed


def ids_in_message(message: discord.Message) -> set[str]:
    """The event ids a killfeed message carries in its embeds' footers."""
    ids: set[str] = set()
    for embed in message.embeds:
        match = _FOOTER_RE.fullmatch(embed.footer.text or "")
        if match:
            ids.add(match.group(1))
    return ids


# -- the sink --------------------------------------------------------------------------------


class KillfeedSink:
    """Posts kill events to one channel, at most ``batch_size`` embeds per message, once each.

    ``scope`` names the server in the ledger. ``history_limit`` is how many recent messages
    :meth:`recover` reads to find a message sent just before a crash.
    """

    def __init__(
        self,
        channel: discord.abc.Messageable,
        ledger: AsyncLedger,
        scope: str,
        *,
        batch_size: int = MAX_EMBEDS,
        history_limit: int = 100,
        render: Callable[[Any], discord.Embed] | None = None,
    ) -> None:
        if not 1 <= batch_size <= MAX_EMBEDS:
            raise ValueError(f"batch_size must be between 1 and {MAX_EMBEDS}")
        self.channel = channel
        self.ledger = ledger
        self.scope = scope
        self.batch_size = batch_size
        self.history_limit = history_limit
        self.render = render or kill_embed  # an embed whose footer ends "kill|log <id>"
        self.api_calls = 0
        """Send calls made (each is one API call), for tests and benchmarks."""
        self._recovered = False

    async def recover(self) -> int:
        """Settle the batches a crash (or an unclear send failure) left pending.

        Ids found in the bot's messages in the channel are marked posted; the rest of each
        batch is dropped, to be posted again from the re-read (the cursor never moved). The
        search reads up to ``history_limit`` messages, oldest first from this scope's last
        recorded post (so other servers sharing the channel cannot push the message out of
        reach), or the newest ones if there is none. Returns how many ids were marked posted.
        Raises :class:`ChannelUnavailable` if the history cannot be read.
        """
        pending = await self.ledger.pending(self.scope)
        marked = 0
        if pending:
            wanted = {event_id for _, ids in pending for event_id in ids}
            seen = await self._find(wanted, await self.ledger.last_message_id(self.scope))
            for batch_id, ids in pending:
                by_message: dict[int, list[str]] = {}
                for event_id in ids:
                    if event_id in seen:
                        by_message.setdefault(seen[event_id], []).append(event_id)
                for message_id, found in by_message.items():
                    await self.ledger.commit_batch(self.scope, batch_id, message_id, found)
                    marked += len(found)
                if not by_message:
                    await self.ledger.drop_batch(self.scope, batch_id)
        self._recovered = True
        return marked

    async def post(self, events: Sequence[KillEvent]) -> int:
        """Post the events not yet posted, in order; returns how many were posted now.

        Raises :class:`ChannelUnavailable` for a missing or forbidden channel, and lets a 429
        propagate; events before the failing message stay posted, the rest are not.
        """
        if not self._recovered:
            await self.recover()
        unique = list({event.id: event for event in events}.values())
        if not unique:
            return 0
        ids = [event.id for event in unique]
        if len(unique) <= self.batch_size and self._permitted():
            # One message at most: the posted check and the pending batch in one ledger trip.
            batch_id = uuid.uuid4().hex
            already = await self.ledger.begin_unposted(self.scope, batch_id, ids, self.batch_size)
            fresh = [event for event in unique if event.id not in already]
            if fresh:
                await self._send(fresh, begun=batch_id)
            return len(fresh)
        already = await self.ledger.posted(self.scope, ids)
        fresh = [event for event in unique if event.id not in already]
        if fresh:
            self._check_permissions()
        for start in range(0, len(fresh), self.batch_size):
            await self._send(fresh[start : start + self.batch_size])
        return len(fresh)

    def _permitted(self) -> bool:
        try:
            self._check_permissions()
        except ChannelUnavailable:
            return False  # the two-step path raises it, and only if something is to be posted
        return True

    async def _send(self, batch: list[KillEvent], begun: str | None = None) -> None:
        """Send one message; ``begun``: its pending batch is already recorded (that id)."""
        ids = [event.id for event in batch]
        batch_id = begun or uuid.uuid4().hex
        if begun is None:
            await self.ledger.begin_batch(self.scope, batch_id, ids)
        self.api_calls += 1
        try:
            message = await self.channel.send(embeds=[self.render(event) for event in batch])
        except discord.RateLimited:
            await self.ledger.drop_batch(self.scope, batch_id)  # refused before sending
            raise
        except discord.HTTPException as exc:
            if exc.status < 500:  # Discord refused it, so no message exists
                await self.ledger.drop_batch(self.scope, batch_id)
            else:  # a 5xx may still have created the message: let recover() decide
                self._recovered = False
            if isinstance(exc, (discord.Forbidden, discord.NotFound)):
                raise self._unavailable(exc) from exc
            raise
        except BaseException:
            self._recovered = False  # cancelled or cut off mid-send: the message may exist
            raise
        await self.ledger.commit_batch(self.scope, batch_id, message.id, ids)

    async def _find(self, wanted: set[str], after: int | None) -> dict[str, int]:
        """Event id -> message id for the ``wanted`` ids found in the bot's messages."""
        me = _bot_id(self.channel)
        seen: dict[str, int] = {}
        history = self.channel.history(
            limit=self.history_limit, after=discord.Object(after) if after else None
        )
        try:
            async for message in history:
                if me is not None and message.author.id != me:
                    continue
                for event_id in ids_in_message(message) & wanted:
                    seen.setdefault(event_id, message.id)
                if len(seen) == len(wanted):
                    break
        except (discord.Forbidden, discord.NotFound) as exc:
            raise self._unavailable(exc) from exc
        return seen

    def _check_permissions(self) -> None:
        """Fail before sending when the bot surely lacks a permission the killfeed needs."""
        guild = getattr(self.channel, "guild", None)
        me = getattr(guild, "me", None)
        permissions_for = getattr(self.channel, "permissions_for", None)
        if me is None or permissions_for is None:
            return
        perms = permissions_for(me)
        missing = [
            label
            for label, ok in (
                ("View Channel", perms.view_channel),
                ("Send Messages", perms.send_messages),
                ("Embed Links", perms.embed_links),
                ("Read Message History", perms.read_message_history),
            )
            if not ok
        ]
        if missing:
            raise ChannelUnavailable(
                f"The bot cannot post the killfeed in {_where(self.channel)}: it needs "
                f"{', '.join(missing)} there."
            )

    def _unavailable(self, exc: discord.HTTPException) -> ChannelUnavailable:
        where = _where(self.channel)
        if isinstance(exc, discord.NotFound):
            return ChannelUnavailable(
                f"The killfeed channel {where} no longer exists; choose another channel."
            )
        return ChannelUnavailable(
            f"The bot may not use the killfeed channel {where} ({exc.text or 'Forbidden'}); "
            "it needs View Channel, Send Messages, Embed Links and Read Message History there."
        )


def _bot_id(channel: Any) -> int | None:
    guild = getattr(channel, "guild", None)
    me = getattr(guild, "me", None) or getattr(channel, "me", None)
    return getattr(me, "id", None)


def _where(channel: Any) -> str:
    name = getattr(channel, "name", None)
    return f"#{name}" if name else "(a direct message)"
