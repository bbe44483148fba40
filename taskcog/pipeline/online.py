"""Who is online on a game server, from its server-log events: a pure reducer.

The state is a JSON document kept by :class:`~.livestore.LiveStore` (per server):
``names`` (EOS id -> last name seen), ``online`` (id -> joined at), ``queue`` (id -> [name,
asked at]), ``started`` (the log's open time), ``max_players`` (from the log, if it says),
``offset`` (the bot's clock minus the log's at the last event: durations in any server zone).

A ``log_open`` header with a new time, or a ``restart`` the feed derived from a shorter file,
empties the online list and the queue and is announced once (its id is the header's). Joins,
leaves (unregistered, disconnected or timed out: whichever comes first), kicks and the chosen
state changes become posts with the player's name and the counts after the change.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

from .livestore import Post, Reducer
from .notices import derived_id, notice_payload
from .parsers.serverlog import (
    AIRDROP,
    CONVOY,
    DISCONNECT,
    HELICRASH,
    JOIN,
    KICK,
    LEAVE,
    LOG_OPEN,
    LOGIN,
    MAX_PLAYERS,
    MISSION,
    QUEUE,
    TIMEOUT,
    TRADER,
    LogEvent,
)

RESTART = "restart"
# What an admin can select with [p]taskset serverlog events, and what each covers.
SELECTABLE = {
    "joins": (JOIN,),
    "leaves": (LEAVE,),
    "missions": (MISSION,),
    "airdrops": (AIRDROP,),
    "helicrash": (HELICRASH,),
    "trader": (TRADER,),
    "convoy": (CONVOY,),
    "kicks": (KICK,),
}
DEFAULT_SELECTION = ("joins", "leaves", "missions", "airdrops", "helicrash", "trader", "convoy")
STATE_KINDS = (MISSION, AIRDROP, HELICRASH, TRADER, CONVOY)
ACTIVE_STATES = frozenset({"ACTIVE", "ACTIVATED", "STARTED", "DROPPING", "SPAWNED", "INPROGRESS"})
QUEUE_EXPIRY = _dt.timedelta(minutes=15)
MAX_NAMES = 2000
_LEFT = {LEAVE: "left", DISCONNECT: "disconnected", TIMEOUT: "timed out"}


@dataclass(frozen=True)
class Selection:
    """What gets posted: the selected names from :data:`SELECTABLE`; ``all_states`` posts every
    state change of the selected missions/events, not only their going active."""

    kinds: frozenset[str] = frozenset(DEFAULT_SELECTION)
    all_states: bool = False

    def posts(self, kind: str, state: str | None = None) -> bool:
        wanted = any(kind in SELECTABLE[name] for name in self.kinds if name in SELECTABLE)
        if not wanted:
            return False
        if kind in STATE_KINDS and not self.all_states:
            return (state or "").upper().replace("_", "") in ACTIVE_STATES
        return True


def parse_selection(text: str) -> Selection:
    """``joins,leaves,missions`` (commas or spaces; ``all`` adds every state change) -> a
    Selection; raises ValueError naming the first unknown word."""
    words = [w for w in text.replace(",", " ").lower().split() if w]
    if not words:
        raise ValueError("Name at least one of: " + ", ".join(SELECTABLE) + ".")
    all_states = "all" in words
    kinds = [w for w in words if w != "all"]
    for word in kinds:
        if word not in SELECTABLE:
            raise ValueError(
                f"Unknown event '{word[:30]}'. Choose from: {', '.join(SELECTABLE)} (and `all`)."
            )
    return Selection(frozenset(kinds or DEFAULT_SELECTION), all_states)


def online_reducer(selection: Selection, *, announce: bool, now: float) -> Reducer:
    """The reducer for :meth:`LiveStore.apply`; ``announce=False`` builds state only (the
    first read of a server's log posts nothing from before it was added)."""

    def reduce(state: dict[str, Any], events: list[LogEvent]) -> tuple[dict, list[Post]]:
        state = {
            "names": dict(state.get("names", {})),
            "online": dict(state.get("online", {})),
            "queue": dict(state.get("queue", {})),
            "started": state.get("started"),
            "max_players": state.get("max_players"),
            "offset": state.get("offset", 0.0),
        }
        if events:  # the bot's clock minus the log's, so "online for" needs no synced clocks
            state["offset"] = now - events[-1].at.timestamp()
        posts: list[Post] = []
        for event in events:
            post = _apply(state, event, selection)
            if post is not None and announce:
                posts.append(Post(post[0], now, post[1]))
        _expire_queue(state, events)
        _trim_names(state)
        return state, posts

    return reduce


def _apply(state: dict, event: LogEvent, selection: Selection) -> tuple[str, dict] | None:
    names, online, queue = state["names"], state["online"], state["queue"]
    at = event.at.isoformat()
    pid = event.player_id
    if event.kind in (LOG_OPEN, RESTART):
        if event.kind == LOG_OPEN and state["started"] == at:
            return None
        was = len(online)
        online.clear()
        queue.clear()
        state["started"] = at
        return event.id, notice_payload(RESTART, event.at, online_before=was)
    if event.kind == MAX_PLAYERS and event.subject:
        state["max_players"] = int(event.subject)
    elif event.kind == LOGIN and pid and event.name:
        names[pid] = event.name
    elif event.kind == QUEUE and pid:
        if event.name:
            names[pid] = event.name
        if pid not in online:
            queue[pid] = [event.name or names.get(pid), at]
    elif event.kind == JOIN and pid:
        queue.pop(pid, None)
        if pid in online:
            return None
        online[pid] = at
        if selection.posts(JOIN):
            return _player_post(JOIN, event, state)
    elif event.kind in _LEFT and pid:
        queue.pop(pid, None)
        if online.pop(pid, None) is None:
            return None
        if selection.posts(LEAVE):
            return _player_post(LEAVE, event, state, reason=_LEFT[event.kind])
    elif event.kind == KICK and selection.posts(KICK):
        return event.id, notice_payload(
            KICK, event.at, name=event.name, reason=event.subject, **_counts(state)
        )
    elif event.kind in STATE_KINDS and selection.posts(event.kind, event.state):
        return event.id, notice_payload(
            event.kind, event.at, subject=event.subject, state=event.state
        )
    return None


def _player_post(kind: str, event: LogEvent, state: dict, **extra: Any) -> tuple[str, dict]:
    pid = event.player_id or ""
    name = state["names"].get(pid)
    post_id = derived_id(kind, event.id)
    return post_id, notice_payload(
        kind, event.at, name=name, player_id=pid, **extra, **_counts(state)
    )


def _counts(state: dict) -> dict[str, Any]:
    return {
        "online": len(state["online"]),
        "queued": len(state["queue"]),
        "max_players": state.get("max_players"),
    }


def _expire_queue(state: dict, events: list[LogEvent]) -> None:
    if not events:
        return
    cutoff = (events[-1].at - QUEUE_EXPIRY).isoformat()
    for pid, (_name, asked) in list(state["queue"].items()):
        if asked < cutoff:
            del state["queue"][pid]


def _trim_names(state: dict) -> None:
    names = state["names"]
    if len(names) <= MAX_NAMES:
        return
    keep = set(state["online"]) | set(state["queue"])
    for pid in list(names):
        if len(names) <= MAX_NAMES:
            break
        if pid not in keep:
            del names[pid]


def restart_event(path: str, first: LogEvent | None, mtime: float | None) -> LogEvent:
    """The event for a restart seen only as a shorter file (no header line read)."""
    at = first.at if first is not None else _dt.datetime.fromtimestamp(mtime or 0, _dt.UTC)
    return LogEvent(derived_id(RESTART, path, at.isoformat()), at, RESTART)
