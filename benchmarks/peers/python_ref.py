"""The three rules one event at a time in plain Python (the per-event reference a team would
write first; linear, unlike the obviously-correct quadratic loops of ``tests/naive``).

``load(events)`` turns the columns into Python lists before the clock starts; each rule then
walks every event of every session: page views tagged in recording order, then the session's
events in time order (a stable sort), as the detectors see them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import polars as pl

from benchmarks.peers.rules import (
    CHANGE,
    CLICK,
    DEAD_ELEMENT,
    DEAD_NEVER,
    DEAD_TIMEOUT_MS,
    DEAD_TOLERANCE_MS,
    ERROR_MIN_STATUS,
    ERROR_WINDOW_MS,
    FOCUS,
    JSERR,
    MILESTONE,
    MUTATION,
    NETFAIL,
    PV,
    RAGE_BAD,
    RAGE_DIST2,
    RAGE_GAP_MS,
    RAGE_MIN,
    REQUEST,
    RESPONSE,
    SUBMIT,
    SUBMIT_ERROR_MS,
    SUBMIT_SUCCESS_MS,
    SUBMIT_TOLERANCE_MS,
    UNKNOWN_ELEMENT,
    VALID,
    Found,
)

name = "per-event Python"
_RESPONSE = frozenset(RESPONSE)
Cols = dict[str, list[Any]]


def load(events: pl.DataFrame) -> Cols:
    """Plain lists, one per column, in recording order (session, batch, i)."""
    cols = ("session_id", "t", "kind", "x", "y", "a", "target")
    return {c: events[c].cast(pl.String).to_list() if c in ("session_id", "target") else
            events[c].to_list() for c in cols}  # fmt: skip


def sessions(c: Cols) -> Iterator[tuple[str, list[int], list[int], list[Any]]]:
    """Per session: its rows in time order, and per row (indexed by row) page view and URL."""
    sid, t, kind, target = c["session_id"], c["t"], c["kind"], c["target"]
    n = len(sid)
    pv = [0] * n
    url: list[Any] = [None] * n
    start = 0
    while start < n:
        end = start
        s = sid[start]
        while end < n and sid[end] == s:
            end += 1
        urls = []
        seen = 0
        for j in range(start, end):
            if kind[j] == PV:
                seen += 1
                urls.append(target[j])
            pv[j] = seen - 1 if seen else 0
        for j in range(start, end):
            url[j] = urls[pv[j]] if urls else None
        rows = sorted(range(start, end), key=t.__getitem__)  # stable: ties keep recording order
        yield s, rows, pv, url
        start = end


def _bursts(c: Cols, rows: list[int], pv: list[int]) -> list[list[int]]:
    t, kind, x, y, a, target = c["t"], c["kind"], c["x"], c["y"], c["a"], c["target"]
    out = []
    cur: list[int] = []
    for j in rows:
        if kind[j] != CLICK:
            continue
        ok = (a[j] & RAGE_BAD) == 0
        if cur and ok:
            p = cur[-1]
            if (
                target[j] == target[p]
                and pv[j] == pv[p]
                and t[j] - t[p] <= RAGE_GAP_MS
                and (x[j] - x[p]) ** 2 + (y[j] - y[p]) ** 2 <= RAGE_DIST2
            ):
                cur.append(j)
                continue
        if len(cur) >= RAGE_MIN:
            out.append(cur)
        cur = [j] if ok else []
    if len(cur) >= RAGE_MIN:
        out.append(cur)
    return out


def rage(c: Cols) -> Found:
    t = c["t"]
    return [(s, t[b[0]]) for s, rows, pv, _ in sessions(c) for b in _bursts(c, rows, pv)]


def dead(c: Cols) -> Found:
    t, kind, a = c["t"], c["kind"], c["a"]
    out = []
    for s, rows, pv, _ in sessions(c):
        members = {j for b in _bursts(c, rows, pv) for j in b}
        signals = False
        tied = set()
        last_click = -1
        prev_resp = [None] * len(rows)
        latest = None
        for k, j in enumerate(rows):
            kj = kind[j]
            if kj in _RESPONSE:
                latest = t[j]
            prev_resp[k] = latest
            if kj in (MUTATION, REQUEST):
                signals = True
            elif kj == CLICK:
                last_click = j
            elif (kj == JSERR or (kj == NETFAIL and (a[j] == 0 or a[j] >= ERROR_MIN_STATUS))) and (
                last_click >= 0 and t[j] - t[last_click] <= ERROR_WINDOW_MS
            ):
                tied.add(last_click)
        if not signals:
            continue
        next_resp = None
        found = []
        for k in range(len(rows) - 1, -1, -1):
            j = rows[k]
            if kind[j] in _RESPONSE:
                next_resp = t[j]
            if (
                kind[j] == CLICK
                and a[j] & DEAD_ELEMENT
                and not a[j] & (DEAD_NEVER | UNKNOWN_ELEMENT)
                and not (prev_resp[k] is not None and prev_resp[k] >= t[j] - DEAD_TOLERANCE_MS)
                and not (next_resp is not None and next_resp <= t[j] + DEAD_TIMEOUT_MS)
                and j not in tied
                and j not in members
            ):
                found.append((s, t[j]))
        out.extend(reversed(found))
    return out


def form_abandon(c: Cols) -> Found:
    t, kind, target = c["t"], c["kind"], c["target"]
    out = []
    for s, rows, _, url in sessions(c):
        end = t[rows[-1]]
        # walking backwards: the next validation error and the next success after each row
        next_err: int | None = None
        next_ok: int | None = None
        sent: dict[Any, int] = {}  # url -> position of the latest submit that went through
        after: dict[int, tuple[int | None, int | None]] = {}
        for k in range(len(rows) - 1, -1, -1):
            j = rows[k]
            if kind[j] == VALID:
                next_err = t[j]
            elif kind[j] in (PV, MILESTONE):
                next_ok = t[j]
            elif kind[j] == SUBMIT:
                after[k] = (next_err, next_ok)
        prev_err: int | None = None
        last: dict[Any, int] = {}
        for k, j in enumerate(rows):
            kj = kind[j]
            if kj == VALID:
                prev_err = t[j]
            elif kj == SUBMIT:
                ne, no = after[k]
                failed = (
                    (ne is not None and ne - t[j] <= SUBMIT_ERROR_MS)
                    or (prev_err is not None and t[j] - prev_err <= SUBMIT_TOLERANCE_MS)
                    or (
                        not (no is not None and no - t[j] <= SUBMIT_SUCCESS_MS)
                        and end - t[j] > SUBMIT_SUCCESS_MS
                    )
                )
                if not failed:
                    sent[url[j]] = k
            elif (kj in (FOCUS, CHANGE)) and target[j] is not None:
                last[url[j]] = k
        out.extend((s, t[rows[k]]) for u, k in last.items() if sent.get(u, -1) < k)
    return out


RULES = {"rage_click": rage, "dead_click": dead, "form_abandon": form_abandon}


def run(c: Cols, rule: str) -> Found:
    return RULES[rule](c)
