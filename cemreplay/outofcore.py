"""Inputs larger than memory: a directory of batch files, or a store, in bounded memory.

**A batch directory** holds files named ``*.cemb``, each a sequence of records: a 4-byte
little-endian length followed by one wire batch of that many bytes. Every visitor's batches
are in one file (so a file is a chunk that cuts no session); :func:`write_file` writes one
such file, :func:`read_file` reads one back. A file of about 10 MB holds about a million
events.

:func:`run_dir` analyses a batch directory a few files at a time on a :class:`~cemreplay.
pipeline.Pool` (each worker reads its own files), and :func:`run_store` a store a chunk of
visitors at a time (each worker opens the store itself). Memory stays bounded by the chunks in
flight; with ``out=`` each chunk's sessions, findings and scores go to Parquet files there
instead of memory (read them back with :func:`read_results`). The results are the same as
:func:`cemreplay.pipeline.run` over all the batches at once (``tests/test_pipeline.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from cemreplay.detectors import Baselines, Config
from cemreplay.errors import CemReplayError, ConfigError
from cemreplay.pipeline import (
    BaselineMode,
    ChunkResult,
    PipelineResult,
    Pool,
    analyze_batches,
    analyze_events,
    baselines_of_batches,
    check_baselines,
    combine,
    peak_rss,
)
from cemreplay.score import ScoreWeights
from cemreplay.wire import Dictionary

__all__ = [
    "BatchFileError",
    "batch_files",
    "read_file",
    "read_results",
    "run_dir",
    "run_store",
    "write_file",
]

SUFFIX = ".cemb"
_LEN = struct.Struct("<I")
_PARTS = ("sessions", "findings", "scores")


class BatchFileError(CemReplayError, ValueError):
    """A batch file is cut short or is not a batch file."""


def write_file(path: str | os.PathLike[str], batches: Iterable[bytes]) -> int:
    """Write wire batches (whole visitors) to one batch file; returns the bytes written.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "a.cemb")
    >>> write_file(p, [b"xy", b"z"]), [bytes(b) for b in read_file(p)]
    (11, [b'xy', b'z'])
    """
    n = 0
    with open(path, "wb") as f:
        for b in batches:
            f.write(_LEN.pack(len(b)))
            f.write(b)
            n += 4 + len(b)
    return n


def read_file(path: str | os.PathLike[str]) -> list[memoryview]:
    """The batches of one batch file, as views into one buffer read at once."""
    data = Path(path).read_bytes()
    view = memoryview(data)
    out = []
    p, end = 0, len(data)
    while p < end:
        if p + 4 > end:
            raise BatchFileError(
                f"{path}: record length cut short at byte {p}; hint: the file was not "
                "written completely, write it again with cemreplay.outofcore.write_file"
            )
        (n,) = _LEN.unpack_from(data, p)
        if p + 4 + n > end:
            raise BatchFileError(
                f"{path}: batch of {n} bytes at byte {p} runs past the end ({end} bytes); "
                "hint: the file was not written completely"
            )
        out.append(view[p + 4 : p + 4 + n])
        p += 4 + n
    return out


def batch_files(path: str | os.PathLike[str]) -> list[Path]:
    """The batch files of a directory, sorted by name."""
    d = Path(path)
    if not d.is_dir():
        raise ConfigError(f"{d} is not a directory; hint: give a directory of *{SUFFIX} files")
    return sorted(d.glob(f"*{SUFFIX}"))


def _write_parts(out: Path, name: str, part: ChunkResult) -> ChunkResult:
    for what in _PARTS:
        getattr(part, what).write_parquet(out / f"{what}-{name}.parquet")
    return ChunkResult(
        part.sessions.clear(),
        part.findings.clear(),
        part.scores.clear(),
        part.events,
        part.quarantined,
        peak_rss(),
        part.pid,
    )


def _dir_chunk(
    files: Sequence[str],
    dictionaries: tuple[Dictionary, ...],
    config: Config | None,
    weights: ScoreWeights | None,
    baselines: Baselines | None,
    out: str | None,
) -> ChunkResult:
    batches = _read_files(files)
    part = analyze_batches(batches, config, weights, baselines, dictionaries)
    del batches
    if out is not None:
        part = _write_parts(Path(out), Path(files[0]).stem, part)
    return part


def _dir_baselines(files: Sequence[str], dictionaries: tuple[Dictionary, ...]) -> Baselines:
    return baselines_of_batches(_read_files(files), dictionaries)


def _read_files(files: Sequence[str]) -> list[memoryview]:
    """Every batch of the given batch files, in order."""
    batches: list[memoryview] = []
    for f in files:
        batches.extend(read_file(f))
    return batches


def _run_jobs(
    jobs: list[tuple[Any, ...]],
    work: Callable[..., ChunkResult],
    first_pass: Callable[..., Any],
    *,
    pool: Pool | None,
    workers: int | None,
    config: Config | None,
    weights: ScoreWeights | None,
    out: str | os.PathLike[str] | None,
    progress: Callable[[int, int], None] | None,
    baselines: BaselineMode,
) -> PipelineResult:
    check_baselines(baselines)
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
    dest = None if out is None else str(out)
    with contextlib.ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(Pool(workers, warm=False))
        base = None
        if baselines == "exact" and len(jobs) > 1:
            base = Baselines.merge(pool.map_bounded(first_pass, jobs))
        exact = base is not None or len(jobs) <= 1

        def results() -> Iterator[ChunkResult]:
            assert pool is not None
            full = ((*j, config, weights, base, dest) for j in jobs)
            for done, part in enumerate(pool.map_bounded(work, full), 1):
                if progress is not None:
                    progress(done, len(jobs))
                yield part

        return combine(results(), 0, len(jobs), exact)


def run_dir(
    path: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    config: Config | None = None,
    weights: ScoreWeights | None = None,
    pool: Pool | None = None,
    workers: int | None = None,
    files_per_chunk: int = 1,
    baselines: BaselineMode = "exact",
    progress: Callable[[int, int], None] | None = None,
    dictionaries: Iterable[Dictionary] = (),
) -> PipelineResult:
    """Analyse a batch directory in bounded memory (see the module docstring).

    Parameters
    ----------
    path:
        The directory of ``*.cemb`` batch files.
    out:
        A directory for the results as Parquet parts (``sessions-*.parquet``,
        ``findings-*.parquet``, ``scores-*.parquet``); the returned frames are then empty,
        :func:`read_results` reads them. None: the results come back in memory.
    files_per_chunk:
        Files each worker analyses at once (more: fewer, larger chunks).
    baselines:
        ``"exact"`` (two passes over the files) or ``"chunk"``, as in
        :func:`cemreplay.pipeline.run`.
    progress:
        Called as ``progress(chunks_done, chunks)``.
    dictionaries:
        The site dictionaries version-3 batches name (:class:`cemreplay.wire.Dictionary`,
        e.g. ``SQLiteStore.dictionaries()``); every worker gets them all.

    Returns
    -------
    PipelineResult
        ``batches`` counts nothing here (0): files are read by the workers.
    """
    files = [str(f) for f in batch_files(path)]
    if files_per_chunk < 1:
        raise ConfigError(f"files_per_chunk must be >= 1, got {files_per_chunk}")
    dicts = tuple(dictionaries)
    jobs = [
        (files[k : k + files_per_chunk], dicts) for k in range(0, len(files), files_per_chunk)
    ]
    return _run_jobs(
        jobs,
        _dir_chunk,
        _dir_baselines,
        pool=pool,
        workers=workers,
        config=config,
        weights=weights,
        out=out,
        progress=progress,
        baselines=baselines,
    )


def _store_events(path: str, visitors: Sequence[str]) -> pl.DataFrame:
    from cemreplay.store import open_store

    with open_store(path, create=False) as st:
        return st.events(visitors=visitors)


def _store_chunk(
    path: str,
    visitors: Sequence[str],
    config: Config | None,
    weights: ScoreWeights | None,
    baselines: Baselines | None,
    out: str | None,
) -> ChunkResult:
    events = _store_events(path, visitors)
    ses, found, scores = analyze_events(events, config, weights, baselines)
    part = ChunkResult(ses, found, scores, events.height, [], peak_rss(), os.getpid())
    if out is not None:
        # visitor ids are the snippet's strings: name the files by a digest of the first
        name = hashlib.sha256(visitors[0].encode()).hexdigest()[:20]
        part = _write_parts(Path(out), f"store-{name}", part)
    return part


def _store_baselines(path: str, visitors: Sequence[str]) -> Baselines:
    return Baselines.of(_store_events(path, visitors))


def run_store(
    path: str | os.PathLike[str],
    *,
    chunk_visitors: int = 5_000,
    out: str | os.PathLike[str] | None = None,
    config: Config | None = None,
    weights: ScoreWeights | None = None,
    pool: Pool | None = None,
    workers: int | None = None,
    baselines: BaselineMode = "exact",
    progress: Callable[[int, int], None] | None = None,
) -> PipelineResult:
    """Analyse every session of the store at ``path``, ``chunk_visitors`` visitors at a time
    (each worker opens the store and decodes its chunk). Batches the store quarantined stay
    in its quarantine; ``out`` and ``baselines`` as in :func:`run_dir`. The store is only
    read."""
    from cemreplay.store import open_store

    if chunk_visitors < 1:
        raise ConfigError(f"chunk_visitors must be >= 1, got {chunk_visitors}")
    with open_store(path, create=False) as st:
        vs = st.sessions(limit=None)["visitor_id"].unique().sort().to_list()
    jobs = [(str(path), vs[k : k + chunk_visitors]) for k in range(0, len(vs), chunk_visitors)]
    return _run_jobs(
        jobs,
        _store_chunk,
        _store_baselines,
        pool=pool,
        workers=workers,
        config=config,
        weights=weights,
        out=out,
        progress=progress,
        baselines=baselines,
    )


def read_results(out: str | os.PathLike[str]) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Sessions, findings and scores written by ``run_dir(out=)`` or ``run_store(out=)``,
    put together and sorted as :func:`cemreplay.pipeline.run` returns them."""
    frames = []
    for what in _PARTS:
        files = sorted(Path(out).glob(f"{what}-*.parquet"))
        frames.append(pl.concat([pl.read_parquet(f) for f in files]) if files else None)
    ses, found, scores = frames
    if ses is None or found is None or scores is None:
        raise ConfigError(f"{out} holds no results; hint: run run_dir(..., out={str(out)!r})")
    return (
        ses.sort("visitor_id", "start", "split_session_id"),
        found.sort("session_id", "t", "kind", "page_view", "target", maintain_order=True),
        scores.sort(["score", "session_id", "visitor_id"], descending=[True, False, False]),
    )
