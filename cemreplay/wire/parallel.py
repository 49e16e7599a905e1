"""Decode on several threads: the batches split by session, each part decoded on its own.

Every rule that looks at more than one batch (repeats and conflicts, the visitor of a session,
string table definitions, the canonical order) looks only at the batches of one session, and
the table comes out ordered by ``session_id`` string. So the input can be cut into parts that
each hold whole sessions, contiguous in that order; each part is decoded by the one-thread
decoder (``decode._decode_numba``: numba kernels that release the GIL, and polars, which does
too) in its own thread, and the parts' tables concatenated in order are the one-thread table,
row for row. Quarantined batches and the ``batches`` table get their input positions back.

Only the session of each batch is read up front (the envelope's first four fields, read as
the decoder reads them); a batch whose envelope cannot be read that far fails in the decoder
whatever part it is in, and goes to the first.

:func:`decode_threads` is what ``cemreplay.wire.decode(batches, threads=N)`` and
``decode_report(..., threads=N)`` run.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from cemreplay._jit import njit
from cemreplay.wire import _codes as C
from cemreplay.wire import _kernels as K
from cemreplay.wire.decode import (
    COLUMNS,
    BatchLike,
    Columns,
    Decoded,
    DecodeReport,
    Dictionaries,
    _decode_all,
    _decode_numba,
    _flatten,
    decode_columns,
    events_table,
    new_columns,
)

__all__ = ["decode_threads", "session_parts"]

#: Fewer bytes than this per thread: one thread (a thread costs more than it saves).
MIN_BYTES_PER_THREAD = 1 << 20
#: Bytes of each batch's start read for its session id (the envelope's first four fields;
#: a batch whose ids run past them is read whole).
HEAD = 128


@njit(cache=True, nogil=True)
def _session_spans(
    buf: Any, starts: Any, ends: Any, whole: Any, off: Any, length: Any
) -> None:  # pragma: no cover - compiled
    """Per batch (its first bytes ``buf[starts[k]:ends[k]]``, ``whole[k]``: all of it), where
    its ``session_id`` is (``off``, ``length``), read with the decoder's readers. ``length``
    -1: the envelope is bad before it (the decoder rejects the batch); -2: cut short by the
    head (read it whole)."""
    for k in range(len(starts)):
        e = ends[k]
        length[k] = -1
        n13, p, st = K._read_array(buf, starts[k], e)
        good = n13 in (13, 14)
        if st == C.OK and good:
            _v, p, st = K._read_uint(buf, p, e)
            for _ in range(3):  # site_key, visitor_id, session_id
                if st != C.OK:
                    break
                n, q, st = K._read_sized(buf, p, e, 0xA0, 0xBF, 0x1F, 0xD9)
                off[k], p = q, q + n
        if st == C.OK and good:
            length[k] = p - off[k]
        elif st == C.TRUNCATED and not whole[k]:
            length[k] = -2


def _spans(
    items: Sequence[BatchLike], lens: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """A buffer of the batches' first bytes and where each one's ``session_id`` is in it
    (length -1: unreadable; see :func:`_session_spans`)."""
    heads = [b[:HEAD] for b in items]
    hl = np.minimum(lens, HEAD)
    while True:  # twice at most: the heads, then with the batches cut short whole
        ends = np.cumsum(hl)
        buf = np.frombuffer(b"".join(heads), dtype=np.uint8) if heads else np.zeros(0, np.uint8)
        off, length = np.zeros_like(hl), np.zeros_like(hl)
        _session_spans(buf, ends - hl, ends, hl == lens, off, length)
        cut = np.flatnonzero(length == -2).tolist()
        if not cut:
            return buf, off, length
        for k in cut:
            heads[k] = items[k]
        hl[cut] = lens[cut]


def session_parts(items: Sequence[BatchLike], parts: int) -> list[npt.NDArray[np.int64]]:
    """Input positions of ``items`` cut into at most ``parts`` parts of whole sessions, of
    about equal bytes, contiguous in ``session_id`` order (part k's sessions all sort before
    part k+1's, as the decoder orders them); each part's positions ascending (input order).
    Batches whose session cannot be read go to the first part."""
    n = len(items)
    lens = np.fromiter(map(len, items), dtype=np.int64, count=n)
    buf, off, length = _spans(items, lens)
    ok = np.flatnonzero(length >= 0)
    ids, first = K.intern_bytes(buf, off[ok], length[ok])
    # the decoder's order of sessions: by string (null, i.e. not UTF-8, as "")
    names = _decode_all(buf, off[ok][first], length[ok][first])[0]
    rank = np.empty(len(first), np.int64)
    rank[names.fill_null("").arg_sort().to_numpy()] = np.arange(len(first))
    size = np.bincount(rank[ids], weights=lens[ok], minlength=len(first))
    # A session goes to the part its first byte falls in (of `parts` equal shares).
    before = np.cumsum(size) - size
    part_of = (before * parts // max(float(size.sum()), 1.0)).astype(np.int64)
    batch_part = np.zeros(n, np.int64)
    batch_part[ok] = part_of[rank[ids]]
    return [p for p in (np.flatnonzero(batch_part == k) for k in range(parts)) if len(p)]


class _Shared:
    """One set of output columns for every part: once each part knows how many events it
    decodes (the first attempt's count), the columns are made once and each part gets its
    slice, in part order, so the parts' events land where the table wants them and nothing
    is copied after. A part whose first attempt fails decodes again into columns of its own
    (then, and when any part fails before it knows its count, the slices are joined by
    copying, as before)."""

    def __init__(self, parts: int):
        self.totals = [0] * parts
        self.views: list[Columns | None] = [None] * parts
        self.cols: Columns | None = None
        self.offsets = np.zeros(parts + 1, np.int64)
        self.barrier = threading.Barrier(parts, action=self._make)

    def _make(self) -> None:
        self.offsets[1:] = np.cumsum(self.totals)
        self.cols = new_columns(int(self.offsets[-1]))

    def alloc(self, k: int) -> Callable[[int], Columns]:
        def take(total: int) -> Columns:
            self.totals[k] = total
            try:
                self.barrier.wait()
            except threading.BrokenBarrierError:  # another part failed: columns of its own
                return new_columns(total)
            assert self.cols is not None
            o = int(self.offsets[k])
            view = {name: c[o : o + total] for name, c in self.cols.items()}
            self.views[k] = view
            return view

        return take

    def decode(self, k: int, job: list[BatchLike], dicts: Dictionaries) -> Decoded:
        try:
            return decode_columns(*_flatten(job), dicts, alloc=self.alloc(k))
        except BaseException:
            self.barrier.abort()  # the other parts must not wait for this one
            raise

    def joined(self, parts: list[Decoded]) -> Columns:
        """The parts' columns one after the other: the shared columns when every part's
        events are in its slice, else a copy."""
        if self.cols is not None and all(
            d.cols is v for d, v in zip(parts, self.views, strict=True)
        ):
            return self.cols
        return {name: np.concatenate([d.cols[name] for d in parts]) for name, _ in COLUMNS}


def decode_threads(
    items: list[BatchLike], threads: int, dicts: Dictionaries | None = None
) -> DecodeReport:
    """:func:`cemreplay.wire.decode_report` of ``items`` on ``threads`` threads (the calling
    thread and ``threads - 1`` more), v3 batches resolving against ``dicts`` (by site and id):
    the same report as one thread."""
    dicts = dicts or {}
    n = min(threads, max(1, sum(map(len, items)) // MIN_BYTES_PER_THREAD))
    if n <= 1:
        return _decode_numba(items, dicts)
    idx = session_parts(items, n)
    if len(idx) <= 1:
        return _decode_numba(items, dicts)
    jobs = [[items[k] for k in part.tolist()] for part in idx]
    shared = _Shared(len(jobs))
    with ThreadPoolExecutor(len(jobs) - 1, thread_name_prefix="cem-decode") as ex:
        futures = [ex.submit(shared.decode, k, job, dicts) for k, job in enumerate(jobs) if k]
        try:
            parts = [shared.decode(0, jobs[0], dicts)]
            parts.extend(f.result() for f in futures)
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    del jobs
    quarantined = sorted(
        (
            dataclasses.replace(q, index=int(part[q.index]))
            for part, r in zip(idx, parts, strict=True)
            for q in r.quarantined
        ),
        key=lambda q: q.index,
    )
    batches = pl.concat(
        r.batches.with_columns(pl.Series("index", part[r.batches["index"].to_numpy()]))
        for part, r in zip(idx, parts, strict=True)
    )
    duplicates = sum(r.duplicates for r in parts)
    cols = shared.joined(parts)
    shared.cols = None
    for r in parts:  # only the joined columns from here (the parts keep their strings)
        r.cols = {}
    return DecodeReport(events_table(cols), batches, quarantined, duplicates)
