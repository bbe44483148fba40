"""discord.ext.tasks and taskcog.engine.tasks side by side on the SAME virtual clock.

Both loops run on one VirtualTimeLoop; ext.tasks is made to read the virtual wall clock by
patching the ``datetime`` module it uses and ``discord.utils.compute_timedelta``/``utcnow``.
Where we mean to match ext.tasks the fire times must be equal; the intended divergences listed in
taskcog.engine.tasks' docstring are pinned here too, so a change to either side shows up.

ext.tasks reads the wall clock right after a timer fires; in real life that read is always a
little later than the deadline (and its ``time=`` lookup is inclusive, so it relies on that).
The patched clock models this: ext.tasks' wall-clock reads are 1 microsecond after the virtual
time. Fire times are compared to the millisecond.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import types
from typing import Any, Callable
from zoneinfo import ZoneInfo

import discord.ext.tasks as dpy_tasks
import discord.utils
import pytest

from taskcog.engine import tasks
from taskcog.engine.testing import DEFAULT_EPOCH, VirtualClock, run_virtual

UTC = dt.UTC
READ_LAG = dt.timedelta(microseconds=1)


@pytest.fixture(autouse=True)
def dpy_on_virtual_time(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = VirtualClock()

    class VirtualDatetime(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
            now = clock.now() + READ_LAG
            return now.astimezone(tz) if tz is not None else now.replace(tzinfo=None)

    shim = types.SimpleNamespace(
        datetime=VirtualDatetime,
        timedelta=dt.timedelta,
        time=dt.time,
        date=dt.date,
        timezone=dt.timezone,
    )

    def compute_timedelta(when: dt.datetime) -> float:
        return max((when - clock.now()).total_seconds(), 0)

    monkeypatch.setattr(dpy_tasks, "datetime", shim)
    monkeypatch.setattr(discord.utils, "compute_timedelta", compute_timedelta)
    monkeypatch.setattr(discord.utils, "utcnow", lambda: clock.now() + READ_LAG)


def ms(when: dt.datetime, epoch: dt.datetime = DEFAULT_EPOCH) -> float:
    return round((when - epoch).total_seconds(), 3)


Body = Callable[[list[dt.datetime]], Any]


async def _fires(make: Callable[[Any], Any], until: float, body: Body | None = None) -> list[Any]:
    """Run one loop built by ``make(decorator_module)`` until ``until`` virtual seconds."""
    fired: list[dt.datetime] = []
    clock = VirtualClock()

    async def record() -> None:
        fired.append(clock.now())
        if body is not None:
            await body(fired)

    loop = make(record)
    loop.start()
    await asyncio.sleep(until)
    loop.cancel()
    await asyncio.gather(loop.get_task(), return_exceptions=True)
    return fired


def both(
    dpy_kwargs: dict[str, Any],
    ours_kwargs: dict[str, Any] | None = None,
    *,
    until: float,
    body: Body | None = None,
    epoch: dt.datetime = DEFAULT_EPOCH,
    during: Callable[[Any, Any], Any] | None = None,
) -> tuple[list[float], list[float]]:
    """Fire times of ext.tasks and of ours for the same arguments, on one virtual clock."""
    ours_kwargs = {**dpy_kwargs, **(ours_kwargs or {})}

    async def main() -> tuple[list[float], list[float]]:
        clock = VirtualClock()
        made: list[Any] = []

        def make_dpy(fn: Any) -> Any:
            made.append(dpy_tasks.loop(**dpy_kwargs)(fn))
            return made[-1]

        def make_ours(fn: Any) -> Any:
            made.append(tasks.loop(**ours_kwargs, clock=clock)(fn))
            return made[-1]

        runs = [_fires(make_dpy, until, body), _fires(make_ours, until, body)]
        if during is not None:
            runs.append(during(made, clock))
        dpy_fired, ours_fired, *_ = await asyncio.gather(*runs)
        return [ms(f, epoch) for f in dpy_fired], [ms(f, epoch) for f in ours_fired]

    return run_virtual(main, epoch=epoch)


# --- where we match ext.tasks ---------------------------------------------------------------


def test_seconds_interval_matches() -> None:
    dpy, ours = both({"seconds": 10}, until=55)
    assert dpy == ours == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    dpy, ours = both({"seconds": 30, "minutes": 1}, until=400)
    assert dpy == ours == [0.0, 90.0, 180.0, 270.0, 360.0]


def test_time_list_in_utc_matches() -> None:
    times = [dt.time(1, 0), dt.time(13, 30), dt.time(22, 15)]
    dpy, ours = both({"time": times}, until=3 * 86400)
    assert dpy == ours
    assert [t / 3600 for t in ours[:4]] == [1.0, 13.5, 22.25, 25.0]
    assert len(ours) == 9


def test_time_in_zoneinfo_on_ordinary_days_matches() -> None:
    berlin, new_york = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
    dpy, ours = both({"time": [dt.time(8, 0, tzinfo=berlin), dt.time(20, 0, tzinfo=berlin)]},
                     until=2 * 86400)  # fmt: skip
    assert dpy == ours and [t / 3600 for t in ours] == [7.0, 19.0, 31.0, 43.0]
    dpy, ours = both({"time": dt.time(9, 45, tzinfo=new_york)}, until=3 * 86400)
    assert dpy == ours and [t / 3600 for t in ours] == [14.75, 38.75, 62.75]


def test_count_matches_fire_times() -> None:
    dpy, ours = both({"seconds": 7, "count": 3}, until=100)
    assert dpy == ours == [0.0, 7.0, 14.0]
    dpy, ours = both({"time": [dt.time(6), dt.time(18)], "count": 3}, until=5 * 86400)
    assert dpy == ours and len(ours) == 3


def test_count_ends_without_the_extra_sleep() -> None:
    async def main() -> tuple[float, float]:
        clock = VirtualClock()
        ended: dict[str, float] = {}

        async def body() -> None:
            pass

        dpy_loop = dpy_tasks.loop(seconds=10, count=2)(body)
        ours = tasks.loop(seconds=10, count=2, clock=clock)(body)
        for name, loop in (("dpy", dpy_loop), ("ours", ours)):
            loop.start().add_done_callback(lambda _, n=name: ended.setdefault(n, ms(clock.now())))
        await asyncio.gather(dpy_loop.get_task(), ours.get_task())
        return ended["dpy"], ended["ours"]

    assert run_virtual(main) == (20.0, 10.0)  # intended: ext.tasks sleeps once more


@pytest.mark.parametrize(
    ("new_seconds", "expected"),
    [(3, [0.0, 10.0, 20.0, 25.0, 26.0, 29.0, 32.0]), (20, [0.0, 10.0, 20.0, 40.0])],
)
def test_change_interval_after_start_matches(new_seconds: float, expected: list[float]) -> None:
    async def change_at_25(loops: list[Any], clock: VirtualClock) -> None:
        await asyncio.sleep(25)
        for loop in loops:
            loop.change_interval(seconds=new_seconds)

    dpy, ours = both({"seconds": 10}, until=45, during=change_at_25)
    assert dpy[: len(expected)] == ours[: len(expected)] == expected
    assert dpy == ours


def test_bad_arguments_raise_the_same() -> None:
    async def body() -> None:
        pass

    cases: list[dict[str, Any]] = [
        {"count": 0},
        {"seconds": -1},
        {"minutes": 1, "hours": -1},
        {"time": "09:00"},
        {"time": []},
        {"time": [dt.time(1), "02:00"]},
        {"seconds": 5, "time": dt.time(1)},
    ]
    for kwargs in cases:
        with pytest.raises((TypeError, ValueError)) as dpy_error:
            dpy_tasks.loop(**kwargs)(body)
        with pytest.raises(dpy_error.type) as ours_error:
            tasks.loop(**kwargs)(body)
        assert str(ours_error.value) == str(dpy_error.value), kwargs
    for loop_fn in (dpy_tasks.loop, tasks.loop):
        with pytest.raises(TypeError):
            loop_fn(seconds=1)(lambda: None)
        with pytest.raises(TypeError):
            loop_fn(seconds=1)(body).add_exception_type(42)


def test_read_only_properties_match() -> None:
    async def body() -> None:
        pass

    for kwargs in ({"seconds": 30, "minutes": 1}, {"time": [dt.time(9), dt.time(3)]}, {}):
        dpy_loop, ours = dpy_tasks.loop(**kwargs)(body), tasks.loop(**kwargs)(body)
        for attr in ("seconds", "minutes", "hours", "time", "count", "current_loop"):
            assert getattr(ours, attr) == getattr(dpy_loop, attr), (kwargs, attr)
        assert ours.next_iteration is dpy_loop.next_iteration is None
        assert ours.is_running() is dpy_loop.is_running() is False


# --- intended divergences -------------------------------------------------------------------


async def _overrun_once(fired: list[dt.datetime]) -> None:
    if len(fired) == 1:
        await asyncio.sleep(35)


def test_overrun_does_not_replay_ticks() -> None:
    dpy, ours = both({"seconds": 10}, until=55, body=_overrun_once)
    assert dpy == [0.0, 35.0, 35.0, 35.0, 40.0, 50.0]  # ext.tasks replays 10, 20 and 30
    assert ours == [0.0, 35.0, 40.0, 50.0]  # one catch-up, then back on the grid
    dpy, ours_all = both({"seconds": 10}, {"catch_up": "all"}, until=55, body=_overrun_once)
    assert ours_all == dpy


async def _fail_first(fired: list[dt.datetime]) -> None:
    if len(fired) == 1:
        raise ConnectionResetError("network blip")


def test_time_retry_does_not_double_run() -> None:
    dpy, ours = both({"time": [dt.time(9), dt.time(21)]}, until=34 * 3600, body=_fail_first)
    hours = [round(t / 3600, 2) for t in dpy]
    assert hours == [9.0, 21.0, 21.0, 33.0]  # ext.tasks: retried at 21:00, then ran 21:00 again
    assert ours[0] == 9 * 3600 and 9 * 3600 <= ours[1] < 9 * 3600 + 5  # retried for 09:00
    assert [t / 3600 for t in ours[2:]] == [21.0, 33.0]


def test_dst_gap_and_fold_rule() -> None:
    new_york = ZoneInfo("America/New_York")
    epoch = dt.datetime(2022, 3, 12, 12, tzinfo=UTC)
    dpy, ours = both({"time": dt.time(2, 30, tzinfo=new_york)}, until=2 * 86400, epoch=epoch)

    def local(t: float) -> str:
        return (epoch + dt.timedelta(seconds=t)).astimezone(new_york).strftime("%m-%d %H:%M %Z")

    assert [local(t) for t in dpy] == ["03-13 03:30 EDT", "03-14 02:30 EDT"]
    assert [local(t) for t in ours] == ["03-13 03:00 EDT", "03-14 02:30 EDT"]

    epoch = dt.datetime(2022, 11, 5, 12, tzinfo=UTC)
    dpy, ours = both({"time": dt.time(1, 30, tzinfo=new_york)}, until=86400, epoch=epoch)
    assert [local(t) for t in dpy] == ["11-06 01:30 EST"]  # the second 01:30
    assert [local(t) for t in ours] == ["11-06 01:30 EDT"]  # the first 01:30
