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


# --- sessions -----------------------------------------------------------------------------

ATTRIBUTE, CLICK, SCROLL, VALIDATION_ERROR, JS_ERROR, NETWORK_FAILURE = 2, 3, 5, 10, 11, 12
HIDDEN, VISIBLE, MILESTONE = 15, 16, 19
SEGMENTS = {"locale": "locale", "timezone": "timezone", "campaign": "utm_campaign",
            "source": "utm_source", "medium": "utm_medium", "country_attr": "country"}


def _local_day(t: int, tz: str) -> int:
    import datetime as dt
    from zoneinfo import ZoneInfo

    d = dt.datetime.fromtimestamp(t / 1000, tz=dt.UTC).astimezone(ZoneInfo(tz)).date()
    return (d - dt.date(1970, 1, 1)).days


def pieces(rows: list[Event], inactivity: int | None, max_length: int | None,
           split_on_campaign: bool, tz: str | None) -> list[tuple[int, int]]:
    """(piece, running max t) per row of one snippet session in recording order."""
    # the first utm_campaign value of each page view (by PAGE_VIEW count)
    first_campaign: dict[int, str] = {}
    count = 0
    for e in rows:
        count += e["kind"] == PAGE_VIEW
        if e["kind"] == ATTRIBUTE and e["target"] == "utm_campaign" and e["text"] is not None:
            first_campaign.setdefault(count, e["text"])
    out = []
    piece, start, tmax, dmax, current = 0, 0, 0, 0, None
    count = 0
    for k, e in enumerate(rows):
        t = e["t"]
        day = _local_day(t, tz) if tz else 0
        count += e["kind"] == PAGE_VIEW
        if k == 0:
            start, tmax, dmax = t, t, day
        else:
            cut = day > dmax
            if inactivity and t - tmax > inactivity:
                cut = True
            if max_length and t - start > max_length:
                cut = True
            if (split_on_campaign and e["kind"] == PAGE_VIEW and count >= 2
                    and count in first_campaign and first_campaign[count] != current):
                cut = True
            if cut:
                piece += 1
                start = max(t, tmax)
            tmax, dmax = max(tmax, t), max(dmax, day)
        if e["kind"] == ATTRIBUTE and e["target"] == "utm_campaign" and e["text"] is not None:
            current = e["text"]
        out.append((piece, tmax))
    return out


def sessions(events: list[Event], *, inactivity: int | None = 30 * 60_000,
             max_length: int | None = 24 * 3_600_000, split_on_campaign: bool = False,
             tz: str | None = None, goal_milestone: str = "order_placed") -> list[dict[str, Any]]:
    """Session rows (raw entry/exit URLs, no device), sorted by visitor, start, id."""
    import re

    out = []
    for sid, rows in recording_order(events).items():
        tags = page_view_tags(rows)
        marks = pieces(rows, inactivity, max_length, split_on_campaign, tz)
        carried: dict[str, str] = {}
        by_piece: dict[int, list[tuple[Event, int]]] = defaultdict(list)
        for e, (p, tm) in zip(rows, marks, strict=True):
            by_piece[p].append((e, tm))
        for p in sorted(by_piece):
            evs = [e for e, _ in by_piece[p]]
            seg: dict[str, str | None] = {}
            for col, key in SEGMENTS.items():
                vals = [e["text"] for e in evs if e["kind"] == ATTRIBUTE
                        and e["target"] == key and e["text"] is not None]
                seg[col] = vals[0] if vals else carried.get(col)
                if vals:
                    carried[col] = vals[-1]
            region = None
            if seg["locale"]:
                m = re.match(r"^[A-Za-z]{2,3}[-_](?:[A-Za-z]{4}[-_])?([A-Za-z]{2})\b",
                             seg["locale"])
                region = m.group(1).upper() if m else None
            goal_t = [e["t"] for e in evs if e["kind"] == MILESTONE
                      and e["target"] == goal_milestone]
            first, last = evs[0], evs[-1]
            out.append({
                "split_session_id": sid if p == 0 else f"{sid}~{p + 1}",
                "session_id": sid,
                "visitor_id": first["visitor_id"],
                "piece": p + 1,
                "start": by_piece[p][0][1],
                "end": by_piece[p][-1][1],
                "entry_url": tags[(sid, first["batch"], first["i"])][1],
                "exit_url": tags[(sid, last["batch"], last["i"])][1],
                "page_views": sum(e["kind"] == PAGE_VIEW for e in evs),
                "events": len(evs),
                "clicks": sum(e["kind"] == CLICK for e in evs),
                "errors": sum(e["kind"] in (JS_ERROR, NETWORK_FAILURE) for e in evs),
                "validation_errors": sum(e["kind"] == VALIDATION_ERROR for e in evs),
                "milestones": sum(e["kind"] == MILESTONE for e in evs),
                "locale": seg["locale"], "timezone": seg["timezone"],
                "country": seg["country_attr"] or region,
                "campaign": seg["campaign"], "source": seg["source"], "medium": seg["medium"],
                "converted": bool(goal_t),
                "converted_at": goal_t[0] if goal_t else None,
            })
    return sorted(out, key=lambda r: (r["visitor_id"], r["start"], r["split_session_id"]))


