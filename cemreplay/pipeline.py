"""The whole analysis as one call: wire batches -> decode -> sessions -> detect -> score.

:func:`run` cuts the input into chunks of whole visitors (so no session is ever cut), analyses
the chunks on a pool of threads (every core busy; worker processes with ``mode="process"``)
and puts the pieces together. The
result is the same as running the stages one after the other over the whole input::

    events = cemreplay.wire.decode(batches)
    sessions(events), detect(events), score(detect(events))

(see ``tests/test_pipeline.py``), but the full event table never exists: the caller holds only
the wire batches (about 11 bytes per event) and each worker one chunk's events.
:mod:`cemreplay.outofcore` runs the same chunk analysis over a directory of batch files larger
than memory. See ``docs/benchmarks.md`` for the figures.

Detectors that compare a page view with a baseline over all input (``excessive_scroll``,
``quick_back``), and ``funnel_abandon``, which names the last struggle among every other
finding, need every chunk's contribution first. Each chunk is still decoded once: the first
step runs every other detector and keeps the few rows those three read
(:func:`~cemreplay.detectors.detect_split`); with the chunks' page baselines merged, the second
step runs them over the kept rows (``baselines="exact"``, the default; results equal to one
pass over all input). ``baselines="chunk"`` finishes each chunk with its own baselines: those
two kinds may then differ from a run over all input.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import multiprocessing
import os
import resource
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import msgpack
import numpy as np
import numpy.typing as npt
import polars as pl

from cemreplay._jit import njit
from cemreplay.detectors import (
    Baselines,
    Config,
    Split,
    _parallel,
    detect,
    detect_split,
)
from cemreplay.detectors._base import prepare
from cemreplay.errors import ConfigError
from cemreplay.ingest import peek
from cemreplay.journeys import sessions as sessions_of
from cemreplay.score import ScoreWeights, score
from cemreplay.wire import DecodeReport, Dictionary, PackedBatches, Quarantined, decode_report
from cemreplay.wire import _codes as C
from cemreplay.wire import _kernels as K
from cemreplay.wire.decode import BatchLike, _flatten
from cemreplay.wire.dictionary import index_dictionaries

__all__ = [
    "ChunkResult",
    "PipelineResult",
    "Pool",
    "analyze_events",
    "plan_chunks",
    "run",
    "visitor_key",
]

#: Default chunk size, in bytes of wire batches (about 11 bytes per event: ~2M events; each
#: chunk costs a few tens of ms of fixed work, see docs/benchmarks.md).
CHUNK_BYTES = 24 << 20

Mode = Literal["process", "thread", "serial", "overlap", "inmemory"]

#: Chunk sizes of ``mode="overlap"``: the input in about :data:`OVERLAP_CHUNKS` chunks, each
#: 4-24 MB (0.4-2.2M events). Only two chunks' tables are alive at once (a chunk's analysis
#: needs about 4 times its table, some 180 bytes per event at its peak), so smaller chunks
#: mean a smaller peak; each chunk also costs some 50-60 ms of fixed work (mostly the
#: detectors' set-up), so small inputs get smaller chunks and large ones larger.
OVERLAP_CHUNK_BYTES = (4 << 20, 24 << 20)
OVERLAP_CHUNKS = 12


def overlap_chunks(total: int, workers: int = 1) -> int:
    """The default chunk size of ``mode="overlap"`` for ``total`` bytes of batches on
    ``workers`` threads: 4-24 MB chunks, about :data:`OVERLAP_CHUNKS` of them, their count a
    multiple of ``workers`` (so no thread is left alone with the last chunk).

    >>> round(overlap_chunks(103 << 20, 2) / (1 << 20), 2)  # 10M events: 12 chunks of 8.6 MB
    8.58
    >>> round(overlap_chunks(515 << 20, 2) / (1 << 20), 2)  # 50M events: 22 chunks of 23.4 MB
    23.41
    >>> round(overlap_chunks(11 << 20, 2) / (1 << 20), 2)  # 1M events: 4 chunks, not 3
    2.75
    """
    lo, hi = OVERLAP_CHUNK_BYTES
    size = min(hi, max(lo, total // OVERLAP_CHUNKS))
    n = max(1, round(total / size))
    n = math.ceil(n / max(1, workers)) * max(1, workers)
    return max(1, math.ceil(total / n))


BaselineMode = Literal["exact", "chunk"]
#: The site dictionaries a decode is given (see :func:`cemreplay.wire.decode`)
Dicts = Iterable[Dictionary]


# ----------------------------------------------------------------------------- one chunk


@dataclass
class ChunkResult:
    """What one chunk gives: its sessions, findings and scores, how many events it held,
    the batches set aside (``index`` into the chunk's input) and the worker's peak memory."""

    sessions: pl.DataFrame
    findings: pl.DataFrame
    scores: pl.DataFrame
    events: int
    quarantined: list[Quarantined]
    peak_rss: int
    pid: int


def peak_rss() -> int:
    """This process's peak resident memory so far, bytes (``VmHWM``; ``ru_maxrss`` where
    ``/proc`` is missing)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def analyze_events(
    events: pl.DataFrame,
    config: Config | None = None,
    weights: ScoreWeights | None = None,
    baselines: Baselines | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Sessions, findings and session scores of an event table (whole visitors).

    ``baselines`` (merged :class:`~cemreplay.detectors.Baselines` of all input) makes the
    baseline detectors compare against all input rather than this table alone.
    """
    found = detect(events, config, baselines=baselines)
    return sessions_of(events), found, score(found, weights)


# ----------------------------------------------------------------------------- chunks


def _str_at(b: BatchLike, p: int) -> tuple[bytes, int]:
    tag = b[p]
    if 0xA0 <= tag <= 0xBF:
        n, p = tag & 0x1F, p + 1
    elif tag == 0xD9:
        n, p = b[p + 1], p + 2
    elif tag == 0xDA:
        n, p = int.from_bytes(b[p + 1 : p + 3], "big"), p + 3
    else:
        raise ValueError("not a str")
    return bytes(b[p : p + n]), p + n


def visitor_key(batch: BatchLike) -> bytes:
    """The ``visitor_id`` of a wire batch, read from its envelope without decoding it
    (``b""`` when the envelope cannot be read: the decoder will say why).

    >>> from cemreplay import synth, wire
    >>> ev = synth.generate(sessions=1, seed=1).events
    >>> visitor_key(wire.encode(ev)[0]).decode() == ev["visitor_id"][0]
    True
    """
    try:
        if batch[0] not in (0x9D, 0x9E):  # fixarray of 13 (v1, v2) or 14 (v3)
            raise ValueError("not a 13- or 14-array")
        version = batch[1]
        if version > 0x7F:  # not a positive fixint: msgpack reads the envelope that far
            got = peek(bytes(batch), 2)
            return got[1][0].encode() if got and isinstance(got[1][0], str) else b""
        _, p = _str_at(batch, 2)  # site_key
        return bytes(_str_at(batch, p)[0])
    except (ValueError, IndexError, TypeError, AttributeError, msgpack.UnpackException):
        return b""


@njit(cache=True, nogil=True)
def _str_header(buf: Any, p: int, e: int) -> tuple[Any, int]:  # pragma: no cover - compiled
    """(length, start) of the msgpack str header at ``p`` (length -1: not a str header or the
    header cut short); the decoder's header reader, without its check that the bytes fit."""
    n, q, st = K._read_len(buf, p, e, 0xA0, 0xBF, 0x1F, 0xD9)
    if st != C.OK:
        return np.int64(-1), p
    return np.int64(n), q


#: Bytes of each batch's start read for its visitor (the envelope's first fields).
_HEAD = 256


@njit(cache=True, nogil=True)
def _visitor_hashes(
    buf: Any, starts: Any, ends: Any, whole: Any, out: Any
) -> None:  # pragma: no cover
    """Per batch (its first bytes ``buf[starts[k]:ends[k]]``, ``whole[k]`` all its bytes),
    the decoder's string hash of :func:`visitor_key` (of ``b""`` when the envelope cannot be read);
    ``out[k] = 0`` where only :func:`visitor_key` can tell (a version that is not a
    positive fixint, or a visitor that ends past the bytes given)."""
    for k in range(len(starts)):
        p, e = starts[k], ends[k]
        out[k] = K._hash(buf, 0, 0)
        if e - p < 2 or (buf[p] != 0x9D and buf[p] != 0x9E):  # 13 (v1, v2) or 14 (v3)
            continue
        if np.int64(buf[p + 1]) > 0x7F:
            out[k] = 0
            continue
        n, q = _str_header(buf, p + 2, e)  # site_key
        if n >= 0:
            n, q = _str_header(buf, q + n, e)  # visitor_id
        if (n < 0 or q + n > e) and whole[k]:
            out[k] = 0  # past the head (or cut short): read it whole
        elif n >= 0:
            out[k] = K._hash(buf, q, max(0, min(n, e - q)))  # cut short: what slicing gives


def visitor_groups(
    batches: Sequence[BatchLike], lens: npt.NDArray[np.int64] | None = None
) -> npt.NDArray[np.int64]:
    """Per batch, a group number: equal for batches of one visitor (:func:`visitor_key`),
    numbered by first appearance. Two visitors may share a group (a 64-bit hash collision:
    harmless, a chunk then holds both whole); one visitor never spans two. ``lens``: the
    batches' lengths, when known."""
    n = len(batches)
    if lens is None:
        lens = np.fromiter(map(len, batches), dtype=np.int64, count=n)
    heads = [b[:_HEAD] for b in batches]
    hl = np.minimum(lens, _HEAD)
    ends = np.cumsum(hl)
    whole = lens > _HEAD
    buf = np.frombuffer(b"".join(heads), dtype=np.uint8) if n else np.zeros(0, np.uint8)
    keys = np.zeros(n, dtype=np.uint64)
    _visitor_hashes(buf, ends - hl, ends, whole, keys)
    return _groups(keys, batches.__getitem__)


def packed_groups(packed: PackedBatches) -> npt.NDArray[np.int64]:
    """:func:`visitor_groups` of batches in one buffer, hashed where they lie (no copy of
    their heads)."""
    buf, starts, lens = packed.arrays()
    keys = np.zeros(len(starts), dtype=np.uint64)
    _visitor_hashes(buf, starts, starts + lens, np.zeros(len(starts), np.bool_), keys)
    return _groups(keys, lambda k: buf[starts[k] : starts[k] + lens[k]].tobytes())


def _groups(
    keys: npt.NDArray[np.uint64], batch: Callable[[int], BatchLike]
) -> npt.NDArray[np.int64]:
    """Group numbers by first appearance of the visitor hashes ``keys`` (0: hash what
    :func:`visitor_key` reads of ``batch(k)`` instead)."""
    for k in np.flatnonzero(keys == 0).tolist():  # rare: read by msgpack or whole
        v = np.frombuffer(visitor_key(batch(k)), dtype=np.uint8)
        keys[k] = K._hash(v, 0, len(v))
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.reshape(-1)]


