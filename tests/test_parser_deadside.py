"""The Deadside kill-log parser: each line kind, the chunking contract, and both paths agreeing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskcog.pipeline.events import KillEvent, ParseResult
from taskcog.pipeline.parsers.deadside import (
    MAX_SAMPLES,
    format_kill_line,
    parse_kills,
    parse_kills_columns,
    to_events,
)

UTC = dt.UTC
FIXTURES = Path(__file__).parent / "fixtures" / "deadside"
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "deadside"
REAL_LINE_COUNTS = {
    "2025.03.27-00.00.00.csv": 1112,
    "2025.05.01-00.00.00.csv": 258,
    "2025.05.15-00.00.00.csv": 283,
    "2025.05.03-00.00.00.csv": 0,
}
FIXTURE_PLAYERS = ("Zed", "Mia", "Old Tom", "Big Bad Wolf")
FIXTURE_IDS = tuple(f"0002{c * 28}" for c in "abcd")
PATHS = pytest.mark.parametrize("fast", [False, True], ids=["python", "columns"])


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def both(data: bytes, final: bool = False) -> ParseResult:
    """Parse with both paths, check they agree exactly, and return the result."""
    slow = parse_kills(data, final=final, fast=False)
    fast = parse_kills(data, final=final, fast=True)
    assert fast == slow
    return slow


def kill_line(at: str = "2025.05.01-00.07.23", **fields: str) -> bytes:
    values = {
        "killer": "Zed",
        "killer_id": FIXTURE_IDS[0],
        "victim": "Mia",
        "victim_id": FIXTURE_IDS[1],
        "cause": "M99",
        "distance": "152",
        "platforms": "PS5;XSX;",
    }
    values.update(fields)
    row = [at] + [values[k] for k in ("killer", "killer_id", "victim", "victim_id", "cause")]
    return (";".join(row + [values["distance"]]) + ";" + values["platforms"] + "\n").encode()


# -- line kinds ------------------------------------------------------------------------------


@PATHS
def test_every_line_kind_in_a_legacy_seven_column_log(fast: bool) -> None:
    result = parse_kills(fixture("legacy_7col.csv"), fast=fast)
    assert (result.lines, result.malformed, result.samples) == (7, 0, [])
    by_cause = {e.cause: e for e in result.events}
    assert [e.kind for e in result.events] == [
        "kill",
        "vehicle",
        "suicide",
        "suicide",
        "suicide",
        "unknown",
        "kill",
    ]
    kill = result.events[0]
    assert kill.at == dt.datetime(2025, 3, 27, 10, 42, 18, tzinfo=UTC)
    assert (kill.killer, kill.victim, kill.cause, kill.distance) == ("Zed", "Mia", "IZH-43", 13.0)
    assert (kill.killer_platform, kill.victim_platform) == (None, None)
    assert by_cause["land_vehicle"].victim == "Old Tom"  # a name with a space
    assert by_cause["F-10"].killer_id == by_cause["F-10"].victim_id  # suicide by weapon
    unknown = by_cause[""]
    assert (unknown.killer, unknown.killer_id, unknown.distance) == ("", "", 1.0)
    assert by_cause["Woodcutter's Axe"].killer == "Big Bad Wolf"


@PATHS
def test_nine_column_lines_carry_platforms(fast: bool) -> None:
    result = parse_kills(fixture("platforms_9col.csv"), fast=fast)
    assert [e.kind for e in result.events] == ["kill", "vehicle", "suicide", "unknown"]
    assert [(e.killer_platform, e.victim_platform) for e in result.events] == [
        ("PS5", "XSX"),
        ("XSX", "XSX"),
        ("PS5", "PS5"),
        (None, "XSX"),  # no killer, so no killer platform
    ]


def test_bom_and_crlf_give_the_same_events() -> None:
    plain = both(fixture("platforms_9col.csv"))
    windows_data = fixture("platforms_9col_bom_crlf.csv")
    windows = both(windows_data)
    assert windows.events == plain.events
    assert windows.consumed == len(windows_data)


def test_empty_and_blank_input() -> None:
    assert both(b"") == ParseResult()
    assert both(b"\n\r\n\n") == ParseResult(consumed=4)
    assert both(b"\xef\xbb\xbf") == ParseResult()  # a BOM alone is not a whole line yet


# -- the chunking contract -------------------------------------------------------------------


def test_partial_last_line_is_left_for_the_next_poll() -> None:
    data = fixture("platforms_9col.csv")
    cut = len(data) - 20
    first = both(data[:cut])
    assert first.consumed == data.rindex(b"\n", 0, cut) + 1
    assert len(first.events) == 3 and first.malformed == 0
    rest = both(data[first.consumed :])
    assert rest.consumed == len(data) - first.consumed
    assert first.events + rest.events == both(data).events


def test_final_also_reads_a_last_line_without_newline() -> None:
    data = fixture("legacy_7col.csv").rstrip(b"\n")
    assert len(both(data).events) == 6
    last = both(data, final=True)
    assert last.consumed == len(data) and len(last.events) == 7


@pytest.mark.parametrize("name", ["legacy_7col.csv", "platforms_9col_bom_crlf.csv"])
def test_any_split_into_two_polls_gives_the_whole_file(name: str) -> None:
    data = fixture(name)
    whole = parse_kills(data, final=True, fast=False)
    for cut in range(len(data) + 1):
        first = parse_kills(data[:cut], fast=cut % 17 == 0)
        assert data[: first.consumed].endswith(b"\n") or first.consumed == 0
        second = parse_kills(data[first.consumed :], final=True, fast=cut % 13 == 0)
        assert first.events + second.events == whole.events, cut
        assert first.consumed + second.consumed == len(data)


# -- malformed lines -------------------------------------------------------------------------


@PATHS
def test_malformed_lines_are_counted_and_sampled_without_names(fast: bool) -> None:
    result = parse_kills(fixture("malformed.csv"), fast=fast)
    assert (result.lines, result.malformed, len(result.events)) == (8, 6, 2)
    assert [e.distance for e in result.events] == [20.0, 7.5]
    assert [s.split(":")[0] for s in result.samples] == [
        "expected 7 or 9 columns, got 8",
        "bad timestamp",
        "bad timestamp",  # 30 February
        "bad distance",
        "no victim id",
    ]
    for sample in result.samples:
        assert not any(secret in sample for secret in FIXTURE_PLAYERS + FIXTURE_IDS)
        assert "<name>" in sample and "<id>" in sample
    # Only MAX_SAMPLES are kept; the sixth ("no final ';'") is only counted.
    assert len(result.samples) == MAX_SAMPLES == 5


@PATHS
def test_binary_garbage_is_malformed_and_good_lines_around_it_survive(fast: bool) -> None:
    good = kill_line()
    garbage = [
        b"\x89PNG\r\n",  # a stray binary header (its own line)
        b"\x00\x00\x00\x00\n",  # NUL padding after a crash
        kill_line().replace(b"Zed", b"Z\xff\xfed"),  # undecodable bytes in a name
        kill_line(victim="Mi\ta"),  # a control character in a name
        b"\xf0\x9f\x98;;;;;;;\n",  # a truncated UTF-8 sequence
        bytes(range(32)).replace(b"\n", b"") + b"\x7f\n",  # every control character at once
    ]
    data = good + b"".join(garbage) + good.replace(b"07.23", b"07.24")
    result = parse_kills(data, fast=fast)
    assert result.malformed == len(garbage) and len(result.events) == 2
    assert all(s.startswith("not text") for s in result.samples)
    assert not any("Zed" in s or "Mi" in s for s in result.samples)
    assert both(data) == result


def test_samples_are_truncated_and_redacted_when_columns_are_off() -> None:
    long_name = "Survivor With A Very Long Name " * 8
    data = kill_line(killer=long_name) + b"Zed;Mia;" + FIXTURE_IDS[0].encode() + b";bad;\n"
    result = both(data)
    assert result.malformed == 1 and result.lines == 2
    (sample,) = result.samples
    assert sample.startswith("expected 7 or 9 columns, got 4: ")
    assert sample.endswith("<name>;<name>;<id>;<name>;")
    assert len(result.events[0].killer) == len(long_name)  # long names are fine in events
    many = both(b"".join(kill_line(distance="x") for _ in range(20)))
    assert (many.malformed, len(many.samples)) == (20, MAX_SAMPLES)
    truncated = parse_kills(kill_line(distance="x", cause="C" * 300))
    assert len(truncated.samples[0]) <= len("bad distance: ") + 120


@pytest.mark.parametrize(
    "stamp",
    ["2025.02.29-00.00.00", "0000.01.01-00.00.00", "2025.01.01-24.00.00", "2025.1.01-00.00.00"],
)
def test_impossible_timestamps_are_malformed(stamp: str) -> None:
    result = both(kill_line(at=stamp) + kill_line(at="2024.02.29-23.59.59"))
    assert result.malformed == 1
    assert [e.at for e in result.events] == [dt.datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)]


# -- stable ids ------------------------------------------------------------------------------


def test_ids_are_stable_across_reparses_positions_and_files() -> None:
    line = kill_line()
    alone = both(line).events[0]
    elsewhere = both(fixture("platforms_9col.csv") + line, final=True).events[-1]
    assert alone == elsewhere == both(line).events[0]
    assert parse_kills(kill_line(distance="152.0")).events[0].id == alone.id  # same value
    changed = [
        kill_line(at="2025.05.01-00.07.24"),
        kill_line(killer="Zed2"),
        kill_line(victim_id=FIXTURE_IDS[2]),
        kill_line(cause="M98"),
        kill_line(distance="153"),
        kill_line(platforms="XSX;XSX;"),
    ]
    ids = {both(other).events[0].id for other in changed}
    assert alone.id not in ids and len(ids) == len(changed)


def test_all_ids_in_the_fixtures_are_distinct() -> None:
    events = [
        e for name in ("legacy_7col.csv", "platforms_9col.csv") for e in both(fixture(name)).events
    ]
    assert len({e.id for e in events}) == len(events)


# -- the columnar path -----------------------------------------------------------------------


def generated_log(lines: int, seed: int) -> bytes:
    """A seeded log mixing 7- and 9-column lines, all kinds, and broken lines of every sort."""
    rng = random.Random(seed)
    players = [
        (f"P{i} x" if i % 3 else f"P_{i}", f"0002{rng.getrandbits(64):016x}") for i in range(50)
    ]
    broken = [
        lambda s: s.replace(b";", b"", 1),
        lambda s: s.replace(b".", b"/", 1),
        lambda s: s[:-2] + b";far;\n",
        lambda s: b"\xff" + s,
        lambda s: s[:-1] + b"\r\r\n",
        lambda s: s.rstrip(b"\n").rstrip(b";") + b"\n",
    ]
    out = []
    at = dt.datetime(2025, 5, 1, tzinfo=UTC)
    for i in range(lines):
        at += dt.timedelta(seconds=rng.randint(0, 50))
        killer, victim = rng.choice(players), rng.choice(players)
        cause = rng.choice(["AK-SU", "falling", "land_vehicle", "boat", "suicide_by_relocation"])
        if rng.random() < 0.02:
            killer = ("", "")
        event = KillEvent(
            "", at, killer[0], killer[1], victim[0], victim[1], cause,
            rng.choice([None, float(rng.randint(0, 500)), rng.randint(0, 9999) / 100]),
            rng.choice(["PS5", "XSX", None]), rng.choice(["PS5", "XSX"]), "",
        )  # fmt: skip
        line = format_kill_line(event, platforms=i % 4 != 0).encode()
        if rng.random() < 0.05:
            line = rng.choice(broken)(line)
        out.append(line)
        if rng.random() < 0.01:
            out.append(rng.choice([b"\n", b"\r\n", b"\x00\x01\n", rng.randbytes(30) + b"\n"]))
    return b"".join(out)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_columnar_path_matches_python_path_on_generated_logs(seed: int) -> None:
    data = generated_log(5000, seed)
    result = both(data)
    assert result.malformed > 100 and len(result.events) > 4000
    assert {e.kind for e in result.events} == {"kill", "suicide", "vehicle", "unknown"}
    partial = data + b"2025.05.01-00.00.00;Zed;"  # a poll that caught a line half-written
    assert both(partial) == result


def test_to_events_materialises_slices_and_the_kind_column_agrees() -> None:
    data = generated_log(3000, seed=9)
    columns = parse_kills_columns(data)
    every = to_events(columns)
    assert len(columns) == len(every) == columns.lines - columns.malformed
    slices = [e for i in range(0, len(every), 700) for e in to_events(columns, i, i + 700)]
    assert slices == every
    assert to_events(columns, 10, 5) == [] and to_events(columns, len(every) + 5) == []
    assert columns.frame.get_column("kind").to_list() == [e.kind for e in every]


def test_large_inputs_take_the_columnar_path_by_default_with_identical_results() -> None:
    data = generated_log(4000, seed=4)
    assert len(data) >= 256 * 1024
    assert parse_kills(data) == parse_kills(data, fast=False)


# -- real files ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REAL_LINE_COUNTS))
def test_real_logs_parse_cleanly_on_both_paths(name: str) -> None:
    path = REAL / name
    if not path.exists():
        pytest.skip("the shared real Deadside logs are not present")
    data = path.read_bytes()
    result = both(data)
    assert (result.lines, result.malformed, result.consumed) == (
        REAL_LINE_COUNTS[name],
        0,
        len(data),
    )
    assert len(result.events) == result.lines
    assert len({e.id for e in result.events}) == len(result.events)
    for event in result.events:
        assert event.at.tzinfo is UTC and event.victim_id
        assert (event.kind == "suicide") == (event.killer_id == event.victim_id != "")
        assert (event.kind == "unknown") == (event.killer_id == "")


def test_real_logs_hold_every_kind_and_both_formats() -> None:
    if not REAL.exists():
        pytest.skip("the shared real Deadside logs are not present")
    events = [e for path in sorted(REAL.glob("*.csv")) for e in both(path.read_bytes()).events]
    assert {e.kind for e in events} == {"kill", "suicide", "vehicle", "unknown"}
    assert {e.killer_platform is None for e in events if e.killer_id} == {True, False}
    assert any(" " in e.killer for e in events)


# -- properties ------------------------------------------------------------------------------

_field_text = st.text(
    st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters=";\ufffd\x7f" + "".join(map(chr, range(32))),
    ),
    max_size=12,
)
_distances = st.one_of(
    st.none(),
    st.integers(0, 10_000).map(float),
    st.floats(0, 1e9, allow_nan=False, allow_infinity=False),
)


@st.composite
def kill_events(draw: st.DrawFn) -> KillEvent:
    at = draw(st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31)))
    victim_id = draw(_field_text.filter(bool))
    killer_id = draw(st.one_of(st.just(""), st.just(victim_id), _field_text))
    return KillEvent(
        "",
        at.replace(microsecond=0, tzinfo=UTC),
        draw(_field_text),
        killer_id,
        draw(_field_text),
        victim_id,
        draw(st.one_of(st.sampled_from(["land_vehicle", "boat", "falling"]), _field_text)),
        draw(_distances),
        draw(st.one_of(st.none(), _field_text.filter(bool))),
        draw(st.one_of(st.none(), _field_text.filter(bool))),
        "",
    )


def expected_kind(e: KillEvent) -> str:
    if e.killer_id == "":
        return "unknown"
    if e.killer_id == e.victim_id:
        return "suicide"
    return "vehicle" if e.cause in ("land_vehicle", "boat") else "kill"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(kill_events(), st.booleans()), max_size=12))
def test_formatted_events_parse_back(rows: list[tuple[KillEvent, bool]]) -> None:
    data = "".join(format_kill_line(e, platforms=p) for e, p in rows).encode()
    result = both(data)
    assert (result.lines, result.malformed, result.consumed) == (len(rows), 0, len(data))
    for (sent, platforms), got in zip(rows, result.events, strict=True):
        if not platforms:
            sent = dataclasses.replace(sent, killer_platform=None, victim_platform=None)
        assert dataclasses.replace(got, id="") == dataclasses.replace(
            sent, kind=expected_kind(sent)
        )
    assert [e.id for e in result.events] == [e.id for e in both(data).events]


_pieces = st.one_of(
    st.builds(lambda e: format_kill_line(e).encode(), kill_events()),
    st.sampled_from(
        [b";", b"\n", b"\r", b"\r\n", b"\xef\xbb\xbf", b"\x00", b"\x01", b"\xff", b"\xe2\x82"]
    ),
    st.sampled_from([b"2025.05.01-00.07.23", b"2025.02.30-00.00.00", b"12", b"1.5", b"PS5"]),
    st.binary(max_size=6),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_pieces, max_size=20), st.booleans())
def test_both_paths_agree_on_arbitrary_bytes(pieces: list[bytes], final: bool) -> None:
    data = b"".join(pieces)
    result = both(data, final=final)
    assert result.lines == len(result.events) + result.malformed
    assert result.consumed == (len(data) if final else data.rfind(b"\n") + 1)
