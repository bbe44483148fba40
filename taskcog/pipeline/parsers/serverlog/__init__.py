"""Parse Deadside.log: bytes in, :class:`LogEvent` out, no I/O.

The file opens with ``Log file open, 05/17/25 02:01:30`` and every later line carries Unreal's
``[2025.05.17-02.01.30:123][ 45]`` prefix. The kinds understood (see :mod:`.grammar`):

- ``log_open``: the header, written when the server (re)starts;
- ``join`` / ``leave``: ``LogOnline: [Warning: ]Player |<eosid> successfully [un]registered``;
- ``disconnect``: ``UChannel::Close … UniqueId: EOS:|<eosid>``;
- ``timeout``: ``Connection TIMED OUT … UniqueId: EOS:|<eosid>``;
- ``login``: ``[ASFPSGameSession::OnLogin] Login = <name>, ID = |<eosid>`` (name <-> id);
- ``queue``: ``LogNet: Join request: …Name=<name>&eosid=|<eosid>``;
- ``kick``: ``[ASFPSGameSession::KickPlayer] Login = <name>, Msg = <why>``;
- ``mission``, ``airdrop``, ``helicrash``, ``trader``, ``convoy``, ``event``: ``LogSFPS: …
  switched to <STATE>``;
- ``max_players``: a ``MaxPlayers=<n>`` anywhere (the server's command line, when logged).

Every other line is counted in ``unknown``; nothing is ever fatal. Only whole lines are read
(``final=True`` also takes a last line without a newline). An event's ``id`` hashes what happened
and when (time to the millisecond and frame), never where it was read, so a re-read gives the
same id.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import urllib.parse
from dataclasses import dataclass, field

from . import grammar as g

UTC = _dt.UTC
LOG_OPEN = "log_open"
JOIN = "join"
LEAVE = "leave"
DISCONNECT = "disconnect"
TIMEOUT = "timeout"
LOGIN = "login"
QUEUE = "queue"
KICK = "kick"
MISSION = "mission"
AIRDROP = "airdrop"
HELICRASH = "helicrash"
TRADER = "trader"
CONVOY = "convoy"
EVENT = "event"
MAX_PLAYERS = "max_players"
KINDS = (
    LOG_OPEN, JOIN, LEAVE, DISCONNECT, TIMEOUT, LOGIN, QUEUE, KICK,
    MISSION, AIRDROP, HELICRASH, TRADER, CONVOY, EVENT, MAX_PLAYERS,
)  # fmt: skip
_NAME_CHARS = 64
_TEXT_CHARS = 200


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One thing the server log says happened.

    ``player_id`` is the EOS id (joins, leaves, disconnects, timeouts, logins, queue); ``name``
    the player's name where the line gives one; ``subject`` the mission or event name, the kick
    message, or the max player count; ``state`` the new state (``ACTIVE``, ``Dropping``…).
    """

    id: str
    at: _dt.datetime
    kind: str
    player_id: str | None = None
    name: str | None = None
    subject: str | None = None
    state: str | None = None


@dataclass
class LogParseResult:
    events: list[LogEvent] = field(default_factory=list)
    consumed: int = 0
    lines: int = 0
    unknown: int = 0


def parse_serverlog(data: bytes, *, final: bool = False) -> LogParseResult:
    """Parse the whole lines of a Deadside.log chunk; see the module docstring."""
    end = len(data) if final else data.rfind(b"\n") + 1
    result = LogParseResult(consumed=end)
    for raw in data[:end].splitlines():
        text = raw.decode("utf-8", "replace").rstrip("\r")
        if not text.strip():
            continue
        result.lines += 1
        event = parse_line(text)
        if event is None:
            result.unknown += 1
        else:
            result.events.append(event)
    return result


def parse_line(text: str) -> LogEvent | None:
    """One line -> its event, or None for a line of no kind we know."""
    header = g.HEADER_RE.match(text)
    if header:
        month, day, year, hour, minute, second = (int(x) for x in header.groups())
        try:
            at = _dt.datetime(2000 + year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError:
            return None
        return _event(at, 0, LOG_OPEN)
    prefix = g.PREFIX_RE.match(text)
    if not prefix:
        players = g.MAX_PLAYERS_RE.search(text)
        if players:  # the command line is logged before the first prefixed line
            return _event(_dt.datetime(1970, 1, 1, tzinfo=UTC), 0, MAX_PLAYERS,
                          subject=players.group(1))  # fmt: skip
        return None
    parts = [int(x) for x in prefix.groups()]
    try:
        at = _dt.datetime(*parts[:6], parts[6] * 1000, tzinfo=UTC)
    except ValueError:
        return None
    return _body(at, parts[7], text[prefix.end() :])


def _body(at: _dt.datetime, frame: int, body: str) -> LogEvent | None:
    if m := g.REGISTER_RE.match(body):
        kind = JOIN if m.group(2) == "registered" else LEAVE
        return _event(at, frame, kind, player_id=m.group(1))
    if m := g.LOGIN_RE.search(body):
        return _event(at, frame, LOGIN, player_id=m.group(2), name=_clip(m.group(1)))
    if m := g.QUEUE_RE.match(body):
        name = _clip(urllib.parse.unquote_plus(m.group(1)))
        return _event(at, frame, QUEUE, player_id=m.group(2), name=name)
    if m := g.TIMEOUT_RE.search(body):
        return _event(at, frame, TIMEOUT, player_id=m.group(1))
    if m := g.CLOSE_RE.search(body):
        return _event(at, frame, DISCONNECT, player_id=m.group(1))
    if m := g.KICK_RE.search(body):
        return _event(
            at, frame, KICK, name=_clip(m.group(1)), subject=_clip(m.group(2), _TEXT_CHARS)
        )
    if m := g.MISSION_RE.match(body):
        return _event(at, frame, MISSION, subject=_clip(m.group(1)), state=m.group(2))
    if m := g.AIRDROP_RE.match(body):
        return _event(at, frame, AIRDROP, state=m.group(1))
    if m := g.GAMEPLAY_RE.match(body):
        name = m.group(1)
        kind = next((k for marker, k in g.GAMEPLAY_KINDS if marker in name), EVENT)
        return _event(at, frame, kind, subject=_clip(name), state=m.group(2))
    if m := g.MAX_PLAYERS_RE.search(body):
        return _event(at, frame, MAX_PLAYERS, subject=m.group(1))
    return None


def _clip(text: str, limit: int = _NAME_CHARS) -> str:
    text = "".join(ch for ch in text.strip() if ch.isprintable())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _event(
    at: _dt.datetime,
    frame: int,
    kind: str,
    *,
    player_id: str | None = None,
    name: str | None = None,
    subject: str | None = None,
    state: str | None = None,
) -> LogEvent:
    key = "\x1f".join(
        (kind, at.isoformat(), str(frame), player_id or "", name or "", subject or "", state or "")
    )
    event_id = hashlib.sha256(key.encode()).hexdigest()[:32]
    return LogEvent(event_id, at, kind, player_id, name, subject, state)


__all__ = ["KINDS", "LogEvent", "LogParseResult", "parse_line", "parse_serverlog"]