def plan_chunks(batches: Sequence[BatchLike], chunk_bytes: int = CHUNK_BYTES) -> list[list[int]]:
    """Indices of ``batches`` cut into chunks of whole visitors, about ``chunk_bytes`` each.

    Visitors keep the order of their first batch; a visitor's batches keep input order.
    Batches whose envelope cannot be read are grouped as one visitor.
    """
    lens = np.fromiter(map(len, batches), dtype=np.int64, count=len(batches))
    return _plan(visitor_groups(batches, lens), lens, chunk_bytes)


def _plan(
    group: npt.NDArray[np.int64], lens: npt.NDArray[np.int64], chunk_bytes: int
) -> list[list[int]]:
    """:func:`plan_chunks` of batches of the visitor groups ``group`` and sizes ``lens``."""
    if chunk_bytes < 1:
        raise ConfigError(f"chunk_bytes must be >= 1, got {chunk_bytes}")
    if not len(group):
        return []
    sizes = np.bincount(group, weights=lens).astype(np.int64)
    # Close a chunk after the group that brings it to chunk_bytes (a pass over the groups).
    cut = _cuts(sizes, chunk_bytes)
    order = np.argsort(group, kind="stable")  # by group, input order within one
    bounds = np.searchsorted(group[order], cut, side="left")
    return [part.tolist() for part in np.split(order, bounds) if len(part)]


