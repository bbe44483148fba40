"""The Deadside.log parser: every line kind from a hand-written fixture, stable ids, bad input."""

from __future__ import annotations

from pathlib import Path

from taskcog.pipeline.parsers import serverlog as sl

FIXTURE = Path(__file__).parent / "fixtures" / "serverlog" / "Deadside.log"
A = "0002a1b2c3d4e5f60718293a4b5c6d7e"
B = "0002ffeeddccbbaa9988776655443322"
C = "00021234567890abcdef1234567890ab"


def test_every_line_kind_in_the_fixture():
    data = FIXTURE.read_bytes()
    result = sl.parse_serverlog(data)
    assert result.consumed == len(data) and result.lines == 24
    got = [(e.kind, e.player_id, e.name, e.subject, e.state) for e in result.events]
    assert got == [
        ("log_open", None, None, None, None),
        ("max_players", None, None, "50", None),
        ("queue", A, "Alice A", None, None),
        ("login", A, "Alice A", None, None),
        ("join", A, None, None, None),  # older form: "Warning: ... registered!"
        ("queue", B, "Bob", None, None),
        ("login", B, "Bob", None, None),
        ("join", B, None, None, None),  # newer form: no verbosity word
        ("queue", C, "Carol", None, None),
        ("mission", None, None, "GA_Airport_mis_01_SFPSACMission", "ACTIVE"),
        ("airdrop", None, None, None, "Dropping"),
        ("helicrash", None, None, "GA_HelicrashEvent_2", "ACTIVE"),
        ("trader", None, None, "BP_RoamingTraderEvent_C_1", "ACTIVE"),
        ("convoy", None, None, "BP_ConvoyEvent_C_3", "ACTIVE"),
        ("event", None, None, "BP_SomethingNewEvent_C_0", "ACTIVE"),
        ("disconnect", C, None, None, None),
        ("kick", None, "Bob", "Kicked by admin: spam", None),
        ("leave", B, None, None, None),  # older form
        ("timeout", A, None, None, None),
        ("leave", A, None, None, None),  # newer form: "unregistered from the session."
        ("mission", None, None, "GA_Airport_mis_01_SFPSACMission", "WAITING"),
    ]
    assert result.unknown == 3  # LogInit Display, LogStreaming, the line without a prefix
    header = result.events[0]
    assert header.at.isoformat() == "2025-05-17T02:01:30+00:00"
    assert result.events[4].at.isoformat() == "2025-05-17T02:05:02.003000+00:00"


def test_ids_are_stable_across_offsets_and_distinct_across_lines():
    data = FIXTURE.read_bytes()
    whole = [e.id for e in sl.parse_serverlog(data).events]
    assert len(set(whole)) == len(whole)
    cut = data.index(b"\n", len(data) // 2) + 1
    halves = sl.parse_serverlog(data[:cut]).events + sl.parse_serverlog(data[cut:]).events
    assert [e.id for e in halves] == whole


def test_partial_last_line_waits_unless_final():
    line = f"[2025.05.17-02.05.02:003][ 47]LogOnline: Warning: Player |{A} successfully registered"
    data = (line + "\n" + line[:30]).encode()
    result = sl.parse_serverlog(data)
    assert result.consumed == len(line) + 1 and len(result.events) == 1
    assert len(sl.parse_serverlog(line.encode(), final=True).events) == 1
    assert sl.parse_serverlog(line.encode()).events == []


def test_garbage_is_counted_never_fatal():
    data = (
        b"\xff\xfe\x00binary\n"
        b"[2025.13.45-99.99.99:000][ 1]LogSFPS: Mission X switched to ACTIVE\n"  # bad date
        b"[2025.05.17-02.05.02:003][ 47]LogOnline: Warning: Player | successfully registered!\n"
        b"Log file open, 99/99/99 99:99:99\n" + b"x" * 10_000 + b"\n\n\n"
    )
    result = sl.parse_serverlog(data)
    assert result.events == [] and result.lines == 5 and result.unknown == 5


def test_names_are_cleaned_of_control_characters_and_clipped():
    line = (
        "[2025.05.17-02.05.01:002][ 46]LogSFPS: [ASFPSGameSession::OnLogin] Login = "
        + "\u202eEvil\x07"
        + "N" * 100
        + f", ID = |{A}"
    )
    event = sl.parse_line(line)
    assert event is not None and event.kind == "login"
    assert "\x07" not in event.name and "\u202e" not in event.name and len(event.name) <= 64
