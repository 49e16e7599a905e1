"""Export the event table to Parquet, partitioned so that each partition can be analysed alone.

Layout (Hive-style)::

    DIR/_cemreplay.json                                   written last: the export is complete
    DIR/visitor_bucket=K/day=YYYY-MM-DD/part-NNNNN.parquet

A *session* (the snippet's ``session_id``) goes whole to one partition: ``visitor_bucket`` is
``crc32(visitor_id) mod partitions`` of the visitor of the session's first event and ``day``
the UTC date of that event (where the session starts; a session running past midnight stays
in its first day). Every rule of :mod:`cemreplay.journeys` and :mod:`cemreplay.detectors`
looks within one snippet session only (inactivity, length, campaign and midnight splits cut a
snippet session into pieces; funnels and clicks-to-goal walk one session), apart from the
page baselines, which :class:`cemreplay.detectors.Baselines` merges across partitions. So
the partitions, analysed one by one, give what the whole table gives. Reading a partition
back gives an :data:`~cemreplay.schema.EVENT_SCHEMA` table (:func:`read_partition`).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgpack
import polars as pl

from cemreplay.errors import ConfigError, SchemaError
from cemreplay.events import check
from cemreplay.schema import EVENT_SCHEMA, WIRE_VERSION

if TYPE_CHECKING:
    from cemreplay.wire import Dictionary

__all__ = [
    "MANIFEST",
    "ExportResult",
    "export_batches",
    "export_events",
    "export_store",
    "partitions",
    "read_batch_files",
    "read_partition",
]

#: The file that marks a finished export (written last).
MANIFEST: Final = "_cemreplay.json"
#: Format of the export, in the manifest.
FORMAT: Final = "cemreplay-parquet-1"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    path: Path
    events: int
    sessions: int
    partitions: int  # non-empty (visitor_bucket, day) directories
    files: int


def bucket_of(visitors: pl.Series, n: int) -> pl.Series:
    """``crc32(visitor_id as UTF-8) mod n`` per row (null: the empty string): stable across
    processes, machines and library versions, unlike a hash seeded per process."""
    distinct = visitors.cast(pl.String).fill_null("").unique()
    table = {v: zlib.crc32(v.encode()) % n for v in distinct.to_list()}
    return (
        visitors.cast(pl.String)
        .fill_null("")
        .replace_strict(table, return_dtype=pl.UInt32)
        .alias("visitor_bucket")
    )


def _keys(events: pl.DataFrame, n: int) -> pl.DataFrame:
    """Per session: its visitor bucket and day (from its first event by time)."""
    heads = events.group_by("session_id").agg(
        pl.col("visitor_id").sort_by("t").first(), pl.col("t").min()
    )
    return heads.select(
        "session_id",
        bucket_of(heads["visitor_id"], n),
        pl.from_epoch("t", time_unit="ms").dt.date().alias("day"),
    )


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(
            f"export directory {str(out)!r} exists and is not empty; "
            "hint: export into a new directory (an export never mixes with another)"
        )


class _Writer:
    def __init__(self, out: Path, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 65_536:
            raise ConfigError(
                f"partitions must be an int within 1..65536, got {n!r}; "
                "hint: a few times the number of workers (see docs/scale-out.md)"
            )
        _check_out(out)
        self.out, self.n = out, n
        self.chunk = self.events = self.sessions = self.files = 0
        self.dirs: set[Path] = set()

    def write(self, events: pl.DataFrame) -> None:
        check(events, where="export")
        events = events.select(EVENT_SCHEMA.names())
        if events.height == 0:
            return
        keyed = events.join(_keys(events, self.n), on="session_id", how="left")
        for (bucket, day), part in keyed.group_by("visitor_bucket", "day", maintain_order=True):
            d = self.out / f"visitor_bucket={bucket}" / f"day={day}"
            d.mkdir(parents=True, exist_ok=True)
            part.drop("visitor_bucket", "day").write_parquet(
                d / f"part-{self.chunk:05d}.parquet", statistics=True
            )
            self.dirs.add(d)
            self.files += 1
        self.chunk += 1
        self.events += events.height
        self.sessions += events["session_id"].n_unique()

    def finish(self, source: str) -> ExportResult:
        self.out.mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": FORMAT,
            "wire_version": WIRE_VERSION,
            "partitions": self.n,
            "key": "visitor_bucket = crc32(visitor_id) % partitions; day = UTC date of the "
            "session's first event; a snippet session is never split",
            "source": source,
            "events": self.events,
            "sessions": self.sessions,
            "files": self.files,
        }
        (self.out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        return ExportResult(self.out, self.events, self.sessions, len(self.dirs), self.files)


def export_events(
    chunks: Iterable[pl.DataFrame],
    out: str | Path,
    *,
    partitions: int = 16,
    source: str = "events",
    progress: Progress | None = None,
    total: int = 0,
) -> ExportResult:
    """Write event tables to ``out`` as partitioned Parquet (see the module docstring).

    Parameters
    ----------
    chunks : iterable of pl.DataFrame
        Event tables; each must hold whole sessions (no session in two chunks), as
        :meth:`cemreplay.store.SQLiteStore.iter_events` yields them.
    out : str or Path
        A new or empty directory.
    partitions : int
        Visitor buckets (default 16); each bucket is split further by day.
    source : str
        Where the events come from, for the manifest.
    progress : callable, optional
        ``progress(sessions_done, total)`` after each chunk.
    total : int
        Sessions expected (for ``progress``; 0 when unknown).

    Returns
    -------
    ExportResult
    """
    w = _Writer(Path(out), partitions)
    if progress is not None:
        progress(0, total)
    for chunk in chunks:
        w.write(chunk)
        if progress is not None:
            progress(w.sessions, max(total, w.sessions))
    if progress is not None and w.sessions < total:  # some indexed sessions had no events
        progress(w.sessions, w.sessions)
    return w.finish(source)


def export_store(
    db: str | Path,
    out: str | Path,
    *,
    partitions: int = 16,
    chunk_visitors: int = 5_000,
    progress: Progress | None = None,
) -> ExportResult:
    """Export a store's events (decoded a chunk of visitors at a time, so memory stays
    bounded by the chunk) to partitioned Parquet.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from cemreplay import synth, wire
    >>> from cemreplay.store import open_store
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with open_store(d / "s.db") as st:
    ...     _ = st.put_batches(wire.encode(synth.generate(sessions=20, seed=1).events))
    >>> export_store(d / "s.db", d / "pq", partitions=2).sessions
    20
    """
    from cemreplay.store import open_store

    with open_store(db, create=False) as st:
        total = st.sessions(limit=None).height
        return export_events(
            st.iter_events(chunk_visitors=chunk_visitors),
            out,
            partitions=partitions,
            source=f"store {Path(db).name}",
            progress=progress,
            total=total,
        )


def read_batch_files(paths: Iterable[str | Path]) -> list[bytes]:
    """Wire batches from files: each file one batch, or a msgpack array of batches (as
    ``tests/fixtures/snippet_batches.msgpack``); a directory stands for its files, sorted."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise ConfigError(f"no batch file or directory at {str(p)!r}")
    out: list[bytes] = []
    for f in files:
        data = f.read_bytes()
        try:
            obj = msgpack.unpackb(data)
        except Exception:  # not msgpack at all: the decoder will say what is wrong with it
            obj = None
        if isinstance(obj, list) and obj and all(isinstance(b, bytes) for b in obj):
            out += obj
        else:
            out.append(data)
    return out


