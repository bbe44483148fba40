"""The tailing rules, on a real folder through LocalSource."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path

import pytest
from conftest import SHARED_DEADSIDE
from hypothesis import given, settings
from hypothesis import strategies as st

from taskcog.pipeline.sources import (
    KILLS,
    SERVER_LOG,
    Cursor,
    Layout,
    LocalSource,
    initial_cursor,
    poll,
)

LINE = b"2025.05.15-00.11.07;Killer;0002f2;Victim;0002c9;MR5;20;XSX;XSX;\n"


def kills(tmp_path: Path, *names: str) -> tuple[LocalSource, Layout]:
    world = tmp_path / "deathlogs" / "world_0"
    world.mkdir(parents=True, exist_ok=True)
    for name in names:
        (world / name).touch()
    files = sorted(str(world / name) for name in names)
    return LocalSource(str(tmp_path)), Layout(files)


def append(path: str | Path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


def write(path: str | Path, data: bytes) -> None:
    Path(path).write_bytes(data)


def payload(batch) -> bytes:
    return b"".join(chunk.data for chunk in batch.chunks)


async def test_unchanged_file_costs_one_stat_and_no_bytes(tmp_path):
    source, layout = kills(tmp_path, "2025.05.15-00.00.00.csv")
    append(layout.kill_files[0], LINE * 3)
    cursor = await initial_cursor(source, layout)
    source.reset_counters()
    for _ in range(3):
        batch = await poll(source, cursor, layout)
        assert batch.chunks == [] and batch.next_cursor == cursor
    assert (source.round_trips, source.bytes_read) == (3, 0)


async def test_partial_last_line_waits_for_the_next_poll(tmp_path):
    source, layout = kills(tmp_path, "2025.05.15-00.00.00.csv")
    path = layout.kill_files[0]
    cursor = await initial_cursor(source, layout)
    append(path, LINE + LINE[:20])
    batch = await poll(source, cursor, layout)
    assert [(c.start, c.data) for c in batch.chunks] == [(0, LINE)]
    assert batch.next_cursor.offset == len(LINE) and not batch.more

    source.reset_counters()
    batch = await poll(source, batch.next_cursor, layout)  # still incomplete: nothing
    assert batch.chunks == []
    assert (source.round_trips, source.bytes_read) == (1, 0)  # the partial line is not re-read
    append(path, LINE[20:])
    batch = await poll(source, batch.next_cursor, layout)
    assert [(c.start, c.data) for c in batch.chunks] == [(len(LINE), LINE)]


async def test_rotation_finishes_the_old_file_then_reads_the_new_one_from_zero(tmp_path):
    source, layout = kills(tmp_path, "2025.05.15-00.00.00.csv")
    old = layout.kill_files[0]
    append(old, LINE)
    cursor = await initial_cursor(source, layout)
    append(old, LINE + b"last;")  # the game never finishes this line
    _, layout = kills(tmp_path, "2025.05.15-00.00.00.csv", "2025.05.16-00.00.00.csv")
    new = layout.kill_files[1]
    append(new, LINE * 2)

    batch = await poll(source, cursor, layout)
    assert [(c.path, c.start, c.data) for c in batch.chunks] == [
        (old, len(LINE), LINE + b"last;"),
        (new, 0, LINE * 2),
    ]
    assert batch.next_cursor.path == new and batch.next_cursor.offset == len(LINE) * 2


async def test_catches_up_across_several_new_files_in_order(tmp_path):
    names = [f"2025.05.{day}-00.00.00.csv" for day in range(10, 15)]
    source, layout = kills(tmp_path, names[0])
    cursor = await initial_cursor(source, layout)
    _, layout = kills(tmp_path, *names)
    for index, path in enumerate(layout.kill_files):
        append(path, b"%d;" % index + LINE)
    batch = await poll(source, cursor, layout)
    assert payload(batch) == b"".join(b"%d;" % i + LINE for i in range(5))
    assert batch.next_cursor.path == layout.kill_files[-1]


async def test_truncated_file_is_read_from_the_start(tmp_path):
    source, layout = kills(tmp_path, "2025.05.15-00.00.00.csv")
    path = layout.kill_files[0]
    append(path, LINE * 4)
    cursor = await initial_cursor(source, layout)
    write(path, b"A;\n")
    batch = await poll(source, cursor, layout)
    assert [(c.start, c.data) for c in batch.chunks] == [(0, b"A;\n")]


async def test_replaced_file_with_a_new_identity_is_read_from_the_start(tmp_path):
    source, layout = kills(tmp_path, "2025.05.15-00.00.00.csv")
    path = layout.kill_files[0]
    append(path, LINE)
    cursor = await initial_cursor(source, layout)
    replacement = tmp_path / "replacement.csv"
    replacement.write_bytes(b"B;\n" * 40)  # bigger than before, so only identity tells
    os.replace(replacement, path)
    batch = await poll(source, cursor, layout)
    assert [(c.start, c.data) for c in batch.chunks] == [(0, b"B;\n" * 40)]


async def test_server_log_rotated_by_the_game_is_followed(tmp_path):
    logs = tmp_path / "Logs"
    logs.mkdir()
    log = logs / "Deadside.log"
    log.write_bytes(b"LogInit: one\n")
    source, layout = LocalSource(str(tmp_path)), Layout([], str(log))
    cursor = await initial_cursor(source, layout, SERVER_LOG)
    assert cursor.stream == SERVER_LOG and cursor.offset == log.stat().st_size
    os.replace(log, logs / "Deadside-backup-2025.05.15.log")
    log.write_bytes(b"LogInit: two\nLogInit: three\n")
    batch = await poll(source, cursor, layout)
    assert [(c.start, c.data) for c in batch.chunks] == [(0, b"LogInit: two\nLogInit: three\n")]


async def test_reads_are_bounded_and_continue_on_the_next_poll(tmp_path):
    source, layout = kills(tmp_path, "2025.05.15-00.00.00.csv")
    cursor = await initial_cursor(source, layout)
    content = b"".join(b"%04d;" % i + LINE for i in range(50))
    append(layout.kill_files[0], content)
    seen, polls = b"", 0
    while True:
        source.reset_counters()
        batch = await poll(source, cursor, layout, max_bytes=1000)
        assert source.bytes_read <= 1000
        assert all(chunk.data.endswith(b"\n") for chunk in batch.chunks)
        seen += payload(batch)
        cursor = batch.next_cursor
        polls += 1
        if not batch.more:
            break
    assert seen == content and polls > len(content) // 1000


async def test_a_line_longer_than_the_budget_does_not_stall(tmp_path):
    source, layout = kills(tmp_path, "2025.05.15-00.00.00.csv")
    cursor = await initial_cursor(source, layout)
    append(layout.kill_files[0], b"x" * 250 + b"\n")
    seen = b""
    for _ in range(5):
        batch = await poll(source, cursor, layout, max_bytes=100)
        seen += payload(batch)
        cursor = batch.next_cursor
    assert seen == b"x" * 250 + b"\n"


async def test_new_source_starts_after_the_last_complete_line_of_the_newest_file(tmp_path):
    source, layout = kills(tmp_path, "2025.05.14-00.00.00.csv", "2025.05.15-00.00.00.csv")
    append(layout.kill_files[0], LINE * 5)
    append(layout.kill_files[1], LINE * 2 + LINE[:30])
    cursor = await initial_cursor(source, layout)
    assert (cursor.path, cursor.offset) == (layout.kill_files[1], len(LINE) * 2)
    append(layout.kill_files[1], LINE[30:])
    batch = await poll(source, cursor, layout)
    assert payload(batch) == LINE


async def test_new_source_without_files_reads_the_first_file_that_appears(tmp_path):
    source, empty = kills(tmp_path)
    cursor = await initial_cursor(source, empty)
    assert cursor == Cursor(KILLS)
    assert (await poll(source, cursor, empty)).chunks == []
    _, layout = kills(tmp_path, "2025.05.15-00.00.00.csv")
    append(layout.kill_files[0], LINE)
    batch = await poll(source, cursor, layout)
    assert [(c.start, c.data) for c in batch.chunks] == [(0, LINE)]


async def test_deleted_current_file_moves_on_to_the_next(tmp_path):
    source, layout = kills(tmp_path, "2025.05.15-00.00.00.csv")
    append(layout.kill_files[0], LINE)
    cursor = await initial_cursor(source, layout)
    os.remove(layout.kill_files[0])
    assert (await poll(source, cursor, Layout([]))).next_cursor == cursor
    _, layout = kills(tmp_path, "2025.05.16-00.00.00.csv")
    append(layout.kill_files[0], LINE)
    batch = await poll(source, cursor, layout)
    assert [(c.path, c.data) for c in batch.chunks] == [(layout.kill_files[0], LINE)]


async def test_bom_at_offset_zero_is_passed_through(tmp_path):
    source, layout = kills(tmp_path, "2025.05.15-00.00.00.csv")
    path = layout.kill_files[0]
    append(path, b"\xef\xbb\xbf")  # the game wrote only the BOM so far
    cursor = await initial_cursor(source, layout)
    assert cursor.offset == 0
    append(path, LINE.replace(b"\n", b"\r\n"))
    batch = await poll(source, cursor, layout)
    assert [(c.start, c.data) for c in batch.chunks] == [
        (0, b"\xef\xbb\xbf" + LINE.replace(b"\n", b"\r\n"))
    ]


async def test_cursor_round_trips_through_json(tmp_path):
    source, layout = kills(tmp_path, "2025.05.15-00.00.00.csv")
    append(layout.kill_files[0], LINE)
    cursor = await initial_cursor(source, layout)
    stored = json.loads(json.dumps(cursor.to_dict()))
    assert Cursor.from_dict(stored) == cursor
    with pytest.raises(ValueError, match="Unknown log stream"):
        Cursor.from_dict({"stream": "chat"})


@settings(max_examples=40, deadline=None)
@given(
    pieces=st.lists(st.binary(min_size=0, max_size=60), min_size=1, max_size=12),
    budget=st.integers(min_value=1, max_value=200),
)
def test_polling_hands_out_every_whole_line_exactly_once(pieces, budget):
    """Whatever the write pattern and budget, the chunks rebuild the file's whole lines."""

    async def scenario(folder: str) -> None:
        source, layout = kills(Path(folder), "2025.05.15-00.00.00.csv")
        path = layout.kill_files[0]
        cursor = await initial_cursor(source, layout)
        written, seen = b"", b""
        for piece in pieces:
            append(path, piece)
            written += piece
            while True:
                batch = await poll(source, cursor, layout, max_bytes=budget)
                for chunk in batch.chunks:
                    assert chunk.start == len(seen)
                    seen += chunk.data
                cursor = batch.next_cursor
                if not batch.more:
                    break
            complete = written[: written.rfind(b"\n") + 1]
            assert seen.startswith(complete) and written.startswith(seen)
            assert cursor.offset == len(seen)

    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(scenario(folder))


@pytest.mark.skipif(not SHARED_DEADSIDE.is_dir(), reason="../shared/data/deadside is absent")
async def test_real_kill_log_tails_line_by_line(tmp_path):
    real = (SHARED_DEADSIDE / "2025.05.15-00.00.00.csv").read_bytes()
    source, layout = kills(tmp_path, "2025.05.15-00.00.00.csv")
    cursor = await initial_cursor(source, layout)
    lines = []
    for start in range(0, len(real), 4096):  # the game flushes in arbitrary pieces
        append(layout.kill_files[0], real[start : start + 4096])
        batch = await poll(source, cursor, layout)
        lines += payload(batch).splitlines()
        cursor = batch.next_cursor
    assert len(lines) == real.count(b"\n") == 283