def page_views(events: list[Event], **rules: Any) -> list[dict[str, Any]]:
    """Page view rows with raw URL, sorted by session_id, page_view."""
    out = []
    for sid, rows in recording_order(events).items():
        tags = page_view_tags(rows)
        marks = pieces(rows, rules.get("inactivity", 30 * 60_000),
                       rules.get("max_length", 24 * 3_600_000), False, None)
        groups: dict[int, list[int]] = defaultdict(list)
        for k, e in enumerate(rows):
            groups[tags[(sid, e["batch"], e["i"])][0]].append(k)
        for ordinal, idx in sorted(groups.items()):
            hidden_state = 0
            dwell = hidden = 0
            depth = None
            for k in idx:
                e = rows[k]
                if e["kind"] == HIDDEN:
                    hidden_state = 1
                elif e["kind"] == VISIBLE:
                    hidden_state = 0
                if e["kind"] == SCROLL and e["a"] > 0:
                    d = min(max((e["y"] + e["b"]) / e["a"], 0.0), 1.0)
                    depth = d if depth is None else max(depth, d)
                dt = marks[k + 1][1] - marks[k][1] if k + 1 < len(rows) else 0
                dwell += dt
                hidden += dt * hidden_state
            first = rows[idx[0]]
            piece = marks[idx[0]][0]
            kinds = [rows[k]["kind"] for k in idx]
            out.append({
                "session_id": sid, "page_view": ordinal,
                "split_session_id": sid if piece == 0 else f"{sid}~{piece + 1}",
                "visitor_id": first["visitor_id"],
                "url": tags[(sid, first["batch"], first["i"])][1],
                "start": marks[idx[0]][1], "dwell_ms": dwell, "hidden_ms": hidden,
                "visible_ms": dwell - hidden, "max_scroll_depth": depth,
                "events": len(idx), "clicks": kinds.count(CLICK),
                "errors": kinds.count(JS_ERROR) + kinds.count(NETWORK_FAILURE),
                "validation_errors": kinds.count(VALIDATION_ERROR),
            })
    return sorted(out, key=lambda r: (r["session_id"], r["page_view"]))


# --- funnels and clicks-to-goal -----------------------------------------------------------

FOCUS, BLUR, CHANGE = 6, 7, 8


def norm(url: str | None) -> str | None:
    """Default UrlRules for the URLs the tests use: path only, numeric segments -> :id."""
    import re

    if url is None:
        return None
    path = re.sub(r"^[a-z]+://[^/]*", "", url.split("#")[0].split("?")[0]) or "/"
    path = "/".join(":id" if re.fullmatch(r"[0-9]+", s) else s for s in path.split("/"))
    return re.sub(r"(.)/+$", r"\1", path)


def unit_rows(events: list[Event], by: str, **rules: Any) -> dict[str, list[dict[str, Any]]]:
    """All events per unit with tm (running max t), piece, page (normalised); unit order."""
    units: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for sid, rows in recording_order(events).items():
        marks = pieces(rows, rules.get("inactivity", 30 * 60_000),
                       rules.get("max_length", 24 * 3_600_000), False, None)
        for e, (p, tm) in zip(rows, marks, strict=True):
            split = sid if p == 0 else f"{sid}~{p + 1}"
            unit = split if by == "session" else e["visitor_id"]
            units[unit].append({**e, "tm": tm, "unit": unit,
                                "page": norm(e["target"]) if e["kind"] == PAGE_VIEW else None})
    for rows in units.values():
        rows.sort(key=lambda r: (r["tm"], r["session_id"], r["batch"], r["i"]))
    return dict(units)


def matches(step: tuple[str, str], r: dict[str, Any]) -> bool:
    what, value = step
    if what == "milestone":
        return bool(r["kind"] == MILESTONE and r["target"] == value)
    return bool(r["kind"] == PAGE_VIEW and r["page"] == value)


def funnel(events: list[Event], steps: list[tuple[str, str]], *, order: str = "ordered",
           window: int | None = None, by: str = "session") -> dict[str, tuple[int, list[Any]]]:
    """unit -> (level, [t1..tN or None]) for units that entered."""
    w = window if window is not None else 2**62
    out = {}
    for unit, rows in unit_rows(events, by).items():
        pts = [r for r in rows if r["kind"] in (PAGE_VIEW, MILESTONE)]
        best: tuple[int, list[Any]] | None = None
        for s, start in enumerate(pts):
            times: list[Any] = [None] * len(steps)
            if order == "any":
                if not any(matches(st, start) for st in steps):
                    continue
                for k, st in enumerate(steps):
                    hit = next((p for p in pts[s:] if matches(st, p)), None)
                    if hit is None or hit["tm"] - start["tm"] > w:
                        break
                    times[k] = hit["tm"]
            else:
                if not matches(steps[0], start):
                    continue
                times[0] = start["tm"]
                cur = s
                for k in range(1, len(steps)):
                    if order == "strict":
                        j = cur + 1 if cur + 1 < len(pts) and matches(steps[k], pts[cur + 1]) \
                            else None
                    else:
                        j = next((j for j in range(cur + 1, len(pts))
                                  if matches(steps[k], pts[j])), None)
                    if j is None or pts[j]["tm"] - start["tm"] > w:
                        break
                    times[k], cur = pts[j]["tm"], j
            level = next((k for k, t in enumerate(times) if t is None), len(steps))
            times = times[:level] + [None] * (len(steps) - level)
            if level > 0 and (best is None or level > best[0]):
                best = (level, times)
        if best is not None:
            out[unit] = best
    return out


def clicks_to_goal(events: list[Event], goal: tuple[str, str],
                   by: str = "session") -> dict[str, tuple[bool, int, int, int | None]]:
    """unit -> (reached, clicks before, page views before, ms from first event to goal)."""
    out = {}
    for unit, rows in unit_rows(events, by).items():
        g = next((k for k, r in enumerate(rows) if matches(goal, r)), None)
        upto = rows if g is None else rows[:g]
        out[unit] = (
            g is not None,
            sum(r["kind"] == CLICK for r in upto),
            sum(r["kind"] == PAGE_VIEW for r in upto),
            None if g is None else rows[g]["tm"] - min(r["tm"] for r in rows),
        )
    return out
