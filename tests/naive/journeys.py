"""Naive journeys: plain Python loops over events, one obvious step at a time.

Input is a list of event dicts (``table.to_dicts()``); nothing here uses polars expressions.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

PAGE_VIEW = 1

Event = dict[str, Any]


def recording_order(events: list[Event]) -> dict[str, list[Event]]:
    """Events per snippet session, deduplicated on (batch, i) and in recording order."""
    by_session: dict[str, dict[tuple[int, int], Event]] = defaultdict(dict)
    for e in events:
        key = (e["batch"], e["i"])
        if key not in by_session[e["session_id"]]:
            by_session[e["session_id"]][key] = e
    return {
        sid: [rows[k] for k in sorted(rows)] for sid, rows in by_session.items()
    }


def page_view_tags(events: list[Event]) -> dict[tuple[str, int, int], tuple[int, str | None]]:
    """(session_id, batch, i) -> (page_view ordinal, page URL)."""
    out: dict[tuple[str, int, int], tuple[int, str | None]] = {}
    for sid, rows in recording_order(events).items():
        urls = [e["target"] for e in rows if e["kind"] == PAGE_VIEW]
        seen = 0
        for e in rows:
            if e["kind"] == PAGE_VIEW:
                seen += 1
            ordinal = max(seen - 1, 0)
            url = urls[ordinal] if urls else None
            out[(sid, e["batch"], e["i"])] = (ordinal, url)
    return out
