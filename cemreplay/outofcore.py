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
import dataclasses
import hashlib
import os
import struct
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from cemreplay.detectors import Baselines, Config, Split
from cemreplay.errors import CemReplayError, ConfigError
from cemreplay.pipeline import (
    BaselineMode,
    ChunkResult,
    Part,
    PipelineResult,
    Pool,
    check_baselines,
    combine,
    finish,
    peak_rss,
    split_batches,
    split_events,
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
#: Prefix of the first step's tables in ``out`` (gone once the chunk is finished).
_SPLIT = "split-"


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
    for what in _PARTS[1:]:  # the sessions went out with the first step
        getattr(part, what).write_parquet(out / f"{what}-{name}.parquet")
    return ChunkResult(
        part.sessions,
        part.findings.clear(),
        part.scores.clear(),
        part.events,
        part.quarantined,
        peak_rss(),
        part.pid,
    )


def _spill(out: Path, name: str, part: Part) -> Part:
    """The first step's tables to ``out``: the chunk's sessions (final) and its split's
    findings and kept rows (read back by :func:`_finish_job`); what stays in memory is the
    chunk's share of the page baselines."""
    part.sessions.write_parquet(out / f"sessions-{name}.parquet")
    sp = part.split
    sp.findings.write_parquet(out / f"{_SPLIT}findings-{name}.parquet")
    sp.rest.write_parquet(out / f"{_SPLIT}rest-{name}.parquet")
    empty = Split(sp.findings.clear(), sp.rest.clear(), sp.baselines, sp.config)
    return dataclasses.replace(part, sessions=part.sessions.clear(), split=empty)


def _finish_job(
    part: Part,
    name: str,
    weights: ScoreWeights | None,
    baselines: Baselines | None,
    out: str | None,
) -> ChunkResult:
    """The second step on one chunk (runs in a worker): the deferred detectors and the
    scores, from the tables :func:`_spill` wrote when ``out`` is given."""
    if out is None:
        return finish(part, weights, baselines)
    d = Path(out)
    spilled = [d / f"{_SPLIT}{what}-{name}.parquet" for what in ("findings", "rest")]
    found, rest = (pl.read_parquet(f) for f in spilled)
    part = dataclasses.replace(
        part, split=dataclasses.replace(part.split, findings=found, rest=rest)
    )
    done = _write_parts(d, name, finish(part, weights, baselines))
    for f in spilled:
        f.unlink()
    return done


def _dir_chunk(
    files: Sequence[str],
    dictionaries: tuple[Dictionary, ...],
    config: Config | None,
    out: str | None,
) -> tuple[Part, str]:
    batches = _read_files(files)
    part = split_batches(batches, config, dictionaries)
    del batches
    name = Path(files[0]).stem
    return (_spill(Path(out), name, part) if out is not None else part), name


def _read_files(files: Sequence[str]) -> list[memoryview]:
    """Every batch of the given batch files, in order."""
    batches: list[memoryview] = []
    for f in files:
        batches.extend(read_file(f))
    return batches


def _run_jobs(
    jobs: list[tuple[Any, ...]],
    work: Callable[..., tuple[Part, str]],
    *,
    pool: Pool | None,
    workers: int | None,
    config: Config | None,
    weights: ScoreWeights | None,
    out: str | os.PathLike[str] | None,
    progress: Callable[[int, int], None] | None,
    baselines: BaselineMode,
) -> PipelineResult:
    """Each job read and analysed once (``work``: every kind but the ones that need all
    input, the chunk's tables spilled to ``out`` when given), then, with the page
    baselines merged, the deferred kinds and the scores of each chunk."""
    check_baselines(baselines)
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
    dest = None if out is None else str(out)
    with contextlib.ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(Pool(workers, mode="process", warm=False))
        firsts: list[tuple[Part, str]] = []
        for got in pool.map_bounded(work, ((*j, config, dest) for j in jobs)):
            firsts.append(got)
            if progress is not None:
                progress(len(firsts), len(jobs))
        base = None
        if baselines == "exact" and len(jobs) > 1:
            base = Baselines.merge(p.split.baselines for p, _ in firsts)
        exact = base is not None or len(jobs) <= 1
        second = ((p, name, weights, base, dest) for p, name in firsts)
        result = combine(pool.map_bounded(_finish_job, second), 0, len(jobs), exact)
        for p, _ in firsts:  # a worker may take no second step: its first steps' peak
            result.peak_rss[p.pid] = max(result.peak_rss.get(p.pid, 0), p.peak_rss)
        return result


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
        ``"exact"`` (page baselines over all files) or ``"chunk"``, as in
        :func:`cemreplay.pipeline.run`. Either way each file is read and decoded once.
    progress:
        Called as ``progress(chunks_done, chunks)`` after each chunk's first step (its
        decode and analysis).
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
    jobs = [(files[k : k + files_per_chunk], dicts) for k in range(0, len(files), files_per_chunk)]
    return _run_jobs(
        jobs,
        _dir_chunk,
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
    out: str | None,
) -> tuple[Part, str]:
    events = _store_events(path, visitors)
    part = split_events(events, config)
    # visitor ids are the snippet's strings: name the files by a digest of the first
    name = "store-" + hashlib.sha256(visitors[0].encode()).hexdigest()[:20]
    return (_spill(Path(out), name, part) if out is not None else part), name


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
