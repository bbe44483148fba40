"""Event ids for whole frames: the same blake2b of the same fields as ``grammar.make_event``.

Polars builds every key string; Python only runs the hash. Distances go through Python's
``repr`` per distinct value, so ``7``/``7.0``/either parser agree with the live feed's ids.
"""

from __future__ import annotations

import hashlib

import polars as pl

_SEP = "\x1f"


def _isoformat(at: pl.Expr) -> pl.Expr:
    """``datetime.isoformat()`` of a UTC timestamp with whole seconds (the year zero-padded to
    4 digits, as Python's)."""
    return at.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def with_ids(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``id`` (24 hex) and ``k`` (its first 63 bits, the store's integer key) to a frame
    with the parser's columns (``at`` naive UTC datetime)."""
    if frame.height == 0:
        return frame.with_columns(id=pl.lit("", pl.String), k=pl.lit(0, pl.Int64)).clear()
    distances = frame.get_column("distance").drop_nulls().unique().to_list()
    reprs = pl.DataFrame(
        {"distance": distances, "_d": [repr(d) for d in distances]},
        schema={"distance": pl.Float64, "_d": pl.String},
    )
    keys = (
        frame.select(
            "at",
            "killer",
            "killer_id",
            "victim",
            "victim_id",
            "cause",
            "distance",
            "killer_platform",
            "victim_platform",
        )
        .join(reprs, on="distance", how="left", maintain_order="left")
        .select(
            pl.concat_str(
                [
                    _isoformat(pl.col("at")),
                    pl.col("killer"),
                    pl.col("killer_id"),
                    pl.col("victim"),
                    pl.col("victim_id"),
                    pl.col("cause"),
                    pl.col("_d").fill_null(""),
                    pl.col("killer_platform").fill_null(""),
                    pl.col("victim_platform").fill_null(""),
                ],
                separator=_SEP,
            )
        )
        .to_series()
        .cast(pl.Binary)
        .to_list()
    )
    blake = hashlib.blake2b
    ids = pl.Series("id", [blake(key, digest_size=12).hexdigest() for key in keys])
    return frame.with_columns(ids).with_columns(k=key_expr(pl.col("id")))


def key_expr(ids: pl.Expr) -> pl.Expr:
    """The store's integer key of an event id: its first 15 hex digits (60 bits)."""
    return ids.str.slice(0, 15).str.to_integer(base=16).cast(pl.Int64)


def key_of(event_id: str) -> int:
    """:func:`key_expr` for one id."""
    return int(event_id[:15], 16)
