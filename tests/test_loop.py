"""taskcog.engine.tasks beyond ext.tasks: supervision, overlap, catch-up, cron/once, status.

Every test runs on a VirtualTimeLoop: hours of schedule pass in milliseconds, deterministically.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest

from taskcog.engine import schedules, tasks
from taskcog.engine.supervision import Outcome, RetryPolicy, State
from taskcog.engine.testing import DEFAULT_EPOCH, VirtualClock, run_virtual

EPOCH = DEFAULT_EPOCH  # 2026-01-01 00:00 UTC


def secs(when: dt.datetime) -> float:
    """Virtual seconds since the epoch, for readable assertions."""
    return (when - EPOCH).total_seconds()


class HTTPError(Exception):
    """Shaped like discord.HTTPException: a status (and, for 429, a retry_after)."""

    def __init__(self, status: int, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        if retry_after is not None:
            self.retry_after = retry_after


def test_failed_iteration_backs_off_and_recovers() -> None:
    async def main() -> None:
        clock = VirtualClock()
        runs: list[float] = []
        errors: list[BaseException] = []
        failing_seen: list[bool] = []

        @tasks.loop(seconds=60, count=2, clock=clock, rng=random.Random(7))
        async def job() -> None:
            runs.append(secs(clock.now()))
            if len(runs) <= 2:
                raise ValueError(f"boom {len(runs)}")

        @job.error
        async def on_error(exc: BaseException) -> None:
            errors.append(exc)
            failing_seen.append(job.failed())

        await job.start()
        assert [str(e) for e in errors] == ["boom 1", "boom 2"]
        assert failing_seen == [True, True]
        first_retry, second_retry = runs[1] - runs[0], runs[2] - runs[1]
        assert 0 <= first_retry <= 1.0 and 0 <= second_retry <= 2.0  # full jitter, base 1s
        assert first_retry + second_retry > 0
        # The retried tick was tick 0, so the next run is on the grid, not 60s after the retry.
        assert runs[3] == 60.0
        assert job.status.consecutive_failures == 0
        assert job.status.total_failures == 2
        assert job.status.last_error is not None and job.status.last_error.message == "boom 2"
        assert "ValueError" in job.status.last_error.traceback
        assert not job.failed()

    run_virtual(main)


def test_circuit_opens_after_threshold_and_alerts_once() -> None:
    async def main() -> None:
        clock = VirtualClock()
        calls = 0
        alerts: list[tuple[object, int, str]] = []
        hooked: list[str] = []

        def alert(loop: tasks.Loop, status: object, exc: BaseException) -> None:
            alerts.append((loop, status.consecutive_failures, str(exc)))  # type: ignore[attr-defined]

        @tasks.loop(seconds=10, failure_threshold=3, on_circuit_open=alert, clock=clock)
        async def job() -> None:
            nonlocal calls
            calls += 1
            raise RuntimeError("database gone")

        @job.circuit_open
        async def on_open(status: object, exc: BaseException) -> None:
            hooked.append(str(exc))

        job.start()
        await asyncio.sleep(3600)  # an hour of virtual time: parked after the 3rd failure
        assert calls == 3
        assert alerts == [(job, 3, "database gone")]
        assert hooked == ["database gone"]
        assert job.status.state is State.CIRCUIT_OPEN
        assert job.is_running() and job.failed() and job.next_iteration is None
        # start() on a parked loop closes the circuit and resumes the same task.
        task = job.get_task()
        assert job.start() is task
        await asyncio.sleep(3600)
        # A fresh count: three more failures re-open it, and that opening alerts once more.
        assert calls == 6 and len(alerts) == 2 and len(hooked) == 2
        assert job.status.restarts == 1 and job.status.total_failures == 6
        job.cancel()
        await asyncio.gather(task, return_exceptions=True)

    run_virtual(main)


def test_overlapping_failures_alert_once() -> None:
    async def main() -> None:
        clock = VirtualClock()
        launched: list[float] = []
        alerts: list[str] = []

        # A fixed rng: with some backoff draws (2 seeds in 60) the 5 s launch's retry lands after
        # 6 s and fails once more, so the counts below would depend on chance.
        @tasks.loop(seconds=1, overlap=True, failure_threshold=2, clock=clock,
                    on_circuit_open=lambda loop, status, exc: alerts.append(str(exc)),
                    rng=random.Random(1))  # fmt: skip
        async def job() -> None:
            started = secs(clock.now())
            launched.append(started)
            await asyncio.sleep(5)
            raise RuntimeError(f"launched at {started:.0f}")

        job.start()
        await asyncio.sleep(600)
        # The failure at 5s holds the 5s launch for its backoff (< 1s); the one at 6s opens the
        # circuit, so nothing more launches, and the failures still in flight only count.
        assert launched[:5] == [0.0, 1.0, 2.0, 3.0, 4.0] and 5.0 < launched[5] < 6.0
        assert alerts == ["launched at 1"]
        assert job.status.total_failures == 6 and job.status.state is State.CIRCUIT_OPEN
        job.cancel()
        await asyncio.gather(job.get_task(), return_exceptions=True)

    run_virtual(main)


def test_restart_closes_circuit() -> None:
    async def main() -> None:
        clock = VirtualClock()
        healthy = False
        runs: list[float] = []
        befores = afters = 0

        @tasks.loop(seconds=30, failure_threshold=2, clock=clock)
        async def job() -> None:
            runs.append(secs(clock.now()))
            if not healthy:
                raise KeyError("missing")

        @job.before_loop
        async def before() -> None:
            nonlocal befores
            befores += 1

        @job.after_loop
        async def after() -> None:
            nonlocal afters
            afters += 1

        job.start()
        await asyncio.sleep(600)
        assert job.status.state is State.CIRCUIT_OPEN and len(runs) == 2
        job.restart()  # still broken: a fresh circuit takes two new failures to open again
        await asyncio.sleep(600)
        assert job.status.state is State.CIRCUIT_OPEN and len(runs) == 4
        assert (befores, afters) == (2, 1)
        del runs[:]
        healthy = True
        restart_at = secs(clock.now())
        job.restart()
        await asyncio.sleep(45)
        assert (befores, afters) == (3, 2)
        assert runs == [restart_at, restart_at + 30]
        assert job.status.state is State.SLEEPING
        assert job.status.restarts == 2 and not job.failed()
        job.cancel()
        await asyncio.gather(job.get_task(), return_exceptions=True)

    run_virtual(main)


@pytest.mark.parametrize("kind", ["http-429", "discord.RateLimited"])
def test_rate_limit_waits_retry_after_and_is_not_a_failure(kind: str) -> None:
    discord = pytest.importorskip("discord")

    async def main() -> None:
        clock = VirtualClock()
        runs: list[float] = []
        errors: list[BaseException] = []

        @tasks.loop(minutes=5, count=2, clock=clock)
        async def job() -> None:
            runs.append(secs(clock.now()))
            if len(runs) == 1:
                raise HTTPError(429, 7.5) if kind == "http-429" else discord.RateLimited(7.5)

        @job.error
        async def on_error(exc: BaseException) -> None:
            errors.append(exc)

        await job.start()
        assert runs == [0.0, 7.5, 300.0]
        assert errors == []
        assert job.status.total_failures == 0 and job.status.last_error is None

    run_virtual(main)


def test_server_error_is_transient() -> None:
    async def main() -> None:
        clock = VirtualClock()
        calls = 0
        errors: list[BaseException] = []

        @tasks.loop(seconds=1, count=1, failure_threshold=2, clock=clock)
        async def job() -> None:
            nonlocal calls
            calls += 1
            if calls <= 5:
                raise HTTPError(503)

        @job.error
        async def on_error(exc: BaseException) -> None:
            errors.append(exc)

        await job.start()
        assert calls == 6  # five 503s never opened a circuit with threshold 2
        assert len(errors) == 5
        assert job.status.transient_errors == 5 and job.status.total_failures == 0
        assert job.status.state is State.FINISHED

    run_virtual(main)


def test_reconnect_list_retries_quietly_and_reconnect_false_reports() -> None:
    async def main() -> None:
        clock = VirtualClock()
        errors: list[BaseException] = []

        async def flaky_body(fails: list[BaseException]) -> None:
            if fails:
                raise fails.pop(0)

        pending = [OSError("reset"), LookupError("custom"), LookupError("custom")]

        @tasks.loop(seconds=5, count=1, failure_threshold=1, clock=clock)
        async def quiet() -> None:
            await flaky_body(pending)

        quiet.add_exception_type(LookupError)

        @quiet.error
        async def on_error(exc: BaseException) -> None:
            errors.append(exc)

        await quiet.start()
        assert pending == [] and errors == []  # retried, no hook, threshold 1 never tripped
        assert quiet.status.transient_errors == 3

        loud_pending = [OSError("reset")]

        @tasks.loop(seconds=5, count=1, reconnect=False, clock=clock)
        async def loud() -> None:
            await flaky_body(loud_pending)

        loud.error(on_error)
        await loud.start()
        assert [type(e) for e in errors] == [OSError]
        assert loud.status.iterations == 2

    run_virtual(main)


def test_timeout_cancels_iteration_and_counts_failure() -> None:
    async def main() -> None:
        clock = VirtualClock()
        cancelled: list[float] = []
        errors: list[BaseException] = []

        @tasks.loop(seconds=60, count=1, timeout=5, clock=clock, rng=random.Random(1))
        async def job() -> None:
            if not cancelled:
                try:
                    await asyncio.sleep(600)
                except asyncio.CancelledError:
                    cancelled.append(secs(clock.now()))
                    raise

        @job.error
        async def on_error(exc: BaseException) -> None:
            errors.append(exc)
            assert job.status.last_outcome is Outcome.TIMEOUT

        await job.start()
        assert cancelled == [5.0]
        assert len(errors) == 1 and isinstance(errors[0], asyncio.TimeoutError)
        assert job.status.total_failures == 1 and job.status.last_outcome is Outcome.OK

    run_virtual(main)


async def _record_concurrency(overlap: bool | int, count: int) -> tuple[list[float], int]:
    clock = VirtualClock()
    starts: list[float] = []
    running = peak = 0

    @tasks.loop(seconds=10, count=count, overlap=overlap, clock=clock)
    async def job() -> None:
        nonlocal running, peak
        starts.append(secs(clock.now()))
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(35 if overlap is not False else 25)
        running -= 1

    await job.start()
    assert running == 0  # the loop waited for its overlapping iterations before ending
    return starts, peak


def test_overlap_false_waits() -> None:
    starts, peak = run_virtual(lambda: _record_concurrency(False, 4))
    assert peak == 1
    assert starts == [0.0, 25.0, 50.0, 75.0]  # each waits for the previous, one catch-up each


def test_overlap_int_caps_concurrency() -> None:
    starts, peak = run_virtual(lambda: _record_concurrency(2, 5))
    assert peak == 2
    assert starts == [0.0, 10.0, 35.0, 45.0, 70.0]  # a tick waits for a free slot
    starts, peak = run_virtual(lambda: _record_concurrency(True, 6))
    assert peak == 4
    assert starts == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]


@pytest.mark.parametrize(
    ("catch_up", "count", "expected"),
    [
        ("coalesce", 4, [0.0, 35.0, 40.0, 50.0]),
        ("skip", 3, [0.0, 40.0, 50.0]),
        ("all", 6, [0.0, 35.0, 35.0, 35.0, 40.0, 50.0]),
    ],
)
def test_catch_up_coalesce_skip_all(catch_up: str, count: int, expected: list[float]) -> None:
    async def main() -> list[float]:
        clock = VirtualClock()
        starts: list[float] = []

        @tasks.loop(seconds=10, count=count, catch_up=catch_up, clock=clock)  # type: ignore
        async def job() -> None:
            starts.append(secs(clock.now()))
            if len(starts) == 1:
                await asyncio.sleep(35)  # overruns ticks 10, 20 and 30

        await job.start()
        return starts

    assert run_virtual(main) == expected


def test_following_tick_policies() -> None:
    every = schedules.IntervalSchedule(10)
    last, now = EPOCH, EPOCH + dt.timedelta(seconds=35)
    at = {p: secs(tasks.following_tick(every, last, now, p)) for p in ("coalesce", "skip", "all")}
    assert at == {"coalesce": 30.0, "skip": 40.0, "all": 10.0}
    # On time: every policy just takes the next tick.
    on_time = EPOCH + dt.timedelta(seconds=4)
    assert {secs(tasks.following_tick(every, last, on_time, p)) for p in at} == {10.0}
    once = schedules.OnceSchedule(EPOCH + dt.timedelta(hours=1))
    assert tasks.following_tick(once, once.at, now + dt.timedelta(hours=2)) is None


def test_change_interval_before_first_run() -> None:
    async def main() -> None:
        clock = VirtualClock()
        runs: list[float] = []

        @tasks.loop(time=dt.time(9, 0), clock=clock)
        async def job() -> None:
            runs.append(secs(clock.now()))

        job.start()
        await asyncio.sleep(3600)
        assert runs == [] and job.next_iteration == EPOCH + dt.timedelta(hours=9)
        job.change_interval(minutes=30)  # at 01:00, before the first run: applies at once
        await asyncio.sleep(3600 + 1)
        assert runs == [3600.0, 5400.0, 7200.0]
        job.change_interval(seconds=100)  # while sleeping: the pending sleep is rescheduled
        assert job.next_iteration == EPOCH + dt.timedelta(seconds=7300)
        await asyncio.sleep(100)
        assert runs[-1] == 7300.0
        job.cancel()
        await asyncio.gather(job.get_task(), return_exceptions=True)

    run_virtual(main)


def test_time_mode_retry_runs_body_once() -> None:
    async def main() -> None:
        clock = VirtualClock()
        runs: list[float] = []

        @tasks.loop(time=[dt.time(9, 0), dt.time(21, 0)], count=3, clock=clock)
        async def job() -> None:
            runs.append(secs(clock.now()) / 3600)
            if len(runs) == 1:
                raise ConnectionResetError("flaky network")  # handled by reconnect

        await job.start()
        assert runs[0] == 9.0 and 9.0 <= runs[1] < 9.01  # retried quickly for the 09:00 tick
        assert runs[2:] == [21.0, 33.0]  # 21:00 ran once, then 09:00 the next day

    run_virtual(main)


def test_time_accepts_zoneinfo_and_utc_mixed() -> None:
    async def main() -> None:
        clock = VirtualClock()
        runs: list[dt.datetime] = []
        berlin = ZoneInfo("Europe/Berlin")

        @tasks.loop(time=[dt.time(9, 0, tzinfo=berlin), dt.time(9, 0)], count=3, clock=clock)
        async def job() -> None:
            runs.append(clock.now())

        assert len(job.time) == 2
        await job.start()
        assert [secs(r) / 3600 for r in runs] == [8.0, 9.0, 32.0]  # 09:00 CET is 08:00 UTC

    run_virtual(main)


def test_cron_loop() -> None:
    async def main() -> None:
        clock = VirtualClock()
        runs: list[dt.datetime] = []

        @tasks.loop(cron="*/15 * * * *", tz="Asia/Kolkata", count=4, clock=clock)
        async def job() -> None:
            runs.append(clock.now())

        await asyncio.sleep(7 * 60)
        await job.start()
        # +05:30 keeps quarter hours on quarter hours.
        assert [secs(r) / 60 for r in runs] == [15.0, 30.0, 45.0, 60.0]

        @tasks.loop(cron="0 9 * * *", tz="Europe/Berlin", count=1, clock=clock)
        async def daily() -> None:
            runs.append(clock.now())

        await daily.start()
        assert runs[-1] == dt.datetime(2026, 1, 1, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))

    run_virtual(main)


def test_once_loop_finishes() -> None:
    async def main() -> None:
        clock = VirtualClock()
        runs: list[float] = []
        ended: list[float] = []

        @tasks.loop(at=EPOCH + dt.timedelta(minutes=90), clock=clock)
        async def job() -> None:
            runs.append(secs(clock.now()))

        @job.after_loop
        async def after() -> None:
            ended.append(secs(clock.now()))

        await job.start()
        assert runs == [5400.0] and ended == [5400.0]
        assert job.status.state is State.FINISHED and not job.is_running()

    run_virtual(main)


def test_schedule_from_parse_spec_with_jitter() -> None:
    async def main() -> None:
        clock = VirtualClock()
        runs: list[float] = []
        spec = schedules.parse_spec("every 1m jitter 10s")

        @tasks.loop(schedule=spec, count=4, clock=clock, rng=random.Random(3))
        async def job() -> None:
            runs.append(secs(clock.now()))

        await job.start()
        # Jitter delays each run by [0, 10s) but never shifts the grid.
        for index, at in enumerate(runs):
            assert 60 * index <= at < 60 * index + 10
        assert len(set(at - 60 * i for i, at in enumerate(runs))) > 1

    run_virtual(main)


def test_count() -> None:
    async def main() -> None:
        clock = VirtualClock()
        runs: list[float] = []
        seen: list[int] = []
        ended: list[float] = []

        @tasks.loop(seconds=5, count=3, clock=clock)
        async def job() -> None:
            runs.append(secs(clock.now()))
            seen.append(job.current_loop)

        @job.after_loop
        async def after() -> None:
            ended.append(secs(clock.now()))

        await job.start()
        assert runs == [0.0, 5.0, 10.0] and seen == [0, 1, 2]
        assert ended == [10.0] and job.current_loop == 0
        with pytest.raises(ValueError):
            tasks.loop(seconds=5, count=0)(job.coro)

    run_virtual(main)


def test_before_after_hooks() -> None:
    async def main() -> None:
        clock = VirtualClock()
        order: list[str] = []

        @tasks.loop(seconds=10, clock=clock)
        async def job() -> None:
            order.append("body")

        @job.before_loop
        async def before() -> None:
            order.append("before")
            await asyncio.sleep(3)  # e.g. wait_until_ready

        @job.after_loop
        async def after() -> None:
            order.append(f"after cancelled={job.is_being_cancelled()}")

        job.start()
        await asyncio.sleep(14)
        job.cancel()
        await asyncio.gather(job.get_task(), return_exceptions=True)
        assert order == ["before", "body", "body", "after cancelled=True"]

        order.clear()

        @job.before_loop
        async def stop_early() -> None:
            order.append("before")
            job.stop()

        await job.start()
        assert order == ["before", "after cancelled=False"]
        with pytest.raises(TypeError):
            job.after_loop(lambda: None)  # type: ignore[arg-type]

    run_virtual(main)


def test_per_instance_binding() -> None:
    async def main() -> None:
        clock = VirtualClock()
        seen: list[tuple[str, str]] = []

        class Cog:
            def __init__(self, name: str) -> None:
                self.name = name

            @tasks.loop(seconds=10, count=2, clock=clock)
            async def poll(self) -> None:
                seen.append(("body", self.name))
                if self.name == "b" and len([s for s in seen if s == ("body", "b")]) == 1:
                    raise ValueError("b failed once")

            @poll.before_loop
            async def before_poll(self) -> None:
                seen.append(("before", self.name))

            @poll.error
            async def poll_error(self, exc: BaseException) -> None:
                seen.append(("error", f"{self.name}: {exc}"))

        a, b = Cog("a"), Cog("b")
        assert a.poll is not b.poll and a.poll is a.poll  # each instance keeps its own Loop
        assert Cog.poll is not a.poll
        await asyncio.gather(a.poll.start(), b.poll.start())
        assert seen.count(("body", "a")) == 2 and seen.count(("body", "b")) == 3
        assert ("error", "b: b failed once") in seen
        assert ("before", "a") in seen and ("before", "b") in seen
        assert a.poll.status is not b.poll.status
        assert b.poll.status.total_failures == 1 and a.poll.status.total_failures == 0

    run_virtual(main)


def test_status_percentiles() -> None:
    async def main() -> None:
        clock = VirtualClock()
        durations = iter(range(1, 102))

        @tasks.loop(seconds=500, count=101, clock=clock)
        async def job() -> None:
            await asyncio.sleep(next(durations))

        job.start()
        await asyncio.sleep(250)
        status = job.status
        assert status.state is State.SLEEPING and status.next_run == EPOCH + dt.timedelta(
            seconds=500
        )
        await job.get_task()
        assert status.iterations == 101
        assert status.p50 == 51 and status.p95 == 96
        assert status.last_duration == 101
        assert status.last_start == EPOCH + dt.timedelta(seconds=50000)
        assert status.last_end == EPOCH + dt.timedelta(seconds=50101)
        assert status.snapshot()["state"] == "finished"

    run_virtual(main)


def test_stop_lets_iteration_finish() -> None:
    async def main() -> None:
        clock = VirtualClock()
        events: list[str] = []

        @tasks.loop(seconds=60, clock=clock)
        async def job() -> None:
            events.append(f"start {secs(clock.now()):.0f}")
            await asyncio.sleep(30)
            events.append(f"end {secs(clock.now()):.0f}")

        @job.after_loop
        async def after() -> None:
            events.append(f"after {secs(clock.now()):.0f}")

        job.start()
        await asyncio.sleep(10)
        job.stop()
        assert job.next_iteration is None
        await job.get_task()
        assert events == ["start 0", "end 30", "after 30"]
        assert job.status.state is State.STOPPED

        events.clear()
        job.start()
        await asyncio.sleep(45)  # now sleeping until 60s after the restart
        stopped_at = secs(clock.now())
        job.stop()
        await job.get_task()
        assert events[-1] == f"after {stopped_at:.0f}" and len(events) == 3  # no wait for 60s

    run_virtual(main)


def test_cancel() -> None:
    async def main() -> None:
        clock = VirtualClock()
        events: list[str] = []

        @tasks.loop(seconds=60, clock=clock)
        async def job() -> None:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                events.append("body cancelled")
                raise

        @job.after_loop
        async def after() -> None:
            events.append(f"after being_cancelled={job.is_being_cancelled()}")

        job.start()
        await asyncio.sleep(10)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job.get_task()
        assert events == ["body cancelled", "after being_cancelled=True"]
        assert not job.is_running() and not job.is_being_cancelled()
        assert job.status.state is State.STOPPED
        assert job.status.last_outcome is Outcome.CANCELLED

    run_virtual(main)


def test_start_twice_raises_and_bad_arguments() -> None:
    async def main() -> None:
        @tasks.loop(seconds=1, clock=VirtualClock())
        async def job() -> None:
            pass

        job.start()
        with pytest.raises(RuntimeError):
            job.start()
        job.cancel()
        await asyncio.gather(job.get_task(), return_exceptions=True)

    run_virtual(main)

    async def body() -> None:
        pass

    with pytest.raises(TypeError):
        tasks.loop(seconds=5, cron="* * * * *")(body)
    with pytest.raises(TypeError):
        tasks.loop(time=dt.time(1), at=EPOCH)(body)
    with pytest.raises(ValueError):
        tasks.loop(cron="not a cron")(body)
    with pytest.raises(ValueError):
        tasks.loop(seconds=1, catch_up="later")(body)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        tasks.loop(seconds=1, overlap=0)(body)
    assert tasks.loop(seconds=1, retry_policy=RetryPolicy(base=2))(body).policy.base == 2


async def test_runs_on_the_real_clock() -> None:
    loop_time = asyncio.get_running_loop().time
    runs: list[float] = []

    @tasks.loop(seconds=0.02, count=3)
    async def job() -> None:
        runs.append(loop_time())

    await job.start()
    assert len(runs) == 3
    assert runs[2] - runs[0] >= 0.04 - 0.002  # call_later may fire a tick early by its resolution


def test_engine_imports_nothing_from_discord_or_red() -> None:
    import ast
    from pathlib import Path

    tree = ast.parse(Path(tasks.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name.split(".")[0] for name in imported} & {"discord", "redbot", "aiohttp"}
