"""Numba kernels for the detectors: one pass over whole arrays, no Python loop per event.

Every kernel here is checked against the slow references in ``tests/naive/detectors.py``
(through the public detectors) and runs unchanged as plain Python under
``NUMBA_DISABLE_JIT=1``. Arrays are the prepared event columns of
:class:`cemreplay.detectors._base.Context`: rows grouped by session, ``t`` ascending inside
a session, ``starts`` the session boundaries.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cemreplay._jit import ix as _ix
from cemreplay._jit import njit

#: Every kernel releases the GIL, so that parts of a table run on threads of their own
#: (:mod:`cemreplay.detectors._parallel`).
_jit = njit(cache=True, nogil=True)

BIG = np.int64(2**62)
SMALL = np.int64(-(2**62))


@_jit
def page_view_rows(starts: Any, kind: Any, pv: Any, pv_kind: int) -> Any:
    """Per row: the row of the PAGE_VIEW event of its page view (``pv`` ordinal), in any row
    order within a session; -1 when the session has none."""
    n = len(kind)
    out = np.full(n, -1, dtype=np.int64)
    for s in range(len(starts) - 1):
        top = 0
        for j in range(starts[s], starts[s + 1]):
            top = max(top, pv[j])
        where = np.full(top + 1, -1, dtype=np.int64)
        for j in range(starts[s], starts[s + 1]):
            if kind[j] == pv_kind and where[pv[j]] < 0:
                where[pv[j]] = j
        for j in range(starts[s], starts[s + 1]):
            out[j] = where[pv[j]]
    return out


@_jit
def page_views(starts: Any, kind: Any, pv_kind: int, pv: Any) -> None:
    """Per row, in recording order, into ``pv``: the page view ordinal (0 for the first
    PAGE_VIEW and anything before it)."""
    for s in range(len(starts) - 1):
        count = 0
        seen = False
        for j in range(starts[s], starts[s + 1]):
            if kind[j] == pv_kind:
                if seen:
                    count += 1
                seen = True
            pv[j] = count


@_jit
def response_times(
    starts: Any, t: Any, kind: Any, lut: Any, of_kind: int, pv_kind: int, s0: int, s1: int
) -> Any:
    """The rows of ``of_kind`` in sessions s0..s1 (ascending) and, at each: t of the latest
    response event at or
    before it in its session (SMALL when none), t of the earliest at or after it (BIG when
    none), and its page view ordinal counted in row order (PAGE_VIEW events before it in
    the session, less one, at least 0)."""
    n = starts[s1] - starts[s0]
    # Upper bounds: only the pages written are touched, and no buffer is reassigned.
    rows = np.empty(n, dtype=np.int64)
    prev = np.empty(n, dtype=np.int64)
    nxt = np.empty(n, dtype=np.int64)
    pv = np.empty(n, dtype=np.int64)
    p = 0
    for s in range(s0, s1):
        last = SMALL
        pending = p
        views = 0
        for j in range(starts[_ix(s)], starts[_ix(s + 1)]):
            k = kind[_ix(j)]
            if k == pv_kind:
                views += 1
            if lut[k]:
                last = t[_ix(j)]
                while pending < p:
                    nxt[_ix(pending)] = last
                    pending += 1
            if k == of_kind:
                rows[_ix(p)] = j
                prev[_ix(p)] = last
                pv[_ix(p)] = max(views - 1, 0)
                if lut[k]:
                    nxt[_ix(p)] = last
                    pending = p + 1
                p += 1
        while pending < p:
            nxt[_ix(pending)] = BIG
            pending += 1
    return rows[:p].copy(), prev[:p].copy(), nxt[:p].copy(), pv[:p].copy()


@_jit
def gather_or(values: Any, idx: Any, default: Any) -> Any:
    out = np.empty(len(idx), dtype=values.dtype)
    for j in range(len(idx)):
        out[j] = values[idx[j]] if idx[j] >= 0 else default
    return out


@_jit
def kind_mask(kind: Any, lut: Any, out: Any) -> None:
    """Into ``out``: per row, is its kind set in ``lut``? Branch-free (a branch per row on
    kinds, which come in no predictable order, is mostly mispredicted)."""
    for j in range(len(kind)):
        out[j] = lut[kind[j]]


@_jit
def sessions_with(starts: Any, kind: Any, lut: Any, s0: int, s1: int) -> Any:
    """Per session s0..s1: has it an event whose kind is set in ``lut``? (Reads each session
    up to its first such event.)"""
    out = np.zeros(s1 - s0, dtype=np.bool_)
    for s in range(s0, s1):
        for j in range(starts[s], starts[s + 1]):
            if lut[kind[j]]:
                out[s - s0] = True
                break
    return out


@_jit
def per_view(starts: Any, kind: Any, lut: Any, views: Any, pv_kind: int, s0: int, s1: int) -> Any:
    """Per page view of sessions s0..s1 (``views``: the PAGE_VIEW rows, ascending; rows in
    recording order): how many events of a kind set in ``lut`` it holds (rows before a
    session's first PAGE_VIEW count for that one)."""
    v = np.searchsorted(views, starts[s0])
    v0 = v
    out = np.zeros(np.searchsorted(views, starts[s1]) - v0, dtype=np.int64)
    for s in range(s0, s1):
        has = v < len(views) and views[v] < starts[s + 1]
        cur = v
        for j in range(starts[s], starts[s + 1]):
            k = kind[_ix(j)]
            if k == pv_kind:
                cur = v
                v += 1
            if has and lut[k]:
                out[_ix(cur - v0)] += 1
    return out


@_jit
def segments(starts: Any, rows: Any) -> Any:
    """The session index of each of ``rows`` (fastest when ascending; any order works)."""
    out = np.empty(len(rows), dtype=np.int64)
    s = 0
    for k in range(len(rows)):
        j = rows[k]
        if j < starts[s]:
            s = np.searchsorted(starts, j, side="right") - 1
        while j >= starts[s + 1]:
            s += 1
        out[k] = s
    return out


@_jit
def rage_bursts(
    cstarts: Any,
    rows: Any,
    t: Any,
    x: Any,
    y: Any,
    a: Any,
    target: Any,
    pv: Any,
    bad: int,
    max_interval_ms: int,
    max_distance_px: float,
    min_clicks: int,
) -> Any:
    """Chains of clicks (``rows``: the clicks' rows, sessions at ``cstarts``; ``target`` and
    ``pv`` per click; ``t``, ``x``, ``y``, ``a`` per row): each click eligible (no flag of
    ``bad`` in ``a``), on the same target and page view as the previous click, at most
    ``max_interval_ms`` later and ``max_distance_px`` away. Any other click breaks a chain.
    Returns (first click, last click, clicks, max step distance) of chains >= min_clicks,
    as indices into the clicks."""
    cap = len(rows) // max(min_clicks, 1) + 1  # bursts do not overlap
    first = np.empty(cap, dtype=np.int64)
    last = np.empty(cap, dtype=np.int64)
    count = np.empty(cap, dtype=np.int64)
    spread = np.empty(cap, dtype=np.float64)
    m = 0
    lim2 = max_distance_px * max_distance_px
    for s in range(len(cstarts) - 1):
        c_first = -1
        c_last = -1
        c_n = 0
        c_d = 0.0
        for j in range(cstarts[s], cstarts[s + 1] + 1):
            end = j == cstarts[s + 1]
            ok = not end and (a[rows[j]] & bad) == 0
            joined = False
            if ok and c_n > 0:
                r = rows[j]
                p = rows[c_last]
                dx = float(x[r] - x[p])
                dy = float(y[r] - y[p])
                d2 = dx * dx + dy * dy
                if (
                    target[j] == target[c_first]
                    and pv[j] == pv[c_first]
                    and t[r] - t[p] <= max_interval_ms
                    and d2 <= lim2
                ):
                    joined = True
                    c_n += 1
                    c_last = j
                    c_d = max(c_d, np.sqrt(d2))
            if joined:
                continue
            if c_n >= min_clicks:
                first[m] = c_first
                last[m] = c_last
                count[m] = c_n
                spread[m] = c_d
                m += 1
            if ok:
                c_first = j
                c_last = j
                c_n = 1
                c_d = 0.0
            else:
                c_n = 0
    return first[:m].copy(), last[:m].copy(), count[:m].copy(), spread[:m].copy()


@_jit
def burst_checks(
    first: Any,
    last: Any,
    rows: Any,
    starts: Any,
    t: Any,
    kind: Any,
    b: Any,
    lut: Any,
    tolerance_ms: int,
    response_ms: int,
    after_ms: int,
) -> Any:
    """Per burst (``first``, ``last``: indices into the clicks, whose rows are ``rows``; ``b``
    per row): did
    every click get a response (an event of a kind set in ``lut`` in the session at most
    ``tolerance_ms`` before it or ``response_ms`` after it), are the click details exactly
    1, 2, 3 (the browser's count of a triple click, which selects a paragraph), and did any
    response follow the first click by the time ``after_ms`` after the last? Only the events
    near each burst are read: sessions are in time order."""
    m = len(first)
    all_resp = np.ones(m, dtype=np.bool_)
    details_123 = np.zeros(m, dtype=np.bool_)
    after = np.zeros(m, dtype=np.bool_)
    s = 0
    for k in range(m):
        r0 = rows[first[k]]
        if r0 < starts[s]:
            s = np.searchsorted(starts, r0, side="right") - 1
        while r0 >= starts[s + 1]:
            s += 1
        lo = starts[s]
        hi = starts[s + 1]
        seq = 0
        ok = True
        for c in range(first[k], last[k] + 1):
            seq += 1
            if b[rows[c]] != seq:
                ok = False
            if not all_resp[k]:
                continue
            r = rows[c]
            tc = t[r]
            got = False
            q = r
            while q >= lo and t[q] >= tc - tolerance_ms:
                if lut[kind[q]]:
                    got = True
                    break
                q -= 1
            q = r
            while not got and q < hi and t[q] <= tc + response_ms:
                if lut[kind[q]]:
                    got = True
                q += 1
            all_resp[k] = got
        details_123[k] = ok and seq == 3
        end = t[rows[last[k]]] + after_ms
        q = r0
        while q < hi and t[q] <= end:
            if lut[kind[q]]:
                after[k] = True
                break
            q += 1
    return all_resp, details_123, after


@_jit
def mark_ranges(n: int, first: Any, last: Any) -> Any:
    out = np.zeros(n, dtype=np.bool_)
    for k in range(len(first)):
        out[first[k] : last[k] + 1] = True
    return out


@_jit
def error_clicks(
    starts: Any,
    t: Any,
    kind: Any,
    status: Any,
    click_kind: int,
    js_kind: int,
    net_kind: int,
    min_status: int,
    window_ms: int,
    s0: int,
    s1: int,
) -> Any:
    """Tie each error (a JS error, or a network failure with status 0 or >= min_status) to
    the latest click at or before it in its session (sessions s0..s1), when at most
    ``window_ms`` earlier. Returns, per click that errors were tied to (ascending): its row,
    the errors tied to it and the row of its first error."""
    # Each tie takes a click and an error: at most n // 2. Pages of the buffers are only
    # touched where written, and the buffers are never reassigned inside the loop (a
    # reassigned array costs reference counting on every iteration).
    cap = (starts[s1] - starts[s0]) // 2 + 1
    rows = np.empty(cap, dtype=np.int64)
    errors = np.empty(cap, dtype=np.int64)
    first = np.empty(cap, dtype=np.int64)
    m = 0
    for s in range(s0, s1):
        click = -1
        for j in range(starts[s], starts[s + 1]):
            k = kind[_ix(j)]
            if k == click_kind:
                click = j
                continue
            is_error = k == js_kind or (
                k == net_kind and (status[_ix(j)] == 0 or status[_ix(j)] >= min_status)
            )
            if is_error and click >= 0 and t[_ix(j)] - t[_ix(click)] <= window_ms:
                if m > 0 and rows[m - 1] == click:
                    errors[m - 1] += 1
                    continue
                rows[m] = click
                errors[m] = 1
                first[m] = j
                m += 1
    return rows[:m].copy(), errors[:m].copy(), first[:m].copy()


@njit(cache=True, nogil=True, inline="always")  # a step of the hot loops: no call left
def _pv_step(pv: Any, views: Any, start: int, j: int, vs: int, vp: int) -> Any:
    """Row ``j``'s page view ordinal, from ``pv`` (per row) or, when it is empty, by moving the
    cursors over ``views`` (the PAGE_VIEW rows, ascending): ``vs`` the session's first view
    (the session starts at row ``start``), ``vp`` the first view after the row. Returns
    (ordinal, vs, vp); rows must come in recording order within sessions."""
    if len(pv):
        return np.int64(pv[j]), vs, vp
    while vs < len(views) and views[vs] < start:
        vs += 1
    vp = max(vp, vs)
    while vp < len(views) and views[vp] <= j:
        vp += 1
    return np.int64(max(vp - vs - 1, 0)), vs, vp


@_jit
def thrash_episodes(
    starts: Any,
    rows: Any,
    t: Any,
    x: Any,
    y: Any,
    pv: Any,
    views: Any,
    max_gap_ms: int,
    window_ms: int,
    min_reversals: int,
    min_ratio: float,
    min_speed: float,
) -> Any:
    """Episodes of shaking among mouse moves (``rows``: the moves' rows, ascending).

    Moves form trajectories: a new one at a new session or page view, or after a pause
    longer than max_gap_ms. A window is the moves i..j of one trajectory with
    t[j] - t[i] <= window_ms (i as early as possible). It shakes when its direction reversals
    (sign flips of dx, plus of dy, between consecutive steps) reach min_reversals, its path
    length over its bounding-box diagonal reaches min_ratio and its mean speed reaches
    min_speed px/s. Shaking windows that overlap form one episode. Returns (first move, last
    move, max reversals, max ratio) per episode, as indices into ``rows``. Page view
    ordinals come from ``pv`` (per row) or, when it is empty, from ``views`` (the PAGE_VIEW
    rows, ascending; rows in recording order).
    """
    n = len(rows)
    run = np.zeros(n, dtype=np.int32)
    seglen = np.zeros(n, dtype=np.float64)
    cum = np.zeros(n, dtype=np.int64)  # cum[k]: reversals of moves 0..k (a window's in O(1))
    s = 0
    r = 0
    vs = 0  # first view of the session
    vp = 0  # views at or before the row
    pv_p = np.int64(0)
    # the previous move (row, x, y) and the step into it
    p = -1
    px_ = np.int64(0)
    py_ = np.int64(0)
    dx_p = np.int64(0)  # the step into the previous move (0: none yet in this trajectory)
    dy_p = np.int64(0)
    steps = -1  # moves of this trajectory before the row's (-1: none, the row starts one)
    total = np.int64(0)
    for k in range(n):
        j = rows[_ix(k)]
        while j >= starts[_ix(s + 1)]:
            s += 1
        start = starts[_ix(s)]
        pv_j, vs, vp = _pv_step(pv, views, start, j, vs, vp)
        tj = t[_ix(j)]
        xj = np.int64(x[_ix(j)])
        yj = np.int64(y[_ix(j)])
        if k > 0 and (p < start or pv_j != pv_p or tj - t[_ix(p)] > max_gap_ms):
            r += 1
            steps = -1
        pv_p = pv_j
        run[_ix(k)] = r
        rev = 0
        if steps >= 0:
            qx = xj - px_
            qy = yj - py_
            fx = float(qx)
            fy = float(qy)
            seglen[_ix(k)] = np.sqrt(fx * fx + fy * fy)
            if steps >= 1:
                if (dx_p > 0 and qx < 0) or (dx_p < 0 and qx > 0):
                    rev += 1
                if (dy_p > 0 and qy < 0) or (dy_p < 0 and qy > 0):
                    rev += 1
            dx_p = qx
            dy_p = qy
        steps += 1
        p = j
        px_ = xj
        py_ = yj
        total += rev
        cum[_ix(k)] = total
    cap = n // 3 + 1  # episodes are disjoint runs of >= 3 moves
    e_first = np.empty(cap, dtype=np.int64)
    e_last = np.empty(cap, dtype=np.int64)
    e_rev = np.empty(cap, dtype=np.int64)
    e_ratio = np.empty(cap, dtype=np.float64)
    m = 0
    i = 0
    for j in range(n):
        if j == 0 or run[j] != run[j - 1]:
            i = j
        while t[rows[j]] - t[rows[i]] > window_ms:
            i += 1
        if j - i < 2:
            continue
        rv = cum[j] - cum[i + 1]  # reversals of moves i+2..j
        if rv < min_reversals:
            continue
        path = 0.0
        x0 = x[rows[i]]
        x1 = x0
        y0 = y[rows[i]]
        y1 = y0
        for k in range(i + 1, j + 1):
            path += seglen[k]
            xk = x[rows[k]]
            yk = y[rows[k]]
            x0 = min(x0, xk)
            x1 = max(x1, xk)
            y0 = min(y0, yk)
            y1 = max(y1, yk)
        w = float(x1 - x0)
        h = float(y1 - y0)
        diag = np.sqrt(w * w + h * h)
        dur = t[rows[j]] - t[rows[i]]
        if diag <= 0.0 or dur <= 0:
            continue
        ratio = path / diag
        if ratio < min_ratio or path * 1000.0 / dur < min_speed:
            continue
        if m > 0 and run[e_last[m - 1]] == run[i] and i <= e_last[m - 1]:
            e_last[m - 1] = j
            e_rev[m - 1] = max(e_rev[m - 1], rv)
            e_ratio[m - 1] = max(e_ratio[m - 1], ratio)
            continue
        e_first[m] = i
        e_last[m] = j
        e_rev[m] = rv
        e_ratio[m] = ratio
        m += 1
    return e_first[:m].copy(), e_last[:m].copy(), e_rev[:m].copy(), e_ratio[:m].copy()


@_jit
def scroll_pages(starts: Any, rows: Any, y: Any, pv: Any, views: Any, bar: Any) -> Any:
    """Vertical scroll direction reversals per page view (``rows``: the scrolls' rows,
    ascending). A page view's scrolls are taken in row order on their own: a scroll reverses
    when its move from the page view's previous scroll is the opposite of the page view's
    last nonzero move (zero moves are skipped). A scroll of another page view in between (a
    next page's events stamped early, in a session ordered by time) breaks nothing.

    Page views are numbered in order of their first scroll. Returns per page view: its first
    scroll's row and its reversals; and, when ``bar`` (per page view) is given, the row of
    the scroll whose running count of reversals reached it (-1 when none did). Page view
    ordinals come from ``pv`` (per row) or, when it is empty, from ``views`` (the PAGE_VIEW
    rows, ascending; rows in recording order)."""
    n = len(rows)
    first = np.empty(n, dtype=np.int64)
    total = np.empty(n, dtype=np.int64)
    last = np.empty(n, dtype=np.int64)  # per page view: the row of its latest scroll
    heading = np.empty(n, dtype=np.int8)  # per page view: its last nonzero direction
    hit = np.full(len(bar), -1, dtype=np.int64)
    m = 0
    s = 0
    direction = 0
    group = np.int64(-1)
    ids = {np.int64(0): np.int64(0)}
    vs = 0
    vp = 0
    pv_p = np.int64(0)
    for k in range(n):
        j = rows[k]
        new_session = k == 0
        while j >= starts[s + 1]:
            s += 1
            new_session = True
        if new_session:
            ids.clear()
        pv_j, vs, vp = _pv_step(pv, views, starts[s], j, vs, vp)
        changed = new_session or pv_j != pv_p
        pv_p = pv_j
        if changed:
            if group >= 0:
                heading[group] = direction
            key = pv_j
            if key not in ids:
                first[m] = j
                total[m] = 0
                last[m] = j
                group = np.int64(m)
                ids[key] = group
                m += 1
                direction = 0
                continue
            # Back to a page view after another's scrolls: resume where it was.
            group = ids[key]
            direction = heading[group]
        d = y[j] - y[last[group]]
        last[group] = j
        if d == 0:
            continue
        now = 1 if d > 0 else -1
        if direction not in (0, now):
            total[group] += 1
            if len(bar) and hit[group] < 0 and total[group] >= bar[group]:
                hit[group] = j
        direction = now
    return first[:m].copy(), total[:m].copy(), hit


@_jit
def refills(seg: Any, pv: Any, kind: Any, f: Any, failed: Any, change: int, blur: int) -> Any:
    """Field refills among form events (arrays over those events, in row order): a CHANGE of
    a field that had an earlier CHANGE in the same page view, with a BLUR of the field or a
    failed submit (``failed``) of the page view in between. Returns per refill: its index,
    the index of the earlier CHANGE, whether a failed submit came in between, and which
    return to the field it is (1, 2, ...)."""
    n = len(seg)
    out = np.empty(n, dtype=np.int64)
    prev = np.empty(n, dtype=np.int64)
    resub = np.empty(n, dtype=np.int64)
    nth = np.empty(n, dtype=np.int64)
    m = 0
    last_change = {np.int64(0): np.int64(0)}
    last_blur = {np.int64(0): np.int64(0)}
    count = {np.int64(0): np.int64(0)}
    last_fail = {np.int64(0): np.int64(0)}
    for k in range(n):
        if k == 0 or seg[k] != seg[k - 1]:
            last_change.clear()
            last_blur.clear()
            count.clear()
            last_fail.clear()
        page = np.int64(pv[k])
        key = (page << 33) | np.int64(f[k] + 1)
        if failed[k]:
            last_fail[page] = np.int64(k)
        if kind[k] == blur:
            last_blur[key] = np.int64(k)
        if kind[k] != change:
            continue
        if key in last_change:
            p = last_change[key]
            left = key in last_blur and last_blur[key] > p
            again = page in last_fail and last_fail[page] > p
            if left or again:
                c = count.get(key, np.int64(0)) + 1
                count[key] = c
                out[m] = k
                prev[m] = p
                resub[m] = 1 if again else 0
                nth[m] = c
                m += 1
        last_change[key] = np.int64(k)
    return out[:m].copy(), prev[:m].copy(), resub[:m].copy(), nth[:m].copy()


@_jit
def funnel_walk(seg: Any, t: Any, step: Any, n_steps: int, window_ms: int) -> Any:
    """Walk each session's page views (rows of seg, t, step; step -1 = not a funnel page).

    A session enters at its first page view of step 0 and advances one step at a time, in
    order (repeats and other pages in between are allowed). It converts when it reaches the
    last step within window_ms of entering; then it may enter again. Returns per attempt that
    did not convert: (row of entry, row where the furthest step was reached, that step)."""
    n = len(seg)
    cap = n + 1  # one attempt per entering page view at most
    entry = np.empty(cap, dtype=np.int64)
    reach = np.empty(cap, dtype=np.int64)
    stepk = np.empty(cap, dtype=np.int64)
    m = 0
    state = -1
    e_row = -1
    r_row = -1
    for k in range(n + 1):
        new_session = k == n or (k > 0 and seg[k] != seg[k - 1])
        expired = state >= 0 and k < n and not new_session and t[k] - t[e_row] > window_ms
        if state >= 0 and (new_session or expired):
            entry[m] = e_row
            reach[m] = r_row
            stepk[m] = state
            m += 1
            state = -1
        if k == n:
            break
        if state == -1:
            if step[k] == 0:
                state = 0
                e_row = k
                r_row = k
        elif step[k] == state + 1:
            state += 1
            r_row = k
        if state == n_steps - 1:
            state = -1
    return entry[:m].copy(), reach[:m].copy(), stepk[:m].copy()


@njit(cache=True, nogil=True, inline="always")
def _count(kind: Any, of_kind: int) -> int:
    """How many entries of ``kind`` are ``of_kind``."""
    m = 0
    for k in range(len(kind)):
        m += kind[k] == of_kind
    return m


@_jit
def submit_neighbours(seg: Any, kind: Any, ok: Any, submit: int, error: int) -> Any:
    """Per ``submit`` event among form events (arrays in row order, ``seg`` the session
    index, ``ok`` whether an event counts as a success): the index of the first ``error``
    event after it in its session, of the last one before it, and of the first success
    after it; -1 when none."""
    n = len(seg)
    m = _count(kind, submit)
    err_after = np.full(m, -1, dtype=np.int64)
    err_before = np.full(m, -1, dtype=np.int64)
    ok_after = np.full(m, -1, dtype=np.int64)
    # forwards: the latest error so far in the session
    p = 0
    last = -1
    for k in range(n):
        if k > 0 and seg[k] != seg[k - 1]:
            last = -1
        if kind[k] == error:
            last = k
        elif kind[k] == submit:
            err_before[p] = last
            p += 1
    # backwards: the next error and the next success in the session
    p = m
    nxt_err = -1
    nxt_ok = -1
    for k in range(n - 1, -1, -1):
        if k < n - 1 and seg[k] != seg[k + 1]:
            nxt_err = -1
            nxt_ok = -1
        if kind[k] == submit:
            p -= 1
            err_after[p] = nxt_err
            ok_after[p] = nxt_ok
        if kind[k] == error:
            nxt_err = k
        if ok[k]:
            nxt_ok = k
    return err_after, err_before, ok_after


@_jit
def last_typed(seg: Any, pv: Any, kind: Any, f: Any, error: int, change: int, blur: int) -> Any:
    """Per ``error`` event among form events (arrays in row order): the index of the last
    CHANGE or BLUR of the same field in the same page view before it, -1 when none."""
    n = len(seg)
    out = np.full(_count(kind, error), -1, dtype=np.int64)
    last = {np.int64(0): np.int64(0)}
    m = 0
    for k in range(n):
        if k == 0 or seg[k] != seg[k - 1]:
            last.clear()
        key = (np.int64(pv[k]) << 33) | np.int64(f[k] + 1)
        if kind[k] == change or kind[k] == blur:
            last[key] = np.int64(k)
        elif kind[k] == error:
            if key in last:
                out[m] = last[key]
            m += 1
    return out


@njit(cache=True, nogil=True, inline="always")
def _gallop(views: Any, at: int, j: int) -> Any:
    """The first index from ``at`` on whose view is past row ``j`` (``views`` ascending):
    a few steps forward (rows and views ascend together, so the answer is usually near),
    then a binary search."""
    nv = len(views)
    for _ in range(4):
        if at >= nv or views[at] > j:
            return at
        at += 1
    return np.searchsorted(views, j, side="right")


@_jit
def page_of(starts: Any, views: Any, rows: Any) -> Any:
    """For each of ``rows`` (in recording order within sessions): its page view ordinal and
    the index into ``views`` (the PAGE_VIEW rows, ascending) of that page view's event, -1
    when the session has none. Rows before a session's first PAGE_VIEW take the first one.
    A linear merge when ``rows`` ascend; any order works."""
    m = len(rows)
    nv = len(views)
    ordinal = np.empty(m, dtype=np.int64)
    index = np.empty(m, dtype=np.int64)
    s = 0
    vs = 0  # first view of the session
    vp = 0  # first view after the row
    for k in range(m):
        j = rows[k]
        if k > 0 and j < rows[k - 1]:  # rows went back: start over from the row's session
            s = np.searchsorted(starts, j, side="right") - 1
            vs = 0
            vp = 0
        while j >= starts[_ix(s + 1)]:
            s += 1
        s_lo = starts[_ix(s)]
        if vs < nv and views[_ix(vs)] < s_lo:
            vs = _gallop(views, vs, s_lo - 1)
        vp = max(vp, vs)
        if vp < nv and views[_ix(vp)] <= j:
            vp = _gallop(views, vp, j)
        before = vp - vs
        has = vs < nv and views[_ix(vs)] < starts[_ix(s + 1)]
        ordinal[k] = max(before - 1, 0)
        index[k] = vs + ordinal[k] if has else -1
    return ordinal, index


@_jit
def order_faults(s1: Any, s0: Any, b1: Any, b0: Any, i1: Any, i0: Any, t1: Any, t0: Any) -> Any:
    """Over pairs of consecutive rows (``s1``, ``b1``, ``i1``, ``t1``: session codes,
    batches, indices in the batch and times of the later rows; ``s0``... of the rows before
    them): how many pairs of one session do not strictly ascend by (batch, i), and how many
    go back in ``t``. Branch-free over shifted views, so that it vectorizes."""
    bad_order = 0
    bad_t = 0
    for j in range(len(s1)):
        same = s1[j] == s0[j]
        back = (b1[j] < b0[j]) | ((b1[j] == b0[j]) & (i1[j] <= i0[j]))
        bad_order += same & back
        bad_t += same & (t1[j] < t0[j])
    return bad_order, bad_t


@_jit
def distinct(codes: Any) -> bool:
    """Are the (non-negative integer) codes all different? One pass over a bitmap of the
    code range (the caller falls back to sorting when that range is huge)."""
    if len(codes) == 0:
        return True
    seen = np.zeros(codes.max() + 1, dtype=np.bool_)
    for c in codes:
        if seen[c]:
            return False
        seen[c] = True
    return True
