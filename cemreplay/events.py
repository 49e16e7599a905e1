"""The event table: build, check and view it.

The event table is defined in :mod:`cemreplay.schema` (``EVENT_SCHEMA``). This module holds the
small helpers every stage shares: an empty table, a schema check with a clear error, a
per-kind view with meaningful column names, and the batching rule the snippet uses.
"""

from __future__ import annotations

import polars as pl

from cemreplay.errors import SchemaError
from cemreplay.schema import EVENT_SCHEMA, FIELDS, MAX_EVENTS_PER_BATCH, DeviceClass, EventKind

__all__ = ["SESSION_STATS_SCHEMA", "assign_batches", "check", "empty", "session_stats", "view"]


def empty() -> pl.DataFrame:
    """An event table with no rows."""
    return pl.DataFrame(schema=EVENT_SCHEMA)


def check(events: pl.DataFrame, *, where: str = "events") -> pl.DataFrame:
    """Return ``events`` if it has the event table's columns and types, else raise SchemaError.

    Extra columns are allowed (stages may add their own); missing or mistyped ones are not.
    """
    if not isinstance(events, pl.DataFrame):
        raise SchemaError(
            f"{where}: expected a polars DataFrame, got {type(events).__name__}; "
            "hint: decode batches with cemreplay.wire.decode() to get one"
        )
    problems = []
    for name, dtype in EVENT_SCHEMA.items():
        got = events.schema.get(name)
        if got is None:
            problems.append(f"missing column {name!r} ({dtype})")
        elif got != dtype:
            problems.append(f"column {name!r} is {got}, expected {dtype}")
    if problems:
        raise SchemaError(
            f"{where} is not an event table: {'; '.join(problems)}; "
            "hint: see cemreplay.schema.EVENT_SCHEMA"
        )
    return events


def view(events: pl.DataFrame, kind: EventKind | int) -> pl.DataFrame:
    """The events of one kind, with the generic slots renamed to what they mean for that kind.

    >>> import cemreplay.events as ev
    >>> from cemreplay.schema import EventKind
    >>> ev.view(ev.empty(), EventKind.CLICK).columns
    ['session_id', 'visitor_id', 't', 'batch', 'i', 'x', 'y', 'flags', 'detail', 'selector']
    """
    kind = EventKind(kind)
    names = FIELDS[kind]
    keep = ["session_id", "visitor_id", "t", "batch", "i"]
    return (
        check(events)
        .filter(pl.col("kind") == int(kind))
        .select(*keep, *(pl.col(slot).alias(meaning) for slot, meaning in names.items()))
    )


def assign_batches(
    events: pl.DataFrame, *, max_events: int = 300, flush_ms: int = 5_000
) -> pl.DataFrame:
    """Set ``batch`` and ``i`` the way the snippet flushes: a new batch every ``flush_ms``
    (counted from the session's first event) or every ``max_events`` events, whichever
    comes first. Rows keep their order; within a session they must be in recording order.
    """
    if not 1 <= max_events <= MAX_EVENTS_PER_BATCH:
        raise SchemaError(f"max_events must be within 1..{MAX_EVENTS_PER_BATCH}, got {max_events}")
    if flush_ms <= 0:
        raise SchemaError(f"flush_ms must be positive, got {flush_ms}")
    check(events)
    sid = pl.col("session_id").to_physical()
    pos = pl.int_range(pl.len()).over(sid)
    # cum_max: a response stamped a few ms early must not reopen an earlier window.
    tmax = pl.col("t").cum_max().over(sid)
    window = ((tmax - pl.col("t").min().over(sid)) // flush_ms).cast(pl.Int64)
    # Each time window is split into chunks of max_events; number the (window, chunk) pairs.
    chunk = (pl.int_range(pl.len()).over(sid, window) // max_events).cast(pl.Int64)
    key = window * (MAX_EVENTS_PER_BATCH + 1) + chunk
    out = events.with_columns(_key=key, _pos=pos)
    out = out.with_columns(
        batch=(pl.col("_key").rank("dense").over(sid) - 1).cast(pl.UInt32),
    ).with_columns(
        i=pl.int_range(pl.len()).over(sid, "batch").cast(pl.UInt16),
    )
    return out.drop("_key", "_pos")


#: Columns of :func:`session_stats`.
SESSION_STATS_SCHEMA: pl.Schema = pl.Schema(
    {
        "session_id": pl.String(),
        "first_ts": pl.Int64(),
        "last_ts": pl.Int64(),
        "events": pl.Int64(),
        "pages": pl.Int64(),
        "locale": pl.String(),
        "country": pl.String(),
        "campaign": pl.String(),
        "device": pl.String(),
    }
)
_DEVICES = {d.value: d.name.lower() for d in DeviceClass}


def session_stats(events: pl.DataFrame) -> pl.DataFrame:
    """One row per session, in order of first appearance (:data:`SESSION_STATS_SCHEMA`).

    ``first_ts``/``last_ts`` (epoch ms), ``events``, ``pages`` (page views), the segment
    fields ``locale``, ``country``, ``campaign`` (the session's first ``ATTRIBUTE`` event of
    ``locale``, ``country``, ``utm_campaign``) and ``device`` (the device class of its first
    page view). What the store's sessions index holds and reports break tables down by.

    >>> session_stats(empty()).height
    0
    """
    if events.height == 0:
        return pl.DataFrame(schema=SESSION_STATS_SCHEMA)
    e = events.select(
        pl.col("session_id").cast(pl.String),
        "t",
        "kind",
        "a",
        pl.col("target").cast(pl.String),
        pl.col("text").cast(pl.String),
    )
    pv = int(EventKind.PAGE_VIEW)
    at = int(EventKind.ATTRIBUTE)

    def attr(key: str) -> pl.Expr:
        return pl.col("text").filter((pl.col("kind") == at) & (pl.col("target") == key)).first()

    g = e.group_by("session_id", maintain_order=True).agg(
        pl.col("t").min().alias("first_ts"),
        pl.col("t").max().alias("last_ts"),
        pl.len().alias("events"),
        (pl.col("kind") == pv).sum().alias("pages"),
        attr("locale").alias("locale"),
        attr("country").alias("country"),
        attr("utm_campaign").alias("campaign"),
        pl.col("a").filter(pl.col("kind") == pv).first().alias("device"),
    )
    g = g.with_columns(
        pl.col("device").replace_strict(_DEVICES, default=None, return_dtype=pl.String)
    )
    return g.cast(dict(SESSION_STATS_SCHEMA))  # type: ignore[arg-type]