@njit(cache=True, nogil=True)
def _cuts(sizes: Any, chunk_bytes: int) -> Any:  # pragma: no cover - compiled
    """The first group of every chunk but the first."""
    out = np.empty(len(sizes), dtype=np.int64)
    m = 0
    size = 0
    for g in range(len(sizes)):
        size += sizes[g]
        if size >= chunk_bytes:
            out[m] = g + 1
            m += 1
            size = 0
    return out[:m]


def even_chunks(total: int, workers: int, most: int = CHUNK_BYTES) -> int:
    """A chunk size that cuts ``total`` bytes into a multiple of ``workers`` chunks of at
    most ``most`` bytes each.

    >>> even_chunks(114 << 20, 2) / (1 << 20)  # 10M events: 6 chunks of 19 MB
    19.0
    """
    rounds = max(1, math.ceil(total / (workers * most)))
    return max(1, math.ceil(total / (rounds * workers)))


# ----------------------------------------------------------------------------- the pool


def _warm(batches: Sequence[BatchLike] | None = None) -> int:
    """Load every numba cache in a worker (a tiny run of ``batches``, by default three
    generated sessions) and say which process it is."""
    from cemreplay import synth, wire
    from cemreplay.wire.parallel import session_parts

    if batches is None:
        batches = wire.encode(synth.generate(sessions=3, seed=1).events)
    finish(split_batches(batches, None), None, None)  # both steps, as a chunk takes them
    session_parts(batches, 2)  # wire.decode(threads=)'s own kernel
    return os.getpid()


