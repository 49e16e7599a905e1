"""Hypothesis strategies for event tables and their wire batches (shared by the wire tests)."""

from __future__ import annotations

import polars as pl
from hypothesis import strategies as st

from cemreplay.schema import EVENT_SCHEMA, FIELDS, EventKind

KINDS = list(EventKind)
# Strings worth testing: empty, unicode, look-alikes, long-ish.
TEXT_VALUES = [
    "",
    "/",
    "/cart",
    "button#buy",
    "input[name=phone]",
    "+99 999 99 999",
    "Æøå ✓",
    "a" * 300,
    "<img src=x onerror=alert(1)>",
    "ελληνικά",
    "/product/123?utm_source=x",
]
TEXTS = st.sampled_from(TEXT_VALUES)
IDS = st.text(alphabet="0123456789ABCDEFGHJKMNPQRSTVWXYZ", min_size=1, max_size=12)


@st.composite
def event_rows(draw: st.DrawFn, session: str, visitor: str) -> list[dict[str, object]]:
    n = draw(st.integers(0, 40))
    t = draw(st.integers(0, 2**45))
    per_batch = draw(st.integers(1, 12))
    rows = []
    for k in range(n):
        kind = draw(st.sampled_from(KINDS))
        used = FIELDS[kind]
        t = max(0, t + draw(st.integers(-2_000, 5_000_000)))
        row: dict[str, object] = {
            "session_id": session,
            "visitor_id": visitor,
            "t": t,
            "batch": k // per_batch,
            "i": k % per_batch,
            "kind": int(kind),
        }
        for slot in ("x", "y"):
            row[slot] = draw(st.integers(-(2**29), 2**29)) if slot in used else 0
        for slot in ("a", "b"):
            row[slot] = draw(st.integers(-(2**31), 2**31 - 1)) if slot in used else 0
        for slot in ("target", "text"):
            row[slot] = draw(st.none() | TEXTS) if slot in used else None
        rows.append(row)
    return rows


@st.composite
def event_tables(draw: st.DrawFn, max_sessions: int = 4) -> pl.DataFrame:
    sessions = draw(st.lists(IDS, min_size=0, max_size=max_sessions, unique=True))
    rows: list[dict[str, object]] = []
    for sid in sessions:
        rows.extend(draw(event_rows(sid, draw(IDS))))
    df = pl.DataFrame(rows, schema=EVENT_SCHEMA) if rows else pl.DataFrame(schema=EVENT_SCHEMA)
    return canonical(df)


def canonical(df: pl.DataFrame) -> pl.DataFrame:
    """The decoder's canonical order: session_id string, then batch, then i."""
    return df.sort(pl.col("session_id").cast(pl.String), "batch", "i", maintain_order=True)
