"""Kernels on several threads over disjoint parts of the event table.

The detectors' numba kernels release the GIL (``nogil=True``). A kernel that works session
by session (or row by row) can then run on each part of the table in its own thread: the
parts are session-disjoint (or row-disjoint) and the results, concatenated in part order,
are exactly the single-threaded results. Small tables stay on one thread (starting a thread
costs more than the work).

The number of threads is ``$CEMREPLAY_THREADS`` or the machine's cores (at most
:data:`MAX_THREADS`); :func:`threads` changes it for a block of code (tests use it to check
that every split gives the same findings as one thread).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Final

import numpy as np
import numpy.typing as npt

#: More threads than this rarely pay: the passes are bound by memory bandwidth.
MAX_THREADS: Final = 8
#: Rows a part should have at the least, else fewer parts are used.
MIN_ROWS: Final = 250_000


def _default() -> int:
    env = os.environ.get("CEMREPLAY_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return min(int(env), 64)
    return max(1, min(os.cpu_count() or 1, MAX_THREADS))


_state: dict[str, int] = {"threads": _default(), "min_rows": MIN_ROWS}
#: A thread's own count (:func:`this_thread`), before ``_state``'s.
_local = threading.local()
_lock = threading.Lock()
_pools: list[ThreadPoolExecutor] = []  # the one pool, once made


@contextmanager
def threads(n: int, *, min_rows: int | None = None) -> Iterator[None]:
    """Run the detectors on ``n`` threads (and parts of at least ``min_rows`` rows) inside
    the block."""
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    old = dict(_state)
    _state["threads"] = n
    if min_rows is not None:
        _state["min_rows"] = max(1, min_rows)
    try:
        yield
    finally:
        _state.update(old)


@contextmanager
def this_thread(n: int) -> Iterator[None]:
    """Run the detectors called from this thread on ``n`` threads inside the block (other
    threads keep theirs): for callers that already keep every core busy with threads of
    their own, such as the pipeline's, whose kernels would otherwise split their parts
    again and wait on each other."""
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    old = getattr(_local, "threads", None)
    _local.threads = n
    try:
        yield
    finally:
        _local.threads = old


@contextmanager
def within(workers: int) -> Iterator[None]:
    """The block is one of ``workers`` jobs running at once on threads of their own: with
    more than one, the detectors it calls run on one thread (:func:`this_thread`), since the
    jobs already keep the cores busy; with one, on as many as set."""
    if workers <= 1:
        yield
        return
    with this_thread(1):
        yield


def _executor() -> ThreadPoolExecutor:
    with _lock:
        if not _pools or _pools[-1]._max_workers < _state["threads"]:
            _pools.append(ThreadPoolExecutor(_state["threads"], thread_name_prefix="cemreplay"))
        return _pools[-1]


def _count(rows: int) -> int:
    mine = getattr(_local, "threads", None)
    return max(1, min(mine or _state["threads"], rows // _state["min_rows"]))


def row_parts(n: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` row ranges that cover ``0..n``, about equal."""
    p = _count(n)
    cut = [n * k // p for k in range(p + 1)]
    return [(cut[k], cut[k + 1]) for k in range(p)]


def session_parts(starts: npt.NDArray[np.int64]) -> list[tuple[int, int]]:
    """``[s0, s1)`` session ranges (``starts``: session boundaries) of about equal rows."""
    sessions = len(starts) - 1
    n = int(starts[-1]) if len(starts) else 0
    p = min(_count(n), max(sessions, 1))
    if p == 1:
        return [(0, max(sessions, 0))]
    cut = np.searchsorted(starts, [n * k // p for k in range(p + 1)]).clip(0, sessions)
    cut[0], cut[-1] = 0, sessions
    return [(int(a), int(b)) for a, b in itertools.pairwise(cut) if b > a]


def run(fn: Callable[..., Any], parts: Sequence[tuple[int, int]], *args: Any) -> list[Any]:
    """``fn(*args, lo, hi)`` for each part, in threads when there are several; results in
    part order. ``fn`` must not call :func:`run` itself (the pool's threads would wait on
    each other)."""
    if len(parts) <= 1:
        return [fn(*args, *part) for part in parts]
    futures = [_executor().submit(fn, *args, *part) for part in parts]
    return [f.result() for f in futures]


def cat(results: list[Any], index: int) -> Any:
    """The ``index``-th output of every part, concatenated."""
    arrays = [r[index] for r in results]
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def row_cuts(starts: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]) -> list[tuple[int, int]]:
    """Session-disjoint slices ``a:b`` of ``rows`` (ascending rows of the table whose
    sessions start at ``starts``), one per part (at least one)."""
    cuts = [
        (int(np.searchsorted(rows, starts[s0])), int(np.searchsorted(rows, starts[s1])))
        for s0, s1 in session_parts(starts)
    ]
    return [c for c in cuts if c[1] > c[0]] or [(0, len(rows))]


def over_rows(
    fn: Callable[..., Any], starts: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]
) -> list[tuple[int, int, Any]]:
    """``fn(rows[a:b], part)`` for the slices of :func:`row_cuts` (``part`` counts them from
    0), in threads when there are several: a list of (a, b, result), in order (``a`` turns
    indices into the slice into indices into ``rows``)."""
    cuts = row_cuts(starts, rows)

    def one(k: int, _: int) -> tuple[int, int, Any]:
        a, b = cuts[k]
        return a, b, fn(rows[a:b], k)

    return run(one, [(k, k + 1) for k in range(len(cuts))])
