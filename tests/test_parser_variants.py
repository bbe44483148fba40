"""What real servers write beyond the basic format: both timestamp styles, 7/9/10 columns,
environmental deaths, Steam64 and EOS ids, BOM, cp1251/cp1252 names, decimal commas.

Every fixture in ``fixtures/deadside/variants`` is one such line, written by hand. Both parser
paths must agree on each, and ids of lines the parser already read before stay the same.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from taskcog.pipeline.events import KILL, UNKNOWN
from taskcog.pipeline.parsers.deadside import parse_kills
from taskcog.pipeline.parsers.deadside.encoding import guess_legacy

VARIANTS = Path(__file__).parent / "fixtures" / "deadside" / "variants"
UTC = dt.UTC


def both(name: str):
    data = (VARIANTS / name).read_bytes()
    slow = parse_kills(data, final=True, fast=False)
    fast = parse_kills(data, final=True, fast=True)
    assert slow == fast, name
    assert slow.malformed == 0, slow.samples
    return slow


@pytest.mark.parametrize("name", sorted(p.name for p in VARIANTS.glob("*.csv")))
def test_both_paths_agree_and_read_every_variant_fixture(name: str) -> None:
    result = both(name)
    assert result.lines == len(result.events) >= 1


def test_ids_of_already_supported_lines_are_unchanged() -> None:
    # Pinned from the parser before these variants existed (main at f4cde9e): the live
    # killfeed's ledger holds such ids, so they must never move.
    pinned = {
        "dot_timestamp.csv": "ef4551c51dcfe77baba2d197",
        "seven_columns.csv": "c0be72c8f5b990f01770ab18",
        "eos_hex.csv": "1251b2df89cd68a94db76df2",
        "steam64.csv": "dbc1d5c55d700649840ee039",
        "decimal_point.csv": "f7d17bb159b109ccba1e2b75",
    }
    assert {name: both(name).events[0].id for name in pinned} == pinned


def test_dash_timestamps_read_as_the_same_instant_and_id() -> None:
    dot, dash = both("dot_timestamp.csv").events[0], both("dash_timestamp.csv").events[0]
    assert dash.at == dt.datetime(2025, 5, 9, 11, 58, 37, tzinfo=UTC)
    assert dash == dot


def test_a_doubled_final_separator_is_a_tenth_empty_column() -> None:
    assert both("ten_columns.csv").events == both("dot_timestamp.csv").events
    bad = parse_kills(b"2025.05.09-11.58.37;Z;1;M;2;MR5;20;PS5;XSX;extra;\n")
    assert bad.malformed == 1 and bad.samples[0].startswith("expected 7 or 9 columns, got 10")


def test_environmental_deaths_have_no_killer() -> None:
    events = both("environmental.csv").events
    assert [e.kind for e in events] == [UNKNOWN] * 3
    assert [e.cause for e in events] == ["", "Zombie", "Radiation"]
    assert events[1].killer_id == "**"


def test_steam64_and_eos_ids_are_kept_as_written() -> None:
    steam = both("steam64.csv").events[0]
    assert (steam.killer_id, steam.victim_id, steam.kind) == (
        "76561198012345678",
        "76561198087654321",
        KILL,
    )
    eos = both("eos_hex.csv").events[0]
    assert len(eos.killer_id) == 32 and int(eos.killer_id, 16)


def test_utf8_with_and_without_bom_read_alike() -> None:
    plain, bom = both("utf8.csv").events, both("utf8_bom.csv").events
    assert plain == bom and (plain[0].killer, plain[0].victim) == ("Иван", "Jürgen")


@pytest.mark.parametrize(
    ("name", "names"),
    [
        ("cp1251.csv", ["Иван", "Маша", "Zed", "Иван"]),
        ("cp1252.csv", ["Jürgen", "Sébastien", "Zed", "Jürgen"]),
    ],
)
def test_legacy_encodings_fall_back_per_line(name: str, names: list[str]) -> None:
    events = both(name).events
    assert [n for e in events for n in (e.killer, e.victim)] == names
    # The same death written in UTF-8 has the same id, so a re-encoded file counts nothing twice.
    utf8 = (VARIANTS / name).read_bytes().decode(name.removesuffix(".csv")).encode()
    assert [e.id for e in parse_kills(utf8, final=True).events] == [e.id for e in events]


def test_legacy_guess_and_garbage_stays_malformed() -> None:
    assert guess_legacy(["Иван Маша".encode("cp1251")]) == "cp1251"
    assert guess_legacy(["Jürgen Sébastien".encode("cp1252")]) == "cp1252"
    good = (VARIANTS / "dot_timestamp.csv").read_bytes()
    garbage = b"\x89PNG\xff\xfe;;;\n\x80\x81\x82\n"
    for fast in (False, True):
        result = parse_kills(good + garbage, final=True, fast=fast)
        assert (len(result.events), result.malformed) == (1, 2)


def test_decimal_comma_distances() -> None:
    comma, point = both("decimal_comma.csv").events[0], both("decimal_point.csv").events[0]
    assert comma.distance == 412.5 and comma == point
    bad = parse_kills(b"2025.05.09-11.58.37;Z;1;M;2;MR5;1,2,3;\n")
    assert bad.malformed == 1 and bad.samples[0].startswith("bad distance")
