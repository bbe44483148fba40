"""Posts that are not kills: server-log lines, restarts, long shots and kill streaks.

A :class:`Notice` travels through the outbox as JSON (see :mod:`.livestore`) and reaches a
sink like a kill does: it has a stable ``id`` the ledger records once posted. ``decode`` turns an
outbox payload back into what the sink posts: a :class:`~.events.KillEvent` for a delayed kill,
else a :class:`Notice`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from .events import KillEvent

KILL_PAYLOAD = "kill"


@dataclass(frozen=True)
class Notice:
    """``kind``: ``join``, ``leave``, ``kick``, ``restart``, ``mission``… ``long_shot``,
    ``streak``, ``streak_end``. ``data`` holds what the text needs (names, counts, states)."""

    id: str
    kind: str
    at: _dt.datetime
    data: dict[str, Any] = field(default_factory=dict)


def derived_id(*parts: object) -> str:
    """A stable id for a post derived from an event (``derived_id("streak", kill.id, 5)``)."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]


def notice_payload(kind: str, at: _dt.datetime, route: str = "feed", **data: Any) -> dict:
    return {"type": kind, "at": at.isoformat(), "route": route, "data": data}


def kill_payload(event: KillEvent, route: str = "feed") -> dict:
    fields = asdict(event)
    fields["at"] = event.at.isoformat()
    return {"type": KILL_PAYLOAD, "route": route, "kill": fields}


def decode(event_id: str, payload: dict) -> KillEvent | Notice:
    """An outbox payload back as the object a sink posts."""
    if payload.get("type") == KILL_PAYLOAD:
        fields = dict(payload["kill"])
        fields["at"] = _dt.datetime.fromisoformat(fields["at"])
        return KillEvent(**fields)
    return Notice(
        event_id,
        str(payload.get("type")),
        _dt.datetime.fromisoformat(payload["at"]),
        dict(payload.get("data") or {}),
    )


def route_of(payload: dict) -> str:
    return str(payload.get("route") or "feed")
