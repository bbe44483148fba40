"""Events, columns and errors as values that cross a broker.

Columns travel as an Arrow IPC stream (zstd), as bytes that the result backends store raw
(``engine.backends.common.dump_result``, not base64 in JSON): compact, typed, and read back by
polars without a row-by-row copy. Errors travel as ``{"type", "message", ...}`` and become the
source's own exception again in the bot, so the killfeed task treats them as it always has.
"""

from __future__ import annotations

import datetime as _dt
import io
from dataclasses import fields
from typing import Any, Mapping

import polars as pl

from ..events import KillEvent
from ..sources import base as sources

_EVENT_FIELDS = tuple(f.name for f in fields(KillEvent))
_ERRORS: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        sources.SourceError,
        sources.Unreachable,
        sources.AuthFailed,
        sources.KeyUnreadable,
        sources.HostKeyUntrusted,
        sources.HostKeyChanged,
        sources.PathNotFound,
    )
}


class RemoteError(RuntimeError):
    """A worker-side failure that is not a source error (a bad key, a bug): one line."""


class RemoteBusy(RemoteError, ConnectionError):
    """Another worker still holds this game server's lock; transient."""


def event_to_dict(event: KillEvent) -> dict[str, Any]:
    data = {name: getattr(event, name) for name in _EVENT_FIELDS}
    data["at"] = event.at.isoformat()
    return data


def event_from_dict(data: Mapping[str, Any]) -> KillEvent:
    values = {name: data[name] for name in _EVENT_FIELDS}
    values["at"] = _dt.datetime.fromisoformat(values["at"])
    return KillEvent(**values)


def frame_to_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_ipc_stream(buffer, compression="zstd")
    return buffer.getvalue()


def frame_from_bytes(data: bytes) -> pl.DataFrame:
    return pl.read_ipc_stream(io.BytesIO(data))


def error_to_dict(exc: BaseException, message: str) -> dict[str, str]:
    """``message`` is the already redacted text; host-key errors keep their fingerprints."""
    data = {"type": type(exc).__name__, "message": message}
    for attr in ("fingerprint", "expected", "got"):
        value = getattr(exc, attr, None)
        if isinstance(value, str):
            data[attr] = value
    return data


def error_from_dict(data: Mapping[str, str]) -> Exception:
    """The source exception a worker reported, or :class:`RemoteError` for anything else."""
    kind = data.get("type", "")
    message = data.get("message", "") or kind
    if kind == "RemoteBusy":
        return RemoteBusy(message)
    cls = _ERRORS.get(kind)
    if cls is None:
        return RemoteError(f"{kind}: {message}" if kind else message)
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    for attr in ("fingerprint", "expected", "got"):
        if attr in data:
            setattr(exc, attr, data[attr])
    if cls is sources.HostKeyUntrusted and not hasattr(exc, "fingerprint"):
        exc.fingerprint = None  # type: ignore[attr-defined]
    return exc
