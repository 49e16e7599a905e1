"""A plain row-per-event msgpack encoding, decoded with msgpack + polars.

What a team would write first: each batch a msgpack array of event rows
``[session_id, visitor_id, t, batch, i, kind, x, y, a, b, target, text]``.
"""

from __future__ import annotations

import msgpack
import polars as pl

from cemreplay.schema import EVENT_SCHEMA

name = "row msgpack + polars"
COLS = list(EVENT_SCHEMA)


def encode(events: pl.DataFrame) -> list[bytes]:
    out = []
    for part in events.partition_by(["session_id", "batch"], maintain_order=True):
        out.append(msgpack.packb(part.rows(), use_bin_type=True))
    return out


def decode(payloads: list[bytes]) -> pl.DataFrame:
    rows = []
    for p in payloads:
        rows.extend(msgpack.unpackb(p, raw=False))
    return pl.DataFrame(rows, schema=EVENT_SCHEMA, orient="row")
