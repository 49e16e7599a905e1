"""Funnel step matching and drop-off tags: single scans over points in unit order (private).

Points (page views and milestones) come sorted by unit, then unit order. ``hit[j, k]`` says
whether point ``j`` reaches step ``k``. A backward pass over each unit gives, per point and
step, the next point at or after it that reaches the step (in a scratch table as long as the
longest unit); every attempt (a possible start) then costs one look-up per step, so a unit
costs O(points x steps) whatever its length.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cemreplay._jit import njit

__all__ = ["match_steps"]

_jit = njit(cache=True, nogil=True)

ORDERED, STRICT, ANY = 0, 1, 2
I64 = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]


@_jit
def match_steps(
    unit: U32, tm: I64, hit: npt.NDArray[np.bool_], order: int, window: int, n_units: int
) -> tuple[npt.NDArray[np.uint32], I64]:
    """Per unit: the level its best attempt reaches and that attempt's step times.

    ``order``: 0 ordered (each step the earliest later point reaching it), 1 strict (the
    very next point), 2 any (each step the earliest point at or after the start). Every
    step's time must be within ``window`` of the start's. The best attempt reaches the most
    steps, the earliest on ties. ``times[u, k]`` is meaningful for ``k < level[u]``.
    """
    n, m = hit.shape
    level = np.zeros(n_units, dtype=np.uint32)
    times = np.zeros((n_units, m), dtype=np.int64)
    cur_t = np.zeros(m, dtype=np.int64)
    longest = 0
    a = 0
    while a < n:
        b = a + 1
        while b < n and unit[b] == unit[a]:
            b += 1
        longest = max(longest, b - a)
        a = b
    # nxt[j - a, k]: the first point at or after j (in the unit) reaching step k, or -1
    nxt = np.empty((longest + 1, m), dtype=np.int64)
    a = 0
    while a < n:
        b = a + 1
        while b < n and unit[b] == unit[a]:
            b += 1
        for k in range(m):
            nxt[b - a, k] = -1
        for j in range(b - 1, a - 1, -1):
            for k in range(m):
                nxt[j - a, k] = j if hit[j, k] else nxt[j - a + 1, k]
        u = unit[a]
        best = 0
        for s in range(a, b):
            if best == m:
                break
            lv = 0
            if order == ANY:
                anyhit = False
                for k in range(m):
                    if hit[s, k]:
                        anyhit = True
                        break
                if not anyhit:
                    continue
                for k in range(m):
                    j = nxt[s - a, k]
                    if j < 0 or tm[j] - tm[s] > window:
                        break
                    cur_t[k] = tm[j]
                    lv += 1
            else:
                if not hit[s, 0]:
                    continue
                cur_t[0] = tm[s]
                lv = 1
                c = s
                for k in range(1, m):
                    if c + 1 >= b:
                        break
                    j = (c + 1 if hit[c + 1, k] else -1) if order == STRICT else nxt[c + 1 - a, k]
                    if j < 0 or tm[j] - tm[s] > window:
                        break
                    cur_t[k] = tm[j]
                    c = j
                    lv += 1
            if lv > best:
                best = lv
                for k in range(lv):
                    times[u, k] = cur_t[k]
        level[u] = best
        a = b
    return level, times