#: The environment of worker processes: one polars thread, one detector thread.
_ONE_THREAD = {"POLARS_MAX_THREADS": "1", "CEMREPLAY_THREADS": "1"}


class Pool:
    """Workers for :func:`run`, ``workers`` of them (default: one per core), started and
    warmed up once (reuse one for many runs).

    ``mode="overlap"`` (the default): threads in this process, each decoding and analysing
    whole chunks, small ones sized by the input, so memory is bounded by the chunk size (the
    decoder's and the detectors' numba kernels release the GIL, as polars does, so every
    core works without a second interpreter or pickling; see docs/pipeline.md);
    ``mode="inmemory"`` the same with one chunk per thread, the input copied once into one
    buffer (the chunks' tables in memory at once: the fastest mode when they fit);
    ``mode="thread"`` the same with chunks of at most :data:`CHUNK_BYTES`; ``"process"``
    worker processes, each with one polars thread and one detector thread (a script using
    them must start with ``if __name__ == "__main__":``); ``"serial"`` no pool.
    """

    def __init__(self, workers: int | None = None, *, mode: Mode = "overlap", warm: bool = True):
        if mode not in ("process", "thread", "serial", "overlap", "inmemory"):
            raise ConfigError(
                f"mode must be 'process', 'thread', 'overlap', 'inmemory' or 'serial', got {mode!r}"
            )
        n = workers if workers is not None else len(os.sched_getaffinity(0))
        if n < 1:
            raise ConfigError(f"workers must be >= 1, got {n}")
        self.workers = 1 if mode == "serial" else n
        self.mode = mode
        self.executor: Executor | None = None
        if mode == "process":
            # One thread per worker for polars and for the detectors' kernels: the workers
            # already keep every core busy.
            old = {k: os.environ.get(k) for k in _ONE_THREAD}
            os.environ.update(_ONE_THREAD)
            try:
                self.executor = ProcessPoolExecutor(
                    n, mp_context=multiprocessing.get_context("spawn")
                )
                # Start every worker now, inside the environment set above (a worker is
                # spawned per job while none is idle, so n slow-enough jobs start n).
                list(self.executor.map(_warm_slow if warm else _started, range(n)))
            finally:
                for k, v in old.items():
                    if v is None:
                        del os.environ[k]
                    else:
                        os.environ[k] = v
        elif mode in ("thread", "inmemory"):
            self.executor = ThreadPoolExecutor(n)
        elif mode == "overlap":
            # n threads: :func:`run` uses n - 1 of them beside the caller's; jobs given to
            # map_bounded (cemreplay.outofcore) run on all n, as with mode="thread".
            self.executor = ThreadPoolExecutor(n, thread_name_prefix="cem-overlap")
        if warm and mode != "process":
            _warm()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        if self.executor is None:
            f: Future[Any] = Future()
            try:
                f.set_result(fn(*args))
            except BaseException as exc:
                f.set_exception(exc)
            return f
        return self.executor.submit(fn, *args)

    def map_bounded(
        self, fn: Callable[..., Any], jobs: Iterable[tuple[Any, ...]], ahead: int | None = None
    ) -> Iterator[Any]:
        """``fn(*job)`` for each job, results in job order, at most ``ahead`` jobs in flight
        (default twice the workers), so inputs are produced only as fast as they are used."""
        limit = ahead or 2 * self.workers
        pending: list[Future[Any]] = []
        try:
            for job in jobs:
                pending.append(self.submit(fn, *job))
                while len(pending) >= limit:
                    yield pending.pop(0).result()
            while pending:
                yield pending.pop(0).result()
        finally:
            for f in pending:
                f.cancel()

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _warm_slow(_: int) -> int:
    # Each worker takes one warm-up job: long enough that no worker takes two.
    pid = _warm()
    time.sleep(0.2)
    return pid


