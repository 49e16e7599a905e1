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

from cemreplay._jit import njit
from cemreplay.schema import EventKind

__all__ = [
    "NULL", "before", "breaks", "canonical_runs", "codes", "dense_ids", "first_index", "ints",
    "kind_rows", "page_aggregates", "session_aggregates", "session_t0", "split_rows", "tag_rows",
    "unit_bounds", "unit_last", "unit_scan",
]  # fmt: skip

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


def _kinds(*kinds: int) -> npt.NDArray[np.bool_]:
    out = np.zeros(256, dtype=np.bool_)
    out[list(kinds)] = True
    return out


#: Kinds a session or page-view scan does anything with (one table look-up skips the rest).
_SESSION_KINDS = _kinds(_PV, _CLICK, _JSERR, _NETERR, _VERR, _MS, _ATTR)
_PAGE_KINDS = _kinds(_PV, _HIDDEN, _VISIBLE, _CLICK, _JSERR, _NETERR, _VERR, _SCROLL)

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
def breaks(
    sid: U32,
    kind: npt.NDArray[np.uint8],
    tcode: U32,
    xcode: U32,
    campaign_code: np.uint32,
    day: I64,
) -> npt.NDArray[np.bool_]:
    """Rows that start a new session whatever the times: where the local ``day`` passes every
    earlier day of the snippet session (``day`` of length ``n``; length 0 turns this off),
    and, with ``campaign_code`` not :data:`NULL`, at a page view (not the snippet session's
    first) whose first ``utm_campaign`` attribute differs from the last one set before it.
    """
    n = sid.shape[0]
    brk = np.zeros(n, dtype=np.bool_)
    use_day = day.shape[0] == n
    campaign = campaign_code != NULL
    dmax = np.int64(0)
    cnt = 0
    current = NULL
    for k in range(n):
        if k == 0 or sid[k] != sid[k - 1]:
            dmax = day[k] if use_day else np.int64(0)
            cnt = 0
            current = NULL
        else:
            if use_day and day[k] > dmax:
                brk[k] = True
                dmax = day[k]
            if campaign and kind[k] == _PV and cnt >= 1:
                j = k + 1
                while j < n and sid[j] == sid[k] and kind[j] != _PV:
                    if kind[j] == _ATTR and tcode[j] == campaign_code and xcode[j] != NULL:
                        if xcode[j] != current:
                            brk[k] = True
                        break
                    j += 1
        if kind[k] == _PV:
            cnt += 1
        if campaign and kind[k] == _ATTR and tcode[k] == campaign_code and xcode[k] != NULL:
            current = xcode[k]
    return brk


@_jit
def split_rows(
    sid: U32,
    t: I64,
    kind: npt.NDArray[np.uint8],
    brk: npt.NDArray[np.bool_],
    inactivity: int,
    max_length: int,
) -> tuple[I64, U32, int]:
    """Split snippet sessions into sessions (the rules of ``_kernels.split_reference``).

    A row starts a new piece when ``t`` exceeds the running maximum by more than
    ``inactivity``, is more than ``max_length`` after the piece's start, or at ``brk`` (of
    length ``n``, see :func:`breaks`; length 0: nowhere). 0 turns a limit off.

    Returns each session's first row, its piece (0-based within its snippet session) and
    the number of page views (snippet sessions plus their second and later PAGE_VIEWs).
    Nothing is stored per row: writing a fresh 10M-row array costs more in page faults
    than the scan itself. (Rules that are off are not checked in the loop at all: unused
    branches there cost as much as the work.)
    """
    n = t.shape[0]
    starts = np.empty(n, dtype=np.int64)
    piece_of = np.empty(n, dtype=np.uint32)
    use_brk = brk.shape[0] == n
    g = -1
    p = 0
    pages = 0
    start = np.int64(0)
    tmax = np.int64(0)
    cnt = 0
    for k in range(n):
        tk = t[k]
        if k == 0 or sid[k] != sid[k - 1]:
            g += 1
            p = 0
            starts[g] = k
            piece_of[g] = 0
            start = tk
            tmax = tk
            cnt = 0
            pages += 1
        else:
            cut = use_brk and brk[k]
            if inactivity > 0 and tk - tmax > inactivity:
                cut = True
            if max_length > 0 and tk - start > max_length:
                cut = True
            if kind[k] == _PV and cnt >= 1:
                pages += 1
            if cut:
                g += 1
                p += 1
                starts[g] = k
                piece_of[g] = p
                start = max(tk, tmax)
            tmax = max(tmax, tk)
        if kind[k] == _PV:
            cnt += 1
    return starts[: g + 1].copy(), piece_of[: g + 1].copy(), pages


