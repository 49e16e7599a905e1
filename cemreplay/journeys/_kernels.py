"""The one sequential scan journeys need: splitting snippet sessions into sessions.

A maximum session length cannot be vectorized: where the second piece starts depends on
where the first one was cut. The scan also keeps the running maximum of ``t`` so that an
event stamped a little early never produces a negative gap. ``split_reference`` is the same
loop in plain Python; tests compare the two and ``NUMBA_DISABLE_JIT=1`` runs the reference.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cemreplay._jit import njit

__all__ = ["split", "split_reference"]


def split_reference(
    new: npt.NDArray[np.bool_],
    t: npt.NDArray[np.int64],
    brk: npt.NDArray[np.bool_],
    day: npt.NDArray[np.int64],
    inactivity: int,
    max_length: int,
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64]]:
    """Piece number (0-based, within the snippet session) and running max of ``t`` per row.

    Rows are in recording order, ``new`` marks each snippet session's first row. A row starts a
    new piece when ``brk`` is set, when ``t`` exceeds the running maximum by more than
    ``inactivity``, when ``day`` passes every earlier day, or when ``t`` is more than
    ``max_length`` after the piece's start. ``inactivity``/``max_length`` <= 0 turn those off.
    """
    n = t.shape[0]
    piece = np.zeros(n, dtype=np.uint32)
    tm = np.zeros(n, dtype=np.int64)
    p = 0
    start = 0
    tmax = 0
    dmax = 0
    for k in range(n):
        if new[k]:
            p = 0
            start = t[k]
            tmax = t[k]
            dmax = day[k]
        else:
            cut = bool(brk[k]) or day[k] > dmax
            if inactivity > 0 and t[k] - tmax > inactivity:
                cut = True
            if max_length > 0 and t[k] - start > max_length:
                cut = True
            if cut:
                p += 1
                start = max(t[k], tmax)
            tmax = max(tmax, t[k])
            dmax = max(dmax, day[k])
        piece[k] = p
        tm[k] = tmax
    return piece, tm


split = njit(cache=True, nogil=True)(split_reference)