def _started(_: int) -> int:
    time.sleep(0.2)
    return os.getpid()


# ----------------------------------------------------------------------------- two steps


@dataclass
class Part:
    """A chunk after the first step: its sessions and its detection split
    (:func:`~cemreplay.detectors.detect_split`: every finding but the kinds that need all
    input, and the few rows those read); the event table itself is gone. Plain tables:
    it goes between processes as it is."""

    sessions: pl.DataFrame
    split: Split
    events: int
    quarantined: list[Quarantined]
    peak_rss: int = 0
    pid: int = 0


def split_events(
    events: pl.DataFrame, config: Config | None, quarantined: Sequence[Quarantined] = ()
) -> Part:
    """The first step on one chunk's event table (whole visitors): sessions, every detector
    but the :data:`~cemreplay.detectors.DEFERRED` ones, the chunk's share of the page
    baselines."""
    ctx = prepare(events)
    ses = sessions_of(events)
    split = detect_split(ctx, config)
    return Part(ses, split, events.height, list(quarantined), peak_rss(), os.getpid())


def split_report(report: DecodeReport, config: Config | None) -> Part:
    """:func:`split_events` of a decoded chunk, its quarantine kept."""
    return split_events(report.events, config, report.quarantined)


def split_batches(
    batches: Sequence[BatchLike], config: Config | None, dictionaries: Dicts = ()
) -> Part:
    """Decode one chunk and :func:`split_report` it (runs in a worker)."""
    return split_report(decode_report(batches, dictionaries=dictionaries), config)


def split_chunk(chunks: list[Any], k: int, config: Config | None, dictionaries: Dicts = ()) -> Part:
    """:func:`split_batches` of ``chunks[k]`` on this process's threads; the chunk is let go
    once decoded (``chunks[k]`` emptied), its event table once split."""
    chunk, chunks[k] = chunks[k], None
    assert chunk is not None
    report = decode_report(chunk, dictionaries=dictionaries)
    del chunk
    return split_report(report, config)


def finish(part: Part, weights: ScoreWeights | None, baselines: Baselines | None) -> ChunkResult:
    """The second step on one chunk: the deferred detectors with ``baselines`` (merged over
    all chunks; None: the chunk's own), then the scores."""
    found = part.split.finish(baselines)
    return ChunkResult(
        part.sessions,
        found,
        score(found, weights),
        part.events,
        part.quarantined,
        peak_rss(),  # this process's high-water mark: its first steps' peaks too
        os.getpid(),
    )


def finish_part(
    parts: list[Part | None],
    k: int,
    weights: ScoreWeights | None,
    baselines: Baselines | None,
) -> ChunkResult:
    """:func:`finish` of ``parts[k]`` on this process's threads, which it then lets go."""
    part, parts[k] = parts[k], None
    assert part is not None
    return finish(part, weights, baselines)


