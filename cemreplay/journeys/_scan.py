"""Single-pass scans over events in recording order: the numba core of journeys (private).

Every journeys function reads the event table in canonical order (sessions contiguous, rows
in ``(batch, i)`` order), so splitting sessions, tagging page views and aggregating per
session or page view are each one sequential pass over a few integer columns, with no sort,
join or hash. Each kernel here is plain Python compiled by numba; ``NUMBA_DISABLE_JIT=1``
runs the same code uncompiled, and the public functions are checked against the loop
references in ``tests/naive/journeys.py``.

Conventions: ``sid`` holds the session id's physical codes (UInt32), ``tcode``/``xcode``
the ``target``/``text`` codes with :data:`NULL` for a null; a row index of -1 means none.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import numpy.typing as npt
import polars as pl
from numba import njit

from cemreplay.schema import EventKind

__all__ = ["NULL", "canonical_runs", "codes", "ints", "page_aggregates", "session_aggregates",
           "split_rows", "tag_rows"]  # fmt: skip

#: The code standing for a null string (or session id) in the code arrays.
NULL = np.uint32(0xFFFF_FFFF)

_PV = int(EventKind.PAGE_VIEW)
_ATTR = int(EventKind.ATTRIBUTE)
_CLICK = int(EventKind.CLICK)
_SCROLL = int(EventKind.SCROLL)
_VERR = int(EventKind.VALIDATION_ERROR)
_JSERR = int(EventKind.JS_ERROR)
_NETERR = int(EventKind.NETWORK_FAILURE)
_MS = int(EventKind.MILESTONE)
_HIDDEN = int(EventKind.VISIBILITY_HIDDEN)
_VISIBLE = int(EventKind.VISIBILITY_VISIBLE)

_jit = njit(cache=True, nogil=True)

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]
T = TypeVar("T", bound=np.generic)


def codes(s: pl.Series) -> U32:
    """Physical codes of a Categorical series as numpy, :data:`NULL` for null."""
    p = s.to_physical()
    if p.null_count():
        p = p.fill_null(int(NULL))
    out: U32 = p.to_numpy()
    return out


def ints(s: pl.Series, dtype: type[T]) -> npt.NDArray[T]:
    """A numeric column as numpy (zero copy when it has no nulls and the dtype fits; nulls
    become 0)."""
    if s.null_count():
        s = s.fill_null(0)
    out: npt.NDArray[T] = s.to_numpy().astype(dtype, copy=False)
    return out


@_jit
def canonical_runs(
    sid: U32, batch: U32, i: npt.NDArray[np.uint16], seen: npt.NDArray[np.bool_]
) -> bool:
    """True when each ``sid`` forms one contiguous run with ``(batch, i)`` strictly rising.

    ``seen`` is a zeroed scratch array longer than the largest code.
    """
    n = sid.shape[0]
    for k in range(n):
        s = sid[k]
        if k > 0 and s == sid[k - 1]:
            if batch[k] < batch[k - 1] or (batch[k] == batch[k - 1] and i[k] <= i[k - 1]):
                return False
        else:
            if seen[s]:
                return False
            seen[s] = True
    return True


@_jit
def split_rows(
    sid: U32,
    t: I64,
    kind: npt.NDArray[np.uint8],
    tcode: U32,
    xcode: U32,
    campaign_code: np.uint32,
    day: I64,
    inactivity: int,
    max_length: int,
) -> tuple[I64, U32, U32, int, int]:
    """Split snippet sessions into sessions (the rules of ``_kernels.split_reference``).

    A row starts a new piece when ``t`` exceeds the running maximum by more than
    ``inactivity``, is more than ``max_length`` after the piece's start, when its local
    ``day`` passes every earlier one (``day`` of length ``n``; length 0 turns this off), or,
    with ``campaign_code`` not :data:`NULL`, at a page view (not the snippet session's first)
    whose first ``utm_campaign`` attribute differs from the last one set before it.

    Returns ``tm`` (running max of ``t``), ``gs`` (global session number per row),
    ``piece`` (per session, 0-based within its snippet session), the number of sessions and
    the number of page views (snippet sessions plus their second and later PAGE_VIEWs).
    """
    n = t.shape[0]
    tm = np.empty(n, dtype=np.int64)
    gs = np.empty(n, dtype=np.uint32)
    piece_of = np.empty(n, dtype=np.uint32)
    use_day = day.shape[0] == n and n > 0
    campaign = campaign_code != NULL
    g = -1
    p = 0
    pages = 0
    start = np.int64(0)
    tmax = np.int64(0)
    dmax = np.int64(0)
    cnt = 0
    current = NULL
    for k in range(n):
        tk = t[k]
        if k == 0 or sid[k] != sid[k - 1]:
            g += 1
            p = 0
            piece_of[g] = 0
            start = tk
            tmax = tk
            dmax = day[k] if use_day else np.int64(0)
            cnt = 0
            current = NULL
            pages += 1
        else:
            cut = False
            if use_day and day[k] > dmax:
                cut = True
            if inactivity > 0 and tk - tmax > inactivity:
                cut = True
            if max_length > 0 and tk - start > max_length:
                cut = True
            if kind[k] == _PV and cnt >= 1:
                pages += 1
                if campaign and not cut:
                    j = k + 1
                    while j < n and sid[j] == sid[k] and kind[j] != _PV:
                        if kind[j] == _ATTR and tcode[j] == campaign_code and xcode[j] != NULL:
                            if xcode[j] != current:
                                cut = True
                            break
                        j += 1
            if cut:
                g += 1
                p += 1
                piece_of[g] = p
                start = max(tk, tmax)
            tmax = max(tmax, tk)
            if use_day and day[k] > dmax:
                dmax = day[k]
        if kind[k] == _PV:
            cnt += 1
        if campaign and kind[k] == _ATTR and tcode[k] == campaign_code and xcode[k] != NULL:
            current = xcode[k]
        tm[k] = tmax
        gs[k] = g
    return tm, gs, piece_of[: g + 1].copy(), g + 1, pages


@_jit
def session_aggregates(
    sid: U32,
    gs: U32,
    t: I64,
    kind: npt.NDArray[np.uint8],
    tcode: U32,
    xcode: U32,
    goal_kind: int,
    goal_codes: npt.NDArray[np.bool_],
    seg_codes: U32,
    n_sessions: int,
) -> tuple[I64, I64, I64, I64, npt.NDArray[np.uint32], I64, I64]:
    """Per session: first and last row, entry and exit page-view rows, counts, goal time and
    segment rows.

    Entry/exit rows are the PAGE_VIEW rows of the page view the session's first/last row is
    in (rows before a snippet session's first PAGE_VIEW belong to it; -1 when it has none).
    ``counts[:, j]``: page views, events, clicks, errors (JS + network), validation errors,
    milestones. ``conv``: ``t`` of the first goal row (``kind == goal_kind`` and
    ``goal_codes[target]``), -1 in ``conv_row`` when none. ``seg[:, j]``: row of the
    attribute giving segment ``seg_codes[j]``: the first set in the session, else the last
    one set earlier in its snippet session (-1: none).
    """
    n = t.shape[0]
    m = seg_codes.shape[0]
    first = np.full(n_sessions, -1, dtype=np.int64)
    last = np.full(n_sessions, -1, dtype=np.int64)
    entry = np.full(n_sessions, -1, dtype=np.int64)
    exit_ = np.full(n_sessions, -1, dtype=np.int64)
    counts = np.zeros((n_sessions, 6), dtype=np.uint32)
    conv_row = np.full(n_sessions, -1, dtype=np.int64)
    seg = np.full((n_sessions, m), -1, dtype=np.int64)
    carried = np.full(m, -1, dtype=np.int64)
    have = np.zeros(m, dtype=np.bool_)
    n_goal = goal_codes.shape[0]
    last_pv = -1
    first_pv = -1
    g0 = 0
    for k in range(n):
        g = gs[k]
        new_snippet = k == 0 or sid[k] != sid[k - 1]
        if new_snippet:
            last_pv = -1
            first_pv = -1
            g0 = g
            for j in range(m):
                carried[j] = -1
        if first[g] < 0:
            first[g] = k
            for j in range(m):
                seg[g, j] = carried[j]
                have[j] = False
        kk = kind[k]
        if kk == _PV:
            last_pv = k
            if first_pv < 0:
                first_pv = k
                for h in range(g0, g + 1):
                    if entry[h] < 0:
                        entry[h] = k
                    if exit_[h] < 0:
                        exit_[h] = k
            counts[g, 0] += 1
        elif kk == _CLICK:
            counts[g, 2] += 1
        elif kk in (_JSERR, _NETERR):
            counts[g, 3] += 1
        elif kk == _VERR:
            counts[g, 4] += 1
        elif kk == _MS:
            counts[g, 5] += 1
        elif kk == _ATTR and xcode[k] != NULL:
            c = tcode[k]
            for j in range(m):
                if c == seg_codes[j]:
                    if not have[j]:
                        seg[g, j] = k
                        have[j] = True
                    carried[j] = k
        counts[g, 1] += 1
        if first[g] == k:
            entry[g] = last_pv
        exit_[g] = last_pv
        last[g] = k
        if kk == goal_kind and conv_row[g] < 0:
            c = tcode[k]
            if c < n_goal and goal_codes[c]:
                conv_row[g] = k
    return first, last, entry, exit_, counts, conv_row, seg


@_jit
def page_aggregates(
    sid: U32,
    gs: U32,
    tm: I64,
    kind: npt.NDArray[np.uint8],
    y: npt.NDArray[np.int32],
    a: npt.NDArray[np.int32],
    b: npt.NDArray[np.int32],
    n_pages: int,
) -> tuple[I64, I64, npt.NDArray[np.uint32], I64, I64, npt.NDArray[np.uint32], npt.NDArray[
        np.float64]]:  # fmt: skip
    """Per page view: first row, PAGE_VIEW row (-1: the snippet session has none), ordinal,
    dwell and hidden time, counts (events, clicks, errors, validation errors) and maximum
    scroll depth (NaN: no scroll with a page height).

    A page view starts at a snippet session's first row and at each later PAGE_VIEW; dwell
    adds the steps of the running maximum ``tm`` to the next row of the snippet session;
    hidden adds those steps taken after a VISIBILITY_HIDDEN until a VISIBILITY_VISIBLE.
    """
    n = tm.shape[0]
    first = np.empty(n_pages, dtype=np.int64)
    ref = np.full(n_pages, -1, dtype=np.int64)
    ordinal = np.empty(n_pages, dtype=np.uint32)
    dwell = np.zeros(n_pages, dtype=np.int64)
    hidden = np.zeros(n_pages, dtype=np.int64)
    counts = np.zeros((n_pages, 4), dtype=np.uint32)
    depth = np.full(n_pages, np.nan, dtype=np.float64)
    p = -1
    cnt = 0
    vis = 0
    for k in range(n):
        kk = kind[k]
        if k == 0 or sid[k] != sid[k - 1]:
            p += 1
            first[p] = k
            ordinal[p] = 0
            cnt = 0
            vis = 0
        elif kk == _PV and cnt >= 1:
            p += 1
            first[p] = k
            ordinal[p] = ordinal[p - 1] + 1
            vis = 0
        if kk == _PV:
            cnt += 1
            if ref[p] < 0:
                ref[p] = k
        elif kk == _HIDDEN:
            vis = 1
        elif kk == _VISIBLE:
            vis = 0
        elif kk == _CLICK:
            counts[p, 1] += 1
        elif kk in (_JSERR, _NETERR):
            counts[p, 2] += 1
        elif kk == _VERR:
            counts[p, 3] += 1
        elif kk == _SCROLL and a[k] > 0:
            d = min(max((np.float64(y[k]) + np.float64(b[k])) / np.float64(a[k]), 0.0), 1.0)
            if np.isnan(depth[p]) or d > depth[p]:
                depth[p] = d
        counts[p, 0] += 1
        if k + 1 < n and sid[k + 1] == sid[k]:
            dt = tm[k + 1] - tm[k]
            dwell[p] += dt
            hidden[p] += dt * vis
    return first, ref, ordinal, dwell, hidden, counts, depth


@_jit
def tag_rows(sid: U32, kind: npt.NDArray[np.uint8]) -> tuple[U32, I64, int]:
    """Per row: page-view ordinal and the row of its PAGE_VIEW (-1: none), and how many rows
    have none."""
    n = sid.shape[0]
    ordinal = np.empty(n, dtype=np.uint32)
    ref = np.empty(n, dtype=np.int64)
    missing = 0
    k0 = 0
    while k0 < n:
        k1 = k0 + 1
        while k1 < n and sid[k1] == sid[k0]:
            k1 += 1
        first_pv = -1
        for k in range(k0, k1):
            if kind[k] == _PV:
                first_pv = k
                break
        cur = first_pv
        o = 0
        seen = 0
        for k in range(k0, k1):
            if kind[k] == _PV:
                seen += 1
                if seen >= 2:
                    o += 1
                cur = k
            ordinal[k] = o
            ref[k] = cur
        if first_pv < 0:
            missing += k1 - k0
        k0 = k1
    return ordinal, ref, missing


@_jit
def first_rows(tcode: U32, kind: npt.NDArray[np.uint8], want: int) -> I64:
    """``out[c]``: the first row of kind ``want`` whose target code is ``c`` (-1: none)."""
    n = tcode.shape[0]
    top = np.int64(-1)
    for k in range(n):
        if kind[k] == want and tcode[k] != NULL and np.int64(tcode[k]) > top:
            top = np.int64(tcode[k])
    out = np.full(top + 1, -1, dtype=np.int64)
    for k in range(n):
        if kind[k] == want and tcode[k] != NULL and out[tcode[k]] < 0:
            out[tcode[k]] = k
    return out


@_jit
def run_starts(gs: U32, n_runs: int) -> I64:
    """First row of each run of ``gs`` (values 0..n_runs-1, ascending in row order)."""
    out = np.empty(n_runs, dtype=np.int64)
    n = gs.shape[0]
    for k in range(n):
        if k == 0 or gs[k] != gs[k - 1]:
            out[gs[k]] = k
    return out


@_jit
def dense_ids(code: U32) -> tuple[U32, I64]:
    """Dense ids for codes in order of first appearance, and each id's first row."""
    n = code.shape[0]
    top = 0
    for k in range(n):
        if code[k] != NULL and code[k] > top:
            top = code[k]
    slot = np.full(np.int64(top) + 2, -1, dtype=np.int64)
    ids = np.empty(n, dtype=np.uint32)
    first = np.empty(n, dtype=np.int64)
    m = 0
    for k in range(n):
        c = np.int64(top) + 1 if code[k] == NULL else np.int64(code[k])
        if slot[c] < 0:
            slot[c] = m
            first[m] = k
            m += 1
        ids[k] = slot[c]
    return ids, first[:m].copy()


@_jit
def precedes(k: int, g: int, tm: I64, gs: U32, rank: I64) -> bool:
    """Row ``k`` comes before row ``g`` in unit order ``(tm, rank[gs], row)``."""
    if tm[k] != tm[g]:
        return bool(tm[k] < tm[g])
    if rank[gs[k]] != rank[gs[g]]:
        return bool(rank[gs[k]] < rank[gs[g]])
    return k < g


@_jit
def unit_scan(
    unit: U32,
    tm: I64,
    gs: U32,
    rank: I64,
    kind: npt.NDArray[np.uint8],
    goal_kind: int,
    goal_codes: npt.NDArray[np.bool_],
    tcode: U32,
    n_units: int,
) -> tuple[I64, I64, npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    """Clicks-to-goal per unit: the first goal row (-1: none) in unit order (see
    :func:`precedes`), the unit's smallest ``tm``, and the clicks and page views before that
    goal (all of them when none)."""
    n = tm.shape[0]
    goal = np.full(n_units, -1, dtype=np.int64)
    tmin = np.full(n_units, np.iinfo(np.int64).max, dtype=np.int64)
    n_goal = goal_codes.shape[0]
    for k in range(n):
        u = unit[k]
        tmin[u] = min(tmin[u], tm[k])
        if kind[k] == goal_kind and tcode[k] < n_goal and goal_codes[tcode[k]]:
            g = goal[u]
            if g < 0 or precedes(k, g, tm, gs, rank):
                goal[u] = k
    clicks = np.zeros(n_units, dtype=np.uint32)
    views = np.zeros(n_units, dtype=np.uint32)
    for k in range(n):
        kk = kind[k]
        if kk not in (_CLICK, _PV):
            continue
        u = unit[k]
        g = goal[u]
        if g >= 0 and not precedes(k, g, tm, gs, rank):
            continue
        if kk == _CLICK:
            clicks[u] += 1
        else:
            views[u] += 1
    return goal, tmin, clicks, views


@_jit
def unit_max(unit: U32, tm: I64, n_units: int) -> I64:
    """Largest ``tm`` per unit."""
    out = np.full(n_units, np.iinfo(np.int64).min, dtype=np.int64)
    for k in range(tm.shape[0]):
        out[unit[k]] = max(out[unit[k]], tm[k])
    return out
