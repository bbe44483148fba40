"""The supervisor's timeline: a heap plus sorted lanes must hand out entries exactly as one
sorted list would, whatever order they were pushed in."""

from __future__ import annotations

import random

from taskcog.engine.supervisor.jobs import _Entry
from taskcog.engine.supervisor.timeline import _MAX_LANES, _Timeline


def _entry(when: float) -> _Entry:
    return _Entry(when)


def test_interval_pushes_in_due_order_stay_in_one_lane_off_the_heap() -> None:
    timeline = _Timeline()
    for i in range(1000):
        timeline.push(_entry(i * 0.03))
    assert len(timeline.lanes) == 1 and not timeline.heap
    due = timeline.take(10.0)
    assert due == sorted(due) and len(due) == 334
    # each run pushes its next fire (one interval on), in the order the fires came due
    for entry in due:
        timeline.push(_entry(entry + 30.0))
    assert len(timeline.lanes) == 1 and not timeline.heap and len(timeline) == 1000


def test_two_intervals_get_a_lane_each() -> None:
    timeline = _Timeline()
    timeline.push(_entry(30.0))
    timeline.push(_entry(60.0))
    for i in range(1, 100):
        timeline.push(_entry(30.0 + i * 0.01))
        timeline.push(_entry(60.0 + i * 0.01))
    assert len(timeline.lanes) == 2 and not timeline.heap


def test_any_push_order_takes_out_sorted_and_complete() -> None:
    rng = random.Random(8)
    timeline = _Timeline()
    reference: list[float] = []
    for _ in range(5000):
        when = rng.uniform(0.0, 100.0)
        timeline.push(_entry(when))
        reference.append(when)
    assert len(timeline.lanes) <= _MAX_LANES and timeline.heap  # the overflow went on the heap
    taken: list[float] = []
    for now in (0.5, 10.0, 10.0, 55.5, 99.0, 100.0):
        due = timeline.take(now)
        assert all(when <= now for when in due)
        assert due == sorted(due)
        first = timeline.first()
        assert first is None or first > now
        taken += due
        # interleave pushes while draining, as runs do
        for _ in range(50):
            when = rng.uniform(now, 120.0)
            timeline.push(_entry(when))
            reference.append(when)
    taken += timeline.take(200.0)
    assert taken == sorted(reference)
    assert not timeline and timeline.first() is None


def test_ties_come_out_next_to_each_other() -> None:
    timeline = _Timeline()
    for when in (5.0, 1.0, 5.0, 3.0, 5.0, 2.0):
        timeline.push(_entry(when))
    assert timeline.take(5.0) == [1.0, 2.0, 3.0, 5.0, 5.0, 5.0]


def test_last_within_sees_the_heap_and_every_lane() -> None:
    rng = random.Random(3)
    timeline = _Timeline()
    values = [rng.uniform(0.0, 10.0) for _ in range(2000)]
    for when in values:
        timeline.push(_entry(when))
    head = timeline.first()
    assert head == min(values)
    for width in (0.0, 0.003, 0.05, 1.0):
        expected = max(v for v in values if v <= head + width)
        assert timeline.last_within(head, head + width) == expected


def test_keep_drops_rejected_entries_and_keeps_order() -> None:
    rng = random.Random(5)
    timeline = _Timeline()
    entries = [_entry(rng.uniform(0.0, 10.0)) for _ in range(3000)]
    for entry in entries:
        timeline.push(entry)
    dropped = set(map(id, entries[::3]))
    timeline.keep(lambda e: id(e) not in dropped)
    assert len(timeline) == 2000
    assert timeline.take(10.0) == sorted(e for e in entries if id(e) not in dropped)
