"""Hand-built event tables for the detector tests: a tiny builder, nothing clever."""

from __future__ import annotations

from typing import Any

import polars as pl

from cemreplay.schema import EVENT_SCHEMA, ClickFlag, EventKind

K = EventKind
F = ClickFlag
BUTTON = int(F.INTERACTIVE)


def e(t: int, kind: EventKind, **slots: Any) -> dict[str, Any]:
    """One event: ``t``, ``kind`` and any of x, y, a, b, target, text."""
    return {"t": t, "kind": int(kind), **slots}


def pv(t: int, url: str) -> dict[str, Any]:
    return e(t, K.PAGE_VIEW, target=url, x=1280, y=800, a=1)


def click(t: int, target: str, x: int = 100, y: int = 100, a: int = BUTTON, b: int = 1):
    return e(t, K.CLICK, target=target, x=x, y=y, a=a, b=b)


def table(sessions: dict[str, list[dict[str, Any]]], visitor: str | None = None) -> pl.DataFrame:
    """An event table from {session_id: [event, ...]}, recording order as listed."""
    rows = []
    for sid, events in sessions.items():
        for n, ev in enumerate(events):
            row = {
                "session_id": sid,
                "visitor_id": visitor or f"v-{sid}",
                "batch": n // 100,
                "i": n % 100,
                "x": 0,
                "y": 0,
                "a": 0,
                "b": 0,
                "target": None,
                "text": None,
            }
            row.update(ev)
            rows.append(row)
    if not rows:
        return pl.DataFrame(schema=EVENT_SCHEMA)
    return pl.DataFrame(rows, schema=EVENT_SCHEMA)
