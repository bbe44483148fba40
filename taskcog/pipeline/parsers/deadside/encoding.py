"""Kill logs that are not UTF-8: some servers write names in cp1251 (Cyrillic) or cp1252
(Western European). Only lines that are not valid UTF-8 are re-decoded, and only when most of
them then read as kill lines, so binary garbage stays malformed instead of turning into text."""

from __future__ import annotations

import re
from collections.abc import Callable


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def guess_legacy(lines: list[bytes]) -> str:
    """cp1251 when high bytes come in runs (Cyrillic words), cp1252 when they sit alone among
    ASCII letters (``Jürgen``, ``Sébastien``)."""
    high = paired = 0
    for line in lines:
        for i, byte in enumerate(line):
            if byte >= 0x80:
                high += 1
                if (i and line[i - 1] >= 0x80) or (i + 1 < len(line) and line[i + 1] >= 0x80):
                    paired += 1
    return "cp1251" if high and paired * 2 > high else "cp1252"


def legacy_to_utf8(data: bytes, is_line: Callable[[str], bool] | re.Pattern[str]) -> bytes | None:
    """``data`` (whole lines) with its non-UTF-8 lines re-decoded, or None to leave it as is.

    ``is_line`` tells whether a decoded line (without its line ending) is a kill line.
    """
    if data.isascii() or _is_utf8(data):
        return None
    check = is_line.fullmatch if isinstance(is_line, re.Pattern) else is_line
    lines = data.split(b"\n")
    bad = [i for i, line in enumerate(lines) if not _is_utf8(line)]
    encoding = guess_legacy([lines[i] for i in bad])
    decoded = {i: lines[i].decode(encoding, "replace") for i in bad}
    readable = sum(1 for text in decoded.values() if check(text.removesuffix("\r")))
    if readable * 2 <= len(bad):
        return None
    for i, text in decoded.items():
        lines[i] = text.encode("utf-8")
    return b"\n".join(lines)
