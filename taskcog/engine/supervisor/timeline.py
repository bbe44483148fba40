"""Due times: a binary heap plus a few sorted lanes.

Most jobs are interval jobs: their entries come due in order and each run pushes the next one
(fire + interval) in that same order, so it can be appended to a sorted deque (a lane) instead
of pushed on the heap. A lane's append and pop touch only its ends; a 30k-entry heap walks ~15
levels of entries gone cold since the last wake-up on every pop. An entry that fits the end of
no lane goes on the heap. The earliest entry is the least of the heap's root and lane heads.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Callable

from .jobs import _Entry

_MAX_LANES = 4  # one per distinct interval in use is plenty; more only adds compares per pop


class _Timeline:
    """The supervisor's due entries, earliest first; stale entries stay until they come due."""

    __slots__ = ("heap", "lanes")

    def __init__(self) -> None:
        self.heap: list[_Entry] = []
        self.lanes: list[deque[_Entry]] = []  # each sorted, none empty

    def __len__(self) -> int:
        return len(self.heap) + sum(map(len, self.lanes))

    def __bool__(self) -> bool:
        return bool(self.heap or self.lanes)

    def push(self, entry: _Entry) -> None:
        """Append to the lane whose last entry is the latest not after ``entry`` (so lanes
        stay tight), start a lane while there are few, else push on the heap."""
        best = None
        tail = -1.0
        for lane in self.lanes:
            last = lane[-1]
            if tail < last <= entry:
                best, tail = lane, last
        if best is not None:
            best.append(entry)
        elif len(self.lanes) < _MAX_LANES:
            self.lanes.append(deque((entry,)))
        else:
            heapq.heappush(self.heap, entry)

    def first(self) -> _Entry | None:
        """The earliest entry, or None when there is none."""
        heap = self.heap
        head = heap[0] if heap else None
        for lane in self.lanes:
            if head is None or lane[0] < head:
                head = lane[0]
        return head

    def take(self, now: float) -> list[_Entry]:
        """Remove and return every entry due at ``now``, earliest first."""
        heap = self.heap
        due: list[_Entry] = []
        sources = 0
        if heap and heap[0] <= now:
            sources = 1
            pop = heapq.heappop
            while heap and heap[0] <= now:
                due.append(pop(heap))
        emptied = False
        for lane in self.lanes:
            if lane[0] <= now:
                sources += 1
                popleft = lane.popleft
                while lane and lane[0] <= now:
                    due.append(popleft())
                emptied = emptied or not lane
        if sources > 1:
            due.sort()  # merge; ties keep their order (an entry is a float: compared in C)
        if emptied:
            self.lanes = [lane for lane in self.lanes if lane]
        return due

    def last_within(self, head: float, limit: float) -> float:
        """The latest entry due by ``limit``; ``head`` if none is later."""
        target = head
        for lane in self.lanes:
            for when in lane:
                if when > limit:
                    break
                target = when
        heap = self.heap
        size = len(heap)
        todo = [0]  # the entries due by ``limit`` form a subtree at the heap's root
        while todo:
            i = todo.pop()
            if i < size:
                when = heap[i]
                if when <= limit:
                    if when > target:
                        target = when
                    todo.append(2 * i + 1)
                    todo.append(2 * i + 2)
        return target

    def keep(self, live: Callable[[_Entry], bool]) -> None:
        """Drop the entries ``live`` rejects (the stale ones), keeping the order."""
        self.heap = [e for e in self.heap if live(e)]
        heapq.heapify(self.heap)
        lanes = (deque(e for e in lane if live(e)) for lane in self.lanes)
        self.lanes = [lane for lane in lanes if lane]