@_jit
def session_aggregates(
    sid: U32,
    starts: I64,
    t: I64,
    kind: npt.NDArray[np.uint8],
    tcode: U32,
    xcode: U32,
    goal_kind: int,
    goal_codes: npt.NDArray[np.bool_],
    seg_codes: U32,
) -> tuple[I64, I64, I64, I64, npt.NDArray[np.uint32], I64, I64]:
    """Per session (first rows ``starts``): start and end (running max of ``t``),
    entry and exit page-view rows, counts, goal row and segment rows.

    Entry/exit rows are the PAGE_VIEW rows of the page view the session's first/last row is
    in (rows before a snippet session's first PAGE_VIEW belong to it; -1 when it has none).
    ``counts[:, j]``: page views, events, clicks, errors (JS + network), validation errors,
    milestones. ``conv``: the first goal row (``kind == goal_kind`` and
    ``goal_codes[target]``; -1: none). ``seg[:, j]``: row of the attribute giving segment
    ``seg_codes[j]``: the first set in the session, else the last one set earlier in its
    snippet session (-1: none).
    """
    n = t.shape[0]
    n_sessions = starts.shape[0]
    m = seg_codes.shape[0]
    t0 = np.empty(n_sessions, dtype=np.int64)
    t1 = np.empty(n_sessions, dtype=np.int64)
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
    tmax = np.int64(0)
    for g in range(n_sessions):
        k0 = starts[g]
        k1 = starts[g + 1] if g + 1 < n_sessions else n
        if k0 == 0 or sid[k0] != sid[k0 - 1]:
            last_pv = -1
            first_pv = -1
            g0 = g
            tmax = t[k0]
            for j in range(m):
                carried[j] = -1
        tmax = max(tmax, t[k0])
        t0[g] = tmax
        for j in range(m):
            seg[g, j] = carried[j]
            have[j] = False
        n_pv = 0
        n_click = 0
        n_err = 0
        n_verr = 0
        n_ms = 0
        conv = -1
        for k in range(k0, k1):
            tmax = max(tmax, t[k])
            kk = kind[k]
            if _SESSION_KINDS[kk]:
                if kk == _PV:
                    last_pv = k
                    n_pv += 1
                    if first_pv < 0:
                        first_pv = k
                        for h in range(g0, g + 1):
                            if entry[h] < 0:
                                entry[h] = k
                            if exit_[h] < 0:
                                exit_[h] = k
                elif kk == _CLICK:
                    n_click += 1
                elif kk == _VERR:
                    n_verr += 1
                elif kk == _MS:
                    n_ms += 1
                elif kk == _ATTR:
                    if xcode[k] != NULL:
                        c = tcode[k]
                        for j in range(m):
                            if c == seg_codes[j]:
                                if not have[j]:
                                    seg[g, j] = k
                                    have[j] = True
                                carried[j] = k
                else:
                    n_err += 1
                if kk == goal_kind and conv < 0 and tcode[k] < n_goal and goal_codes[tcode[k]]:
                    conv = k
            if k == k0:
                entry[g] = last_pv
        exit_[g] = last_pv
        t1[g] = tmax
        counts[g, 0] = n_pv
        counts[g, 1] = k1 - k0
        counts[g, 2] = n_click
        counts[g, 3] = n_err
        counts[g, 4] = n_verr
        counts[g, 5] = n_ms
        conv_row[g] = conv
    return t0, t1, entry, exit_, counts, conv_row, seg


def page_aggregates(
    sid: U32,
    starts: I64,
    t: I64,
    kind: npt.NDArray[np.uint8],
    y: npt.NDArray[np.int32],
    a: npt.NDArray[np.int32],
    b: npt.NDArray[np.int32],
    n_pages: int,
) -> tuple[I64, I64, npt.NDArray[np.uint32], npt.NDArray[np.uint32], I64, I64, I64, npt.NDArray[
        np.uint32], npt.NDArray[np.float64]]:  # fmt: skip
    """See :func:`_page_fill`. The outputs are allocated here, by numpy, which asks for huge
    pages: numba's own allocations fault every 4 KiB, which cost more than the scan."""
    out = (
        np.empty(n_pages, dtype=np.int64), np.full(n_pages, -1, dtype=np.int64),
        np.empty(n_pages, dtype=np.uint32), np.empty(n_pages, dtype=np.uint32),
        np.empty(n_pages, dtype=np.int64), np.empty(n_pages, dtype=np.int64),
        np.empty(n_pages, dtype=np.int64), np.empty((n_pages, 4), dtype=np.uint32),
        np.empty(n_pages, dtype=np.float64),
    )  # fmt: skip
    _page_fill(sid, starts, t, kind, y, a, b, *out)
    return out


