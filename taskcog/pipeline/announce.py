"""Killfeed announcements and the delayed feed: a pure reducer over kill events.

Per game server the state keeps each player's current kill streak (``streaks``: id -> [kills,
name]). A kill adds one to the killer's streak and ends the victim's; a suicide or a death with
no killer ends the victim's only. Posts, each with a stable id derived from the kill's:

- a **long shot** when a kill's distance is at least ``long_shot`` metres;
- a **streak** when a streak reaches one of ``streaks`` (5, 10, 20 by default);
- a **streak end** when a streak of at least ``streak_end`` kills ends;
- with a **delay**, the kill itself, due ``delay`` seconds after it was read.

Everything a kill causes is due at the same time as the kill, so a delayed feed's shout-outs
give no position away either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .events import KILL, SUICIDE, UNKNOWN, VEHICLE, KillEvent
from .livestore import Post, Reducer
from .notices import derived_id, kill_payload, notice_payload

DEATHS_FEED = "feed"
DEATHS_CHANNEL = "deaths"
DEATHS_HIDDEN = "hidden"
MAX_STREAKS = 5000


@dataclass(frozen=True)
class KillOptions:
    """A guild's killfeed options (``[p]taskset announce``, ``[p]taskset killfeed``)."""

    long_shot: float | None = 300.0
    streaks: tuple[int, ...] = (5, 10, 20)
    streak_end: int | None = 5
    delay: float = 0.0
    deaths: str = DEATHS_FEED  # where suicides and environmental deaths go
    show_distance: bool = True
    show_weapon: bool = True
    show_platform: bool = True

    @property
    def announces(self) -> bool:
        return bool(self.long_shot or self.streaks or self.streak_end)

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> KillOptions:
        """From a task's saved options (missing keys keep their defaults)."""
        known = {k: options[k] for k in cls.__dataclass_fields__ if k in options}
        if "streaks" in known:
            known["streaks"] = tuple(int(n) for n in known["streaks"] or ())
        return cls(**known)


def is_death(event: KillEvent) -> bool:
    """A suicide or an environmental death (no killer): routed by ``deaths``."""
    return event.kind in (SUICIDE, UNKNOWN)


def route(event: KillEvent, options: KillOptions) -> str:
    return options.deaths if is_death(event) else DEATHS_FEED


def kill_reducer(options: KillOptions, now: float) -> Reducer:
    """The reducer for :meth:`LiveStore.apply` over a server's kill events."""
    due = now + options.delay

    def reduce(state: dict[str, Any], events: list[KillEvent]) -> tuple[dict, list[Post]]:
        streaks: dict[str, list] = dict(state.get("streaks", {}))
        posts: list[Post] = []
        for event in events:
            where = route(event, options)
            if options.delay > 0 and where != DEATHS_HIDDEN:
                posts.append(Post(event.id, due, kill_payload(event, where)))
            posts.extend(_announcements(event, streaks, options, due))
        if len(streaks) > MAX_STREAKS:  # forget the smallest streaks first
            for pid, _ in sorted(streaks.items(), key=lambda kv: kv[1][0])[: len(streaks) // 2]:
                del streaks[pid]
        return {"streaks": streaks}, posts

    return reduce


def _announcements(
    event: KillEvent, streaks: dict[str, list], options: KillOptions, due: float
) -> list[Post]:
    posts: list[Post] = []
    ended = streaks.pop(event.victim_id, None)
    if ended and options.streak_end and ended[0] >= options.streak_end:
        posts.append(
            Post(
                derived_id("streak_end", event.id),
                due,
                notice_payload(
                    "streak_end", event.at, name=ended[1], kills=ended[0],
                    by=event.killer if event.kind in (KILL, VEHICLE) else None,
                ),  # fmt: skip
            )
        )
    if event.kind not in (KILL, VEHICLE) or not event.killer_id:
        return posts
    if options.long_shot and event.distance is not None and event.distance >= options.long_shot:
        posts.append(
            Post(
                derived_id("long_shot", event.id),
                due,
                notice_payload(
                    "long_shot", event.at, name=event.killer, victim=event.victim,
                    distance=event.distance, weapon=event.cause,
                ),  # fmt: skip
            )
        )
    count = streaks.get(event.killer_id, [0, event.killer])[0] + 1
    streaks[event.killer_id] = [count, event.killer]
    if count in options.streaks:
        posts.append(
            Post(
                derived_id("streak", event.id, count),
                due,
                notice_payload("streak", event.at, name=event.killer, kills=count),
            )
        )
    return posts
