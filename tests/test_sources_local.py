"""LocalSource: layout discovery, stat and reads, and probe sentences on a real folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from taskcog.engine.supervision import ErrorKind, classify
from taskcog.pipeline.sources import LocalSource, PathNotFound

DAYS = ["2025.05.14-00.00.00.csv", "2025.05.15-00.00.00.csv", "2025.05.16-00.00.00.csv"]


def make_server_tree(base: Path) -> Path:
    """A Deadside host folder: two worlds, a server log, and things discovery must ignore."""
    saved = base / "game" / "Deadside" / "Saved"
    (saved / "actual1" / "deathlogs" / "world_0").mkdir(parents=True)
    (saved / "actual1" / "deathlogs" / "world_1").mkdir(parents=True)
    (saved / "actual1" / "deathlogs" / "notes").mkdir(parents=True)
    (saved / "Logs").mkdir(parents=True)
    (saved / "Logs" / "Deadside.log").write_bytes(b"LogInit: hi\n")
    (saved / "deep" / "Logs").mkdir(parents=True)
    (saved / "deep" / "Logs" / "Deadside.log").write_bytes(b"older copy\n")
    (saved / "actual1" / "deathlogs" / "world_0" / DAYS[2]).write_bytes(b"c;\n")
    (saved / "actual1" / "deathlogs" / "world_1" / DAYS[0]).write_bytes(b"a;\n")
    (saved / "actual1" / "deathlogs" / "world_0" / DAYS[1]).write_bytes(b"b;\n")
    (saved / "actual1" / "deathlogs" / "world_0" / "readme.txt").write_bytes(b"")
    (saved / "actual1" / "deathlogs" / "notes" / "2025.01.01-00.00.00.csv").write_bytes(b"")
    return saved


async def test_discovers_kill_files_across_worlds_sorted_by_time(tmp_path):
    saved = make_server_tree(tmp_path)
    layout = await LocalSource(str(tmp_path)).discover()
    assert [Path(p).name for p in layout.kill_files] == DAYS
    assert layout.server_log == str(saved / "Logs" / "Deadside.log")  # the shallowest one
    assert [Path(d).name for d in layout.kill_dirs] == ["world_0", "world_1"]


async def test_refresh_relists_only_the_kill_folders(tmp_path):
    saved = make_server_tree(tmp_path)
    source = LocalSource(str(tmp_path))
    layout = await source.discover()
    walk_cost = source.round_trips
    (saved / "actual1" / "deathlogs" / "world_0" / "2025.05.17-00.00.00.csv").touch()
    source.reset_counters()
    layout = await source.refresh(layout)
    assert Path(layout.kill_files[-1]).name == "2025.05.17-00.00.00.csv"
    assert source.round_trips == 2 < walk_cost


async def test_refresh_walks_again_when_a_kill_folder_vanished(tmp_path):
    saved = make_server_tree(tmp_path)
    source = LocalSource(str(tmp_path))
    layout = await source.discover()
    world_1 = saved / "actual1" / "deathlogs" / "world_1"
    for child in world_1.iterdir():
        child.unlink()
    world_1.rmdir()
    layout = await source.refresh(layout)
    assert [Path(d).name for d in layout.kill_dirs] == ["world_0"]
    assert [Path(p).name for p in layout.kill_files] == DAYS[1:]


async def test_stat_and_ranged_read_count_requests_and_bytes(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(b"0123456789")
    source = LocalSource(str(tmp_path))
    stat = await source.stat(str(path))
    assert stat.size == 10 and stat.ident == f"{os.stat(path).st_dev}:{os.stat(path).st_ino}"
    assert await source.read(str(path), 3, 4) == b"3456"
    assert await source.read(str(path), 8, 100) == b"89"
    assert await source.read(str(path), 0, 0) == b""
    assert (source.round_trips, source.bytes_read) == (3, 6)


async def test_missing_paths_raise_a_clear_path_not_found(tmp_path):
    source = LocalSource(str(tmp_path / "nope"))
    with pytest.raises(PathNotFound, match="does not exist on the bot host"):
        await source.connect()
    with pytest.raises(PathNotFound) as caught:
        await source.stat(str(tmp_path / "nope" / "x.csv"))
    assert classify(caught.value)[0] is ErrorKind.FAILURE


async def test_probe_reports_layout_sentences(tmp_path):
    make_server_tree(tmp_path)
    report = await LocalSource(str(tmp_path)).probe()
    assert report.ok, report.sentences()
    assert report.sentences()[1].startswith("Found 3 kill log files; the newest is ")
    assert report.sentences()[1].endswith("2025.05.16-00.00.00.csv (3 bytes).")
    assert "Deadside.log" in report.sentences()[2]


async def test_probe_of_an_empty_or_missing_folder_reports_instead_of_raising(tmp_path):
    report = await LocalSource(str(tmp_path)).probe()
    assert not report.ok
    assert report.sentences()[1] == (
        f"Found no kill logs (deathlogs/world_*/*.csv) under {tmp_path}."
    )
    assert report.sentences()[2] == f"Found no Logs/Deadside.log under {tmp_path}."

    missing = await LocalSource(str(tmp_path / "gone")).probe()
    assert [c.ok for c in missing.checks] == [False]
    assert "does not exist" in missing.sentences()[0]