@_jit
def _page_fill(
    sid: U32,
    starts: I64,
    t: I64,
    kind: npt.NDArray[np.uint8],
    y: npt.NDArray[np.int32],
    a: npt.NDArray[np.int32],
    b: npt.NDArray[np.int32],
    first: I64,
    ref: I64,
    ordinal: U32,
    sess: U32,
    start: I64,
    dwell: I64,
    hidden: I64,
    counts: U32,
    depth: npt.NDArray[np.float64],
) -> None:
    """Per page view: first row, PAGE_VIEW row (-1: the snippet session has none), ordinal,
    session of the first row, start (running max of ``t``), dwell and hidden time, counts
    (events, clicks, errors, validation errors) and maximum scroll depth (NaN: no scroll
    with a page height).

    A page view starts at a snippet session's first row and at each later PAGE_VIEW; dwell
    adds the steps of the running maximum of ``t`` to the next row of the snippet session;
    hidden adds those steps taken after a VISIBILITY_HIDDEN until a VISIBILITY_VISIBLE.
    Totals build up in local variables and are stored when the page view ends (adding into
    the output arrays row by row is several times slower).
    """
    n = t.shape[0]
    n_sessions = starts.shape[0]
    p = -1
    g = -1
    k0 = 0
    while k0 < n:
        k1 = k0 + 1
        while k1 < n and sid[k1] == sid[k0]:
            k1 += 1
        tmax = t[k0]
        cnt = 0
        j = k0
        while True:  # one page view per turn, from row j
            p += 1
            while g + 1 < n_sessions and starts[g + 1] <= j:
                g += 1
            first[p] = j
            ordinal[p] = 0 if j == k0 else ordinal[p - 1] + 1
            sess[p] = g
            start[p] = tmax
            hidden_since = np.int64(-1)
            hd = np.int64(0)
            c1 = 0
            c2 = 0
            c3 = 0
            dp = np.nan
            end = k1
            for k in range(j, k1):
                tmax = max(tmax, t[k])
                kk = kind[k]
                if not _PAGE_KINDS[kk]:
                    continue
                if kk == _PV:
                    if cnt >= 1 and k > j:
                        end = k
                        break
                    cnt += 1
                    if ref[p] < 0:
                        ref[p] = k
                elif kk == _HIDDEN:
                    if hidden_since < 0:
                        hidden_since = tmax
                elif kk == _VISIBLE:
                    if hidden_since >= 0:
                        hd += tmax - hidden_since
                        hidden_since = np.int64(-1)
                elif kk == _CLICK:
                    c1 += 1
                elif kk in (_JSERR, _NETERR):
                    c2 += 1
                elif kk == _VERR:
                    c3 += 1
                elif kk == _SCROLL and a[k] > 0:
                    d = min(max((np.float64(y[k]) + np.float64(b[k])) / np.float64(a[k]), 0.0), 1.0)
                    if np.isnan(dp) or d > dp:
                        dp = d
            if hidden_since >= 0:
                hd += tmax - hidden_since
            dwell[p] = tmax - start[p]
            hidden[p] = hd
            counts[p, 0] = end - j
            counts[p, 1] = c1
            counts[p, 2] = c2
            counts[p, 3] = c3
            depth[p] = dp
            if end == k1:
                break
            j = end
        k0 = k1


def tag_rows(sid: U32, kind: npt.NDArray[np.uint8]) -> tuple[U32, U32, int]:
    """Per row: page-view ordinal and the row of its PAGE_VIEW (:data:`NULL`: none), and how
    many rows have none. (Outputs allocated by numpy, see :func:`page_aggregates`.)"""
    ordinal = np.empty(sid.shape[0], dtype=np.uint32)
    ref = np.empty(sid.shape[0], dtype=np.uint32)
    return ordinal, ref, _tag_fill(sid, kind, ordinal, ref)