def every_thread(
    pool: Pool,
    fn: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    progress: Callable[[int, int], None] | None = None,
) -> list[Any]:
    """``fn(*job)`` for each job, on the pool's threads and this one together (results in
    job order); stops handing out jobs at the first error or interrupt. ``progress(done,
    jobs)`` is called after each job (one call at a time)."""
    out: list[Any] = [None] * len(jobs)
    lock = threading.Lock()
    todo = iter(range(len(jobs)))
    stop = threading.Event()
    finished = [0]

    def work() -> None:
        with _parallel.within(pool.workers):
            take_jobs()

    def take_jobs() -> None:
        while not stop.is_set():
            with lock:
                k = next(todo, None)
            if k is None:
                return
            try:
                out[k] = fn(*jobs[k])
            except BaseException:
                stop.set()
                raise
            if progress is not None:
                with lock:
                    finished[0] += 1
                    progress(finished[0], len(jobs))

    helpers = [pool.submit(work) for _ in range(max(0, pool.workers - 1))]
    try:
        work()
    except BaseException:  # an error or Ctrl-C here: the helpers stop after their job
        stop.set()
        for f in helpers:
            f.exception()
        raise
    for f in helpers:
        f.result()
    return out


# ----------------------------------------------------------------------------- the run


def check_baselines(baselines: str) -> None:
    if baselines not in ("exact", "chunk"):
        raise ConfigError(f"baselines must be 'exact' or 'chunk', got {baselines!r}")


@dataclass
class PipelineResult:
    """The analysis of a whole input.

    Attributes
    ----------
    sessions:
        :func:`cemreplay.journeys.sessions` of all events (sorted as it sorts).
    findings:
        :func:`cemreplay.detect` of all events (sorted as it sorts).
    scores:
        :func:`cemreplay.score` of the findings, per session.
    events, batches, chunks:
        How many events were decoded, batches read and chunks analysed.
    quarantined:
        Batches set aside, ``index`` into the input.
    peak_rss:
        Peak resident memory of each process that took part (pid -> bytes).
    exact:
        True when every finding is what one pass over all events gives (baselines over all
        chunks, or a single chunk); False with ``baselines="chunk"`` and several chunks.
    """

    sessions: pl.DataFrame
    findings: pl.DataFrame
    scores: pl.DataFrame
    events: int
    batches: int
    chunks: int
    quarantined: list[Quarantined] = field(default_factory=list)
    peak_rss: dict[int, int] = field(default_factory=dict)
    exact: bool = True


def combine(parts: Iterable[ChunkResult], batches: int, chunks: int, exact: bool) -> PipelineResult:
    """Put chunk results together, in the order one pass over all events gives."""
    ses, found, scores = [], [], []
    events = 0
    quarantined: list[Quarantined] = []
    rss: dict[int, int] = {}
    for p in parts:
        ses.append(p.sessions)
        found.append(p.findings)
        scores.append(p.scores)
        events += p.events
        quarantined.extend(p.quarantined)
        rss[p.pid] = max(rss.get(p.pid, 0), p.peak_rss)
    rss[os.getpid()] = peak_rss()
    if not ses:
        empty = analyze_events(decode_report([]).events)
        ses, found, scores = [empty[0]], [empty[1]], [empty[2]]
    s = pl.concat(ses).sort("visitor_id", "start", "split_session_id")
    f = pl.concat(found).sort("session_id", "t", "kind", "page_view", "target", maintain_order=True)
    sc = pl.concat(scores).sort(
        ["score", "session_id", "visitor_id"], descending=[True, False, False]
    )
    return PipelineResult(s, f, sc, events, batches, chunks, quarantined, rss, exact)