def export_batches(
    paths: Iterable[str | Path],
    out: str | Path,
    *,
    partitions: int = 16,
    progress: Progress | None = None,
    dictionaries: Iterable[Dictionary] = (),
) -> ExportResult:
    """Decode wire batch files (see :func:`read_batch_files`) and export them. Bad batches
    raise :class:`~cemreplay.errors.DecodeError` naming the batch; nothing is written then.
    The batches are decoded at once (a session's batches may sit in any file): for more
    than fits in memory, ingest them into a store and use :func:`export_store`.
    ``dictionaries``: the site dictionaries version-3 batches name (as
    :func:`cemreplay.wire.decode` takes them)."""
    from cemreplay.wire import decode

    batches = read_batch_files(paths)
    events = decode(batches, dictionaries=dictionaries)
    return export_events(
        [events],
        out,
        partitions=partitions,
        source=f"{len(batches)} wire batches",
        progress=progress,
        total=events["session_id"].n_unique(),
    )


# ----------------------------------------------------------------------------- reading back


def partitions(path: str | Path) -> list[Path]:
    """The partition directories of a finished export, sorted by bucket then day."""
    root = Path(path)
    if not (root / MANIFEST).is_file():
        raise ConfigError(
            f"{str(root)!r} is not a finished cemreplay export (no {MANIFEST}); "
            "hint: write it with `cemreplay export --parquet DIR` and let it finish"
        )
    meta = json.loads((root / MANIFEST).read_text())
    if meta.get("format") != FORMAT:
        raise ConfigError(
            f"{str(root / MANIFEST)!r} has format {meta.get('format')!r}, this cemreplay "
            f"reads {FORMAT!r}; hint: export again with this version"
        )

    def key(d: Path) -> tuple[int, str]:
        return int(d.parent.name.split("=", 1)[1]), d.name

    return sorted((d for d in root.glob("visitor_bucket=*/day=*") if d.is_dir()), key=key)


def read_partition(path: str | Path) -> pl.DataFrame:
    """One partition directory as an event table (:data:`EVENT_SCHEMA`)."""
    files = sorted(Path(path).glob("*.parquet"))
    if not files:
        raise SchemaError(f"partition {str(path)!r} holds no .parquet file")
    try:
        parts = [pl.read_parquet(f, hive_partitioning=False) for f in files]
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise SchemaError(f"partition {str(path)!r}: cannot read Parquet ({exc})") from exc
    events = pl.concat([p.select(EVENT_SCHEMA.names()).cast(EVENT_SCHEMA) for p in parts])
    return check(events, where=f"partition {path}")


def iter_partitions(path: str | Path) -> Iterator[tuple[Path, pl.DataFrame]]:
    """Each partition of an export with its events."""
    for d in partitions(path):
        yield d, read_partition(d)