@_jit
def _tag_fill(sid: U32, kind: npt.NDArray[np.uint8], ordinal: U32, ref: U32) -> int:
    n = sid.shape[0]
    missing = 0
    k0 = 0
    while k0 < n:
        k1 = k0 + 1
        while k1 < n and sid[k1] == sid[k0]:
            k1 += 1
        cur = NULL
        for k in range(k0, k1):
            if kind[k] == _PV:
                cur = np.uint32(k)
                break
        if cur == NULL:
            missing += k1 - k0
        o = 0
        seen = 0
        for k in range(k0, k1):
            if kind[k] == _PV:
                seen += 1
                if seen >= 2:
                    o += 1
                cur = np.uint32(k)
            ordinal[k] = o
            ref[k] = cur
        k0 = k1
    return missing


@_jit
def first_index(code: U32) -> I64:
    """``out[c]``: the first position of code ``c`` in ``code`` (-1: absent; NULL ignored)."""
    top = np.int64(-1)
    for k in range(code.shape[0]):
        if code[k] != NULL and np.int64(code[k]) > top:
            top = np.int64(code[k])
    out = np.full(top + 1, -1, dtype=np.int64)
    for k in range(code.shape[0]):
        if code[k] != NULL and out[code[k]] < 0:
            out[code[k]] = k
    return out


@_jit
def kind_rows(
    sid: U32, starts: I64, t: I64, kind: npt.NDArray[np.uint8], want: npt.NDArray[np.bool_]
) -> tuple[I64, U32, I64, I64]:
    """The rows whose kind is in ``want`` (a table by kind), with their session and running
    maximum of ``t``; and per session its last running time."""
    n = t.shape[0]
    n_sessions = starts.shape[0]
    m = 0
    for k in range(n):
        if want[kind[k]]:
            m += 1
    idx = np.empty(m, dtype=np.int64)
    ses = np.empty(m, dtype=np.uint32)
    tms = np.empty(m, dtype=np.int64)
    t_end = np.empty(n_sessions, dtype=np.int64)
    m = 0
    g = -1
    tmax = np.int64(0)
    for k in range(n):
        if k == 0 or sid[k] != sid[k - 1] or t[k] > tmax:
            tmax = t[k]
        if g + 1 < n_sessions and starts[g + 1] == k:
            g += 1
        t_end[g] = tmax
        if want[kind[k]]:
            idx[m] = k
            ses[m] = g
            tms[m] = tmax
            m += 1
    return idx, ses, tms, t_end


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
def before(ta: np.int64, ra: np.int64, a: int, tb: np.int64, rb: np.int64, b: int) -> bool:
    """Row ``a`` (running time ``ta``, session rank ``ra``) comes before row ``b`` in unit
    order: ``(tm, snippet session id, recording order)``."""
    if ta != tb:
        return bool(ta < tb)
    if ra != rb:
        return bool(ra < rb)
    return a < b