def run(
    batches: Sequence[BatchLike],
    *,
    config: Config | None = None,
    weights: ScoreWeights | None = None,
    pool: Pool | None = None,
    workers: int | None = None,
    mode: Mode = "overlap",
    chunk_bytes: int | None = None,
    errors: Literal["raise", "quarantine"] = "raise",
    baselines: BaselineMode = "exact",
    progress: Callable[[int, int], None] | None = None,
    dictionaries: Iterable[Dictionary] = (),
) -> PipelineResult:
    """Decode and analyse wire batches on every core: sessions, findings and scores.

    Parameters
    ----------
    batches:
        Wire batches (any order, any number of visitors).
    config, weights:
        Detector configuration and score weights (defaults when None).
    pool:
        A :class:`Pool` to reuse; else one is started for this call (``workers``, ``mode``).
    chunk_bytes:
        About how many bytes of batches each chunk holds (whole visitors). Default: the
        input split into a multiple of the workers' count, each at most :data:`CHUNK_BYTES`
        (so every worker gets the same share).
    baselines:
        ``"exact"``: page baselines over all input (see the module docstring);
        ``"chunk"``: each chunk's own. Either way each chunk is decoded once.
    errors:
        ``"raise"``: a bad batch raises :class:`~cemreplay.errors.DecodeError` naming its
        position in ``batches``; ``"quarantine"``: it is set aside in ``quarantined``.
    progress:
        Called as ``progress(chunks_done, chunks)`` after each chunk's first step (its
        decode and analysis: nearly all of the work; the second step is the three kinds
        that need all input, over a few percent of the rows).
    dictionaries:
        The site dictionaries version-3 batches name (see :func:`cemreplay.wire.decode`);
        a batch naming one not given is a bad batch (``errors`` says what happens).

    Returns
    -------
    PipelineResult
    """
    if errors not in ("raise", "quarantine"):
        raise ConfigError(f"errors must be 'raise' or 'quarantine', got {errors!r}")
    check_baselines(baselines)
    dicts = tuple(index_dictionaries(dictionaries).values())  # checked once, picklable
    batches = batches if isinstance(batches, Sequence) else list(batches)
    with contextlib.ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(Pool(workers, mode=mode, warm=False))
        overlap = pool.mode == "overlap"
        inmemory = pool.mode == "inmemory"
        chunks: list[list[BatchLike]] = []
        packed: list[PackedBatches] = []  # inmemory: each chunk's places in one buffer
        if inmemory:
            # The input copied once into one buffer (as the decoder would copy each chunk, on
            # a thread that holds the GIL to do it), visitors hashed there, and each chunk
            # decoded from its places in it; the buffer goes once every chunk is decoded.
            buf, starts, lens = _flatten(batches)
            if chunk_bytes is None:  # one chunk per thread
                chunk_bytes = max(1, math.ceil(int(lens.sum()) / pool.workers))
            plan = _plan(packed_groups(PackedBatches(buf, starts, lens)), lens, chunk_bytes)
            packed = [PackedBatches(buf, starts[idx], lens[idx]) for idx in plan]
            del buf  # held by the chunks alone from here
        else:
            if chunk_bytes is None:
                total = sum(len(b) for b in batches)
                chunk_bytes = (
                    overlap_chunks(total, pool.workers)
                    if overlap
                    else even_chunks(total, pool.workers)
                )
            plan = plan_chunks(batches, chunk_bytes)
            chunks = [[batches[k] for k in idx] for idx in plan]
            if pool.mode == "process":  # to other processes: one bytes object each
                chunks = [[bytes(b) for b in c] for c in chunks]
        # One pass: each chunk decoded once and analysed but for the kinds that need all
        # input, its table let go; then those kinds over the few rows each chunk kept, with
        # the page baselines merged (exact) or each chunk's own.
        firsts: list[Part | None]
        if pool.mode != "process":  # on this process's threads, every one busy
            todo: list[Any] = list(packed) if inmemory else list(chunks)
            del packed, chunks  # each chunk is now only in todo, which split_chunk empties
            jobs1 = [(todo, k, config, dicts) for k in range(len(todo))]
            firsts = every_thread(pool, split_chunk, jobs1, progress)
        else:
            firsts = []
            for part in pool.map_bounded(split_batches, ((c, config, dicts) for c in chunks)):
                firsts.append(part)
                if progress is not None:
                    progress(len(firsts), len(plan))
            del chunks
        for idx, first in zip(plan, firsts, strict=True):
            assert first is not None
            first.quarantined = [
                dataclasses.replace(q, index=idx[q.index]) for q in first.quarantined
            ]
            if first.quarantined and errors == "raise":
                raise first.quarantined[0].error()
        # each process's peak in the first step (a worker may take no second step)
        first_peaks = [(f.pid, f.peak_rss) for f in firsts if f is not None]
        base = None
        if baselines == "exact" and len(plan) > 1:
            base = Baselines.merge(f.split.baselines for f in firsts if f is not None)
        exact = base is not None or len(plan) <= 1
        if pool.mode != "process":
            done = every_thread(
                pool, finish_part, [(firsts, k, weights, base) for k in range(len(firsts))]
            )
        else:
            jobs = ((f, weights, base) for f in firsts)
            done = list(pool.map_bounded(finish, jobs))
        result = combine(done, len(batches), len(plan), exact)
        for pid, peak in first_peaks:
            result.peak_rss[pid] = max(result.peak_rss.get(pid, 0), peak)
        return result
