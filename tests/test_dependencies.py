"""Task dependencies (after, requires) and cycle refusal, on virtual time."""

from __future__ import annotations

import asyncio
from typing import Any, Hashable

import pytest

from taskcog.engine.schedules import AfterSchedule, IntervalSchedule, ScheduleError, parse_spec
from taskcog.engine.supervision import RetryPolicy, State
from taskcog.engine.supervisor import JobContext, JobSpec, Requirement, Supervisor, TaskDefinition
from taskcog.engine.testing import VirtualClock, run_virtual


def vt() -> float:
    return asyncio.get_running_loop().time()


class Task:
    """A definition whose runs are logged as (key, virtual time); ``fail`` keys raise."""

    def __init__(
        self,
        name: str,
        schedule: Any,
        keys: list[Hashable] | None = None,
        **kw: Any,
    ) -> None:
        self.name = name
        self.keys = keys if keys is not None else [1, 2]
        self.schedule = schedule
        self.runs: list[tuple[Hashable, float]] = []
        self.fail: set[Hashable] = set()
        self.definition = TaskDefinition(
            name=name,
            run=self.run,
            provider=lambda key: JobSpec(True, self.schedule),
            keys=lambda: list(self.keys),
            spread=False,
            **kw,
        )

    async def run(self, ctx: JobContext) -> None:
        self.runs.append((ctx.key, round(vt(), 3)))
        if ctx.key in self.fail:
            raise RuntimeError(f"{self.name} broke")

    def times(self, key: Hashable) -> list[float]:
        return [t for k, t in self.runs if k == key]


def _supervisor() -> Supervisor:
    return Supervisor(clock=VirtualClock())


def test_after_runs_each_time_its_leader_succeeds_for_the_same_key() -> None:
    feed = Task("feed", IntervalSchedule(60))
    board = Task("board", AfterSchedule("feed", min_gap=0))

    async def scenario() -> tuple[Any, ...]:
        sup = _supervisor()
        sup.add(feed.definition)
        sup.add(board.definition)
        await sup.start()
        await asyncio.sleep(150)
        feed.fail.add(2)  # from now on key 2's feed fails: its board must not run
        await asyncio.sleep(120)
        state = sup.get_status("board", 1)
        await sup.shutdown()
        return state

    state = run_virtual(scenario)
    assert feed.times(1) == [0.0, 60.0, 120.0, 180.0, 240.0]
    assert board.times(1) == feed.times(1)  # right after each success, same key only
    assert board.times(2) == [0.0, 60.0, 120.0]  # key 2's feed failed from t=180 on
    assert state.state is State.SLEEPING and state.next_run is None
    assert state.depends_on == "after feed"


def test_declared_after_adds_runs_to_its_own_schedule_and_min_gap_limits_them() -> None:
    feed = Task("feed", IntervalSchedule(20), keys=[None])
    digest = Task("digest", IntervalSchedule(1000), keys=[None], after="feed")
    note = Task("note", AfterSchedule("feed"), keys=[None])  # at most once a minute

    async def scenario() -> Any:
        sup = _supervisor()
        for task in (feed, digest, note):
            sup.add(task.definition)
        await sup.start()
        await asyncio.sleep(130)
        status = sup.get_status("note", None)
        await sup.shutdown()
        return status

    status = run_virtual(scenario)
    assert feed.times(None) == [0, 20, 40, 60, 80, 100, 120]
    assert digest.times(None)[0] == 0 and set(feed.times(None)) <= set(digest.times(None))
    assert note.times(None) == [0, 60, 120]
    assert status.skipped == 4 and "ran less than 1m ago" in status.last_skip