@_jit
def unit_scan(
    sid: U32,
    starts: I64,
    t: I64,
    kind: npt.NDArray[np.uint8],
    tcode: U32,
    vis: U32,
    rank: I64,
    goal_kind: int,
    goal_codes: npt.NDArray[np.bool_],
    n_units: int,
) -> tuple[I64, I64, I64, npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    """Clicks-to-goal per unit: the first goal row (-1: none) in unit order (see
    :func:`before`) and its running time, the unit's smallest running time, and the clicks
    and page views before that goal (all of them when none).

    The unit of a row is its session, or ``vis[row]`` when ``vis`` is not empty; ``rank``
    gives each session's snippet session id rank (ties in time between a visitor's snippet
    sessions).
    """
    n = t.shape[0]
    n_sessions = starts.shape[0]
    by_vis = vis.shape[0] == n
    goal = np.full(n_units, -1, dtype=np.int64)
    goal_t = np.zeros(n_units, dtype=np.int64)
    goal_r = np.zeros(n_units, dtype=np.int64)
    tmin = np.full(n_units, np.iinfo(np.int64).max, dtype=np.int64)
    clicks = np.zeros(n_units, dtype=np.uint32)
    views = np.zeros(n_units, dtype=np.uint32)
    n_goal = goal_codes.shape[0]
    for sweep in range(2):
        g = -1
        tmax = np.int64(0)
        for k in range(n):
            if k == 0 or sid[k] != sid[k - 1] or t[k] > tmax:
                tmax = t[k]
            if g + 1 < n_sessions and starts[g + 1] == k:
                g += 1
            u = vis[k] if by_vis else g
            kk = kind[k]
            if sweep == 0:
                tmin[u] = min(tmin[u], tmax)
                if kk == goal_kind and tcode[k] < n_goal and goal_codes[tcode[k]]:
                    h = goal[u]
                    if h < 0 or before(tmax, rank[g], k, goal_t[u], goal_r[u], h):
                        goal[u] = k
                        goal_t[u] = tmax
                        goal_r[u] = rank[g]
            elif kk in (_CLICK, _PV):
                h = goal[u]
                if h < 0 or before(tmax, rank[g], k, goal_t[u], goal_r[u], h):
                    if kk == _CLICK:
                        clicks[u] += 1
                    else:
                        views[u] += 1
    return goal, goal_t, tmin, clicks, views


@_jit
def unit_last(
    sid: U32,
    starts: I64,
    piece: U32,
    t: I64,
    kind: npt.NDArray[np.uint8],
    tcode: U32,
    vis: U32,
    rank: I64,
    until: I64,
    page_codes: npt.NDArray[np.bool_],
    field_kinds: npt.NDArray[np.bool_],
    only: I64,
) -> tuple[I64, I64, I64, I64]:
    """Per unit (as in :func:`unit_scan`): the last PAGE_VIEW with a page (``page_codes``)
    and the last field event (``field_kinds``) in unit order whose running time is at most
    ``until[unit]``, with their running times (-1 rows: none).

    With ``only`` not empty, just those sessions are read (units are sessions then; each is
    read from its snippet session's first row, for the running time) and ``until`` and the
    results are by position in ``only``.
    """
    n = t.shape[0]
    n_units = until.shape[0]
    n_sessions = starts.shape[0]
    by_vis = vis.shape[0] == n
    n_page = page_codes.shape[0]
    page = np.full(n_units, -1, dtype=np.int64)
    page_t = np.zeros(n_units, dtype=np.int64)
    page_r = np.zeros(n_units, dtype=np.int64)
    field = np.full(n_units, -1, dtype=np.int64)
    field_t = np.zeros(n_units, dtype=np.int64)
    field_r = np.zeros(n_units, dtype=np.int64)
    spans = max(only.shape[0], 1)
    for q in range(spans):
        if only.shape[0] == 0:
            g, k0, k1, read_from = -1, 0, n, 0
        else:
            g1 = only[q]
            g = g1 - np.int64(piece[g1]) - 1
            k0 = starts[g + 1]
            k1 = starts[g1 + 1] if g1 + 1 < n_sessions else n
            read_from = starts[g1]
        tmax = np.int64(0)
        for k in range(k0, k1):
            if k == k0 or sid[k] != sid[k - 1] or t[k] > tmax:
                tmax = t[k]
            if g + 1 < n_sessions and starts[g + 1] == k:
                g += 1
            if k < read_from:
                continue
            u = q if only.shape[0] else (vis[k] if by_vis else g)
            if tmax > until[u]:
                continue
            kk = kind[k]
            if kk == _PV and tcode[k] < n_page and page_codes[tcode[k]]:
                h = page[u]
                if h < 0 or before(page_t[u], page_r[u], h, tmax, rank[g], k):
                    page[u] = k
                    page_t[u] = tmax
                    page_r[u] = rank[g]
            elif field_kinds[kk]:
                h = field[u]
                if h < 0 or before(field_t[u], field_r[u], h, tmax, rank[g], k):
                    field[u] = k
                    field_t[u] = tmax
                    field_r[u] = rank[g]
    return page, page_t, field, field_t


@_jit
def unit_bounds(
    sid: U32, starts: I64, t: I64, vis: U32, n_units: int
) -> I64:
    """Largest running time per unit (as in :func:`unit_scan`)."""
    n = t.shape[0]
    n_sessions = starts.shape[0]
    by_vis = vis.shape[0] == n
    out = np.full(n_units, np.iinfo(np.int64).min, dtype=np.int64)
    g = -1
    tmax = np.int64(0)
    for k in range(n):
        if k == 0 or sid[k] != sid[k - 1] or t[k] > tmax:
            tmax = t[k]
        if g + 1 < n_sessions and starts[g + 1] == k:
            g += 1
        u = vis[k] if by_vis else g
        out[u] = max(out[u], tmax)
    return out


@_jit
def session_t0(sid: U32, starts: I64, t: I64) -> I64:
    """Running maximum of ``t`` at each session's first row."""
    out = np.empty(starts.shape[0], dtype=np.int64)
    g = 0
    tmax = np.int64(0)
    for k in range(t.shape[0]):
        if k == 0 or sid[k] != sid[k - 1] or t[k] > tmax:
            tmax = t[k]
        if g < starts.shape[0] and starts[g] == k:
            out[g] = tmax
            g += 1
    return out
