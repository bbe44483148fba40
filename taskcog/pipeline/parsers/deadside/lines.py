"""The plain-Python path: right for a poll's worth of new lines."""

from __future__ import annotations

from ...events import ParseResult
from .encoding import legacy_to_utf8
from .grammar import _LINE_RE, BOM, MAX_SAMPLES, parse_line, sample, whole_lines_end


def _decoded_lines(chunk: bytes) -> list[str]:
    try:
        return chunk.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        # Line by line, so one bad line costs only itself; U+FFFD then marks it malformed.
        return [line.decode("utf-8", "replace") for line in chunk.split(b"\n")]


def _parse_python(data: bytes, final: bool) -> ParseResult:
    end = whole_lines_end(data, final)
    result = ParseResult(consumed=end)
    start = len(BOM) if data.startswith(BOM) else 0
    events = result.events
    chunk = data[start:end]
    converted = legacy_to_utf8(chunk, _LINE_RE)  # cp1251/cp1252 lines, now UTF-8
    for text in _decoded_lines(chunk if converted is None else converted):
        if text.endswith("\r"):
            text = text[:-1]
        if not text:
            continue
        result.lines += 1
        event = parse_line(text)
        if event is not None:
            events.append(event)
            continue
        result.malformed += 1
        if len(result.samples) < MAX_SAMPLES:
            result.samples.append(sample(text))
    return result