def test_requires_runs_only_while_the_required_task_is_fresh_and_skips_with_a_reason() -> None:
    feed = Task("feed", IntervalSchedule(60), keys=[1])
    board = Task(
        "board", IntervalSchedule(300), keys=[1], requires=Requirement("feed", intervals=2)
    )

    async def scenario() -> list[Any]:
        # Failures retry within 30 s and never open the circuit: feed recovers by itself.
        sup = Supervisor(
            clock=VirtualClock(), policy=RetryPolicy(cap=30.0, failure_threshold=1000)
        )
        sup.add(feed.definition)
        sup.add(board.definition)
        await sup.start()
        await asyncio.sleep(300.5)  # board at 0: feed's first run is not done yet; at 300: ok
        feed.fail.add(1)
        await asyncio.sleep(600)  # board at 600 and 900: feed last ok at 300, > 2 intervals
        seen = [sup.get_status("board", 1)]
        feed.fail.clear()
        await asyncio.sleep(300)  # feed recovers within 30 s; board at 1200 runs
        seen.append(sup.get_status("board", 1))
        await sup.shutdown()
        return seen

    skipped, recovered = run_virtual(scenario)
    assert board.times(1) == [300.0, 1200.0]
    assert skipped.skipped == 3 and skipped.consecutive_failures == 0
    assert skipped.state is State.SLEEPING
    assert skipped.last_skip == "feed last succeeded 10m ago, not within 2m"
    assert skipped.depends_on == "requires feed ok within 2 intervals"
    assert recovered.skipped == 3 and recovered.total_failures == 0


def test_requires_a_task_that_never_succeeded_skips_and_says_so() -> None:
    feed = Task("feed", IntervalSchedule(60), keys=[1])
    feed.fail.add(1)
    board = Task("board", IntervalSchedule(60), keys=[1], requires="feed")

    async def scenario() -> Any:
        sup = _supervisor()
        sup.add(feed.definition)
        sup.add(board.definition)
        await sup.start()
        await asyncio.sleep(30)
        status = sup.get_status("board", 1)
        await sup.shutdown()
        return status

    status = run_virtual(scenario)
    assert board.runs == [] and status.last_skip == "feed has not succeeded yet"


def test_cycles_are_refused_when_declared() -> None:
    sup = _supervisor()
    a = Task("a", IntervalSchedule(60), after="c")
    b = Task("b", IntervalSchedule(60), after="a")
    c = Task("c", IntervalSchedule(60), requires="b")
    sup.add(a.definition)
    sup.add(b.definition)
    with pytest.raises(ValueError, match=r"^dependency cycle refused: c -> b -> a -> c$"):
        sup.add(c.definition)
    assert "c" not in sup.definitions()
    with pytest.raises(ValueError, match="self -> self"):
        sup.add(Task("self", IntervalSchedule(60), after="self").definition)
    assert sup.dependency_cycle("a", "b") == "a -> b -> a"
    assert sup.dependency_cycle("d", "b") is None  # a new task may follow b


def test_an_after_schedule_that_closes_a_cycle_waits_in_needs_setup() -> None:
    x = Task("ex", AfterSchedule("wy"), keys=[1])
    y = Task("wy", AfterSchedule("ex"), keys=[1])

    async def scenario() -> tuple[Any, Any, str | None]:
        sup = _supervisor()
        sup.add(x.definition)
        await sup.start()
        await asyncio.sleep(1)
        sup.add(y.definition)  # fine for the definition; its job's schedule closes the loop
        await asyncio.sleep(1)
        cycle = sup.dependency_cycle("zed", "ex", 1)
        result = sup.get_status("ex", 1), sup.get_status("wy", 1), cycle
        await sup.shutdown()
        return result

    sx, sy, cycle = run_virtual(scenario)
    assert sx.state is State.SLEEPING
    assert sy.state is State.NEEDS_SETUP and "dependency cycle: wy -> ex -> wy" in sy.needs_setup
    assert cycle is None


def test_after_is_a_schedule_spec() -> None:
    schedule = parse_spec("after killfeed")
    assert isinstance(schedule, AfterSchedule) and schedule.spec == "after killfeed"
    assert schedule.preview(3) == []
    with pytest.raises(ScheduleError):
        parse_spec("after two words")
    with pytest.raises(ScheduleError):
        parse_spec("after Kill!feed")
