"""The store: raw batches as the source of truth, a sessions index, quarantine and findings.

This is the only module that touches a database. :class:`Store` is the interface (a
``Protocol``, so a PostgreSQL store can be added beside :class:`SQLiteStore` later);
:func:`open_store` opens one from a path.

What is kept (see ``docs/store.md``):

* ``batches``: every accepted batch, as received after scrubbing (:mod:`cemreplay.scrub`),
  keyed by ``(session_id, seq)``. A retried batch (same key, same bytes) is stored once; the
  same key with other bytes goes to quarantine as a conflict. Everything else is derived
  from these rows and can be rebuilt.
* ``sessions``: one row per session for lookups. :meth:`SQLiteStore.put_batches` fills the
  ids, the first batch time, the batch and event counts, and marks the session *dirty*;
  :meth:`SQLiteStore.analyze` decodes dirty sessions and fills the rest: exact first/last
  event time, page count, the segment fields (``locale``, ``country``, ``campaign`` from the
  ``ATTRIBUTE`` events, ``device`` from the first page view) and the struggle score.
* ``quarantine``: batches that failed validation, with the decoder's code and reason and
  their bytes (e-mail-like and long digit runs masked in place), never dropped.
* ``findings``: the detectors' findings per session, replaced when a session is re-analyzed.
* ``report_facts``: what :mod:`cemreplay.reports` needs of each analyzed chunk of sessions
  (opaque bytes; ``sessions.facts_part`` names a session's current part), kept by
  :meth:`SQLiteStore.analyze` so a report decodes no batch (version 4).
* ``dictionaries``: the per-site string dictionaries wire version 3 batches name
  (:class:`cemreplay.wire.Dictionary`, immutable, never deleted; version 5). Every decode the
  store does is given the dictionaries its batches name.

The SQLite database runs in WAL mode with ``synchronous=FULL``: when :meth:`put_batches`
returns, its batches survive a crash or a power cut. One call is one transaction, so a
caller that gathers many batches into one call (the collector's writer does) pays one sync
for all of them. Several threads and processes may write one store; writers queue on
SQLite's lock (``busy_timeout``).

The schema is versioned by ``PRAGMA user_version`` and migrated forward on open, one step at a
time (:data:`MIGRATIONS`); a store written by a newer cemreplay is refused.
"""

from __future__ import annotations

import collections
import itertools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, runtime_checkable

import msgpack
import polars as pl

from cemreplay import ingest
from cemreplay._jit import DISABLED as JIT_DISABLED
from cemreplay.errors import CemReplayError, ConfigError
from cemreplay.events import session_stats
from cemreplay.schema import FINDING_KINDS, FINDINGS_SCHEMA, EventKind
from cemreplay.scrub import mask_bytes
from cemreplay.wire import DecodeReport, decode_report

if TYPE_CHECKING:
    from cemreplay.wire import Dictionary

__all__ = [
    "FINDING_COLUMNS",
    "INDEX_ROW_SCHEMA",
    "MIGRATIONS",
    "PAGE_HOURS_SCHEMA",
    "PAGE_SESSIONS_SCHEMA",
    "QUARANTINE_SCHEMA",
    "SCHEMA_VERSION",
    "SESSIONS_SCHEMA",
    "AnalyzeResult",
    "Outcome",
    "SQLiteStore",
    "SessionView",
    "Store",
    "StoreError",
    "UnknownSessionError",
    "open_store",
]


class StoreError(CemReplayError):
    """The store cannot be opened or written (wrong file, newer schema, disk full)."""


class UnknownSessionError(CemReplayError, LookupError):
    """No batch of this session is stored."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one batch given to :meth:`Store.put_batches`.

    ``status`` is ``"stored"`` (new), ``"duplicate"`` (the same bytes were already stored:
    nothing to do) or ``"quarantined"`` (failed validation, or conflicts with a stored batch
    of the same key; ``reason`` says why, ``code`` is the decoder's code).
    """

    status: Literal["stored", "duplicate", "quarantined"]
    session_id: str | None
    seq: int | None
    reason: str | None = None
    code: int = 0

    @property
    def ok(self) -> bool:
        """True when the batch is safely stored (new or already there)."""
        return self.status != "quarantined"


@dataclass(frozen=True)
class AnalyzeResult:
    """What :meth:`Store.analyze` did."""

    sessions: int
    events: int
    findings: int
    quarantined: int
    detectors: bool  # False when cemreplay.detectors could not be imported


@dataclass
class _Analyzed:
    """What analysing one chunk of sessions found, before it is written
    (:meth:`SQLiteStore._compute`, :meth:`SQLiteStore._write_analyzed`)."""

    seen: dict[str, int]
    moved: list[Any]
    events: int
    stats: dict[str, tuple[Any, ...]]
    found: pl.DataFrame | None
    scores: dict[str, float]
    pages: pl.DataFrame
    facts: tuple[str, bytes] | None
    detected: bool


@dataclass(frozen=True)
class SessionView:
    """What a lookup shows: a session's events, findings and its sessions index row."""

    events: pl.DataFrame
    findings: pl.DataFrame
    info: dict[str, Any]


SESSIONS_SCHEMA: Final = pl.Schema(
    {
        "session_id": pl.String(),
        "visitor_id": pl.String(),
        "site_key": pl.String(),
        "first_ts": pl.Int64(),
        "last_ts": pl.Int64(),
        "pages": pl.Int64(),
        "events": pl.Int64(),
        "batches": pl.Int64(),
        "locale": pl.String(),
        "country": pl.String(),
        "campaign": pl.String(),
        "device": pl.String(),
        "score": pl.Float64(),
        "analyzed": pl.Boolean(),
    }
)

QUARANTINE_SCHEMA: Final = pl.Schema(
    {
        "id": pl.Int64(),
        "received_ms": pl.Int64(),
        "session_id": pl.String(),
        "seq": pl.Int64(),
        "code": pl.Int64(),
        "reason": pl.String(),
        "data": pl.Binary(),
    }
)

#: Rows of the per-page baselines (:meth:`SQLiteStore.page_sessions`).
PAGE_SESSIONS_SCHEMA: Final = pl.Schema(
    {
        "session_id": pl.String(),
        "page_url": pl.String(),
        "visitor_id": pl.String(),
        "t": pl.Int64(),
        "struggled": pl.Int64(),
        "kinds": pl.String(),
    }
)

#: Hourly per-page sums (:meth:`SQLiteStore.page_hours`).
PAGE_HOURS_SCHEMA: Final = pl.Schema(
    {
        "page_url": pl.String(),
        "hour": pl.Int64(),
        "sessions": pl.Int64(),
        "struggling": pl.Int64(),
    }
)

#: Finding kinds that make a page view count as struggling in the per-page baselines (every
#: kind; ``unknown``, a click that may be dead in a session without response signals, is not).
STRUGGLE_KINDS: Final = FINDING_KINDS

#: The columns of the findings table (those of ``cemreplay.detectors.detect``'s output).
FINDING_COLUMNS: Final = FINDINGS_SCHEMA  # one definition, in cemreplay.schema

#: The columns of a sessions index row kept with the report facts (``analyze``).
INDEX_ROW_SCHEMA: Final = pl.Schema(
    {
        c: SESSIONS_SCHEMA[c]
        for c in (
            "session_id", "visitor_id", "first_ts", "last_ts", "pages", "events", "locale",
            "country", "campaign", "device", "score",
        )
    }
)  # fmt: skip

#: A session with at most this many events is decoded by the pure-Python reference decoder
#: (same table, tested equal): for a few batches it beats the numba path's fixed cost (1.2 ms
#: against 3.1 ms for 100 events; even at about 500; numba wins from 1,000 on, measured on the
#: development machine). It makes support lookups of ordinary sessions faster.
SMALL_DECODE_EVENTS: Final = 400

#: The schema version this cemreplay writes.
SCHEMA_VERSION: Final = 5

#: Width of a page baseline bucket (``page_hours``), ms.
HOUR_MS: Final = 3_600_000

#: How long a (site, id) no dictionary row had is remembered as missing before the table is
#: asked again (a batch naming an unknown id costs at most one lookup per key this often).
DICTIONARY_MISS_S: Final = 2.0

#: Sessions decoded per step when learning a dictionary (progress is reported per step).
LEARN_CHUNK_SESSIONS: Final = 2_000

# ----------------------------------------------------------------------------------------------
# Migrations: MIGRATIONS[v] brings a database at version v-1 to version v. A new database runs
# them all, so every step is exercised by every test that opens a store.

_V1_DDL: Final = """
CREATE TABLE batches (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY,
    received_ms INTEGER NOT NULL,
    reason TEXT NOT NULL,
    data BLOB NOT NULL
);
"""


def _migrate_v1(con: sqlite3.Connection) -> None:
    """Raw batches and quarantine only (cemreplay's first store)."""
    for stmt in _statements(_V1_DDL):
        con.execute(stmt)


def _migrate_v2(con: sqlite3.Connection) -> None:
    """Envelope columns on batches (backfilled), the sessions index, findings, richer quarantine."""
    for col, typ in (
        ("visitor_id", "TEXT"),
        ("site_key", "TEXT"),
        ("base_ts", "INTEGER"),
        ("n", "INTEGER"),
    ):
        con.execute(f"ALTER TABLE batches ADD COLUMN {col} {typ}")
    rows = con.execute("SELECT rowid, data FROM batches").fetchall()
    for rowid, data in rows:
        env = msgpack.unpackb(data, raw=False, strict_map_key=False)
        con.execute(
            "UPDATE batches SET site_key=?, visitor_id=?, base_ts=?, n=? WHERE rowid=?",
            (env[1], env[2], env[5], env[8], rowid),
        )
    for col, typ in (
        ("session_id", "TEXT"),
        ("seq", "INTEGER"),
        ("code", "INTEGER NOT NULL DEFAULT 0"),
    ):
        con.execute(f"ALTER TABLE quarantine ADD COLUMN {col} {typ}")
    for stmt in _statements(
        """
        CREATE TABLE sessions (
            session_id TEXT PRIMARY KEY,
            visitor_id TEXT NOT NULL,
            site_key TEXT NOT NULL,
            first_ts INTEGER NOT NULL,
            last_ts INTEGER NOT NULL,
            pages INTEGER,
            events INTEGER NOT NULL,
            batches INTEGER NOT NULL,
            locale TEXT,
            country TEXT,
            campaign TEXT,
            device TEXT,
            score REAL,
            dirty INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX sessions_visitor ON sessions (visitor_id, first_ts);
        CREATE INDEX sessions_first ON sessions (first_ts);
        CREATE INDEX sessions_dirty ON sessions (dirty) WHERE dirty = 1;
        CREATE TABLE findings (
            session_id TEXT NOT NULL,
            visitor_id TEXT,
            page_view INTEGER,
            kind TEXT NOT NULL,
            t INTEGER,
            page_url TEXT,
            target TEXT,
            field TEXT,
            severity REAL,
            count INTEGER,
            duration_ms INTEGER,
            detail TEXT,
            explanation TEXT
        );
        CREATE INDEX findings_session ON findings (session_id);
        CREATE INDEX findings_kind ON findings (kind);
        INSERT INTO sessions (session_id, visitor_id, site_key, first_ts, last_ts, events,
                              batches, dirty)
            SELECT session_id, min(visitor_id), min(site_key), min(base_ts), max(base_ts),
                   sum(n), count(*), 1
            FROM batches GROUP BY session_id;
        """
    ):
        con.execute(stmt)


def _migrate_v3(con: sqlite3.Connection) -> None:
    """Per-page struggle baselines: one row per (session, page) and their hourly sums.

    Existing sessions are marked dirty so the next analysis fills the new tables.
    """
    for stmt in _statements(
        """
        CREATE TABLE page_sessions (
            session_id TEXT NOT NULL,
            page_url TEXT NOT NULL,
            visitor_id TEXT,
            t INTEGER NOT NULL,
            struggled INTEGER NOT NULL,
            kinds TEXT NOT NULL,
            PRIMARY KEY (session_id, page_url)
        );
        CREATE INDEX page_sessions_t ON page_sessions (t);
        CREATE TABLE page_hours (
            page_url TEXT NOT NULL,
            hour INTEGER NOT NULL,
            sessions INTEGER NOT NULL,
            struggling INTEGER NOT NULL,
            PRIMARY KEY (page_url, hour)
        );
        CREATE INDEX page_hours_hour ON page_hours (hour);
        UPDATE sessions SET dirty = 1;
        """
    ):
        con.execute(stmt)


def _migrate_v4(con: sqlite3.Connection) -> None:
    """Report facts kept per session (:mod:`cemreplay.reports`), filled by :meth:`analyze`.

    ``report_facts`` holds one row per analyzed chunk: the config key the facts were computed
    with, how many sessions the chunk had, and the facts' tables as bytes;
    ``sessions.facts_part`` names the row holding a session's current facts (NULL: none yet).
    Existing sessions keep their findings and are not marked dirty (a report computes their
    facts from the events until the next :meth:`analyze`, which fills them).
    """
    for stmt in _statements(
        """
        CREATE TABLE report_facts (
            id INTEGER PRIMARY KEY,
            config TEXT NOT NULL,
            sessions INTEGER NOT NULL,
            data BLOB NOT NULL
        );
        ALTER TABLE sessions ADD COLUMN facts_part INTEGER;
        CREATE INDEX sessions_facts ON sessions (facts_part);
        """
    ):
        con.execute(stmt)


def _migrate_v5(con: sqlite3.Connection) -> None:
    """Per-site string dictionaries (wire version 3): ``dictionaries (site_key, id, data,
    created)``, ``data`` being :meth:`cemreplay.wire.Dictionary.to_json`, and
    ``batches.dictionary``, the id a batch names (0 none; NULL in older rows: no stored batch
    can name one, a version 3 batch was refused before), so a decode knows which dictionaries
    to pass without reading the batches' envelopes."""
    con.execute(
        "CREATE TABLE dictionaries (site_key TEXT NOT NULL, id INTEGER NOT NULL, "
        "data BLOB NOT NULL, created REAL NOT NULL, PRIMARY KEY (site_key, id))"
    )
    con.execute("ALTER TABLE batches ADD COLUMN dictionary INTEGER")


MIGRATIONS: Final[dict[int, Callable[[sqlite3.Connection], None]]] = {
    1: _migrate_v1,
    2: _migrate_v2,
    3: _migrate_v3,
    4: _migrate_v4,
    5: _migrate_v5,
}


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


# ----------------------------------------------------------------------------------------------


def next_dictionary_id(latest: Dictionary | None, now: float | None = None) -> int:
    """The id of a site's next dictionary: the latest's + 1, and at least the time in whole
    seconds (``now``, default :func:`time.time`).

    Browsers keep a dictionary they fetched for up to an hour (HTTP cache), and a batch names
    its dictionary only by (site, id). Ids taken from the clock mean a store started afresh
    (a wiped or replaced collector) never gives an id some browser may still hold to other
    strings: counting from 1 again would, and the store would then read those browsers'
    batches with the wrong strings. The cost is a 5-byte id in each version 3 batch instead
    of 1 byte (0.01-0.04 bytes/event for batches of 100-500 events).
    """
    clock = int(time.time() if now is None else now)
    return max(1 if latest is None else latest.id + 1, clock)


@runtime_checkable
class Store(Protocol):
    """What a store does. :class:`SQLiteStore` is the one there is."""

    def put_batches(self, batches: Sequence[bytes], *, scrub: bool = True) -> list[Outcome]: ...

    def session_events(self, session_id: str) -> pl.DataFrame: ...

    def session_view(self, session_id: str) -> SessionView: ...

    def sessions(
        self,
        *,
        visitor: str | None = None,
        since: int | datetime | str | None = None,
        limit: int | None = 100,
        session_id: str | None = None,
    ) -> pl.DataFrame: ...

    def events(
        self, *, sessions: Iterable[str] | None = None, visitors: Iterable[str] | None = None
    ) -> pl.DataFrame: ...

    def iter_events(self, *, chunk_visitors: int = 5_000) -> Iterator[pl.DataFrame]: ...

    def quarantine(self, *, limit: int | None = None) -> pl.DataFrame: ...

    def save_findings(
        self, findings: pl.DataFrame, *, sessions: Iterable[str] | None = None
    ) -> None: ...

    def findings(
        self, *, kind: str | Sequence[str] | None = None, session_id: str | None = None
    ) -> pl.DataFrame: ...

    def analyze(
        self, *, progress: Callable[[int, int], None] | None = None, chunk_visitors: int = 2_000
    ) -> AnalyzeResult: ...

    def put_dictionary(self, d: Dictionary) -> int: ...

    def dictionaries(self, site_key: str | None = None) -> list[Dictionary]: ...

    def latest_dictionary(self, site_key: str) -> Dictionary | None: ...

    def learn_dictionary(
        self,
        site_key: str,
        *,
        sessions: int = 20_000,
        min_visitors: int = 20,
        progress: Callable[[int, int], None] | None = None,
    ) -> Dictionary | None: ...

    def close(self) -> None: ...


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_since(since: int | datetime | str | None) -> int | None:
    """Epoch ms from an int (ms), a datetime, an ISO 8601 date/time (UTC unless it says
    otherwise) or a duration back from now (``30m``, ``12h``, ``7d``)."""
    if since is None:
        return None
    if isinstance(since, bool):
        raise ConfigError(f"since must be a time, got {since!r}")
    if isinstance(since, int):
        return since
    if isinstance(since, datetime):
        dt = since if since.tzinfo else since.replace(tzinfo=UTC)
        return int(dt.timestamp() * 1000)
    s = str(since).strip()
    units = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
    if len(s) > 1 and s[-1] in units and s[:-1].isdigit():
        return _now_ms() - int(s[:-1]) * units[s[-1]]
    if s.isdigit():
        return int(s)
    try:
        return parse_since(datetime.fromisoformat(s))
    except ValueError:
        raise ConfigError(
            f"since {since!r} is not a time; hint: use epoch ms, an ISO date such as "
            "2026-01-31 or 2026-01-31T12:00, or a duration back from now such as 24h or 7d"
        ) from None


class SQLiteStore:
    """A :class:`Store` in one SQLite file (WAL, ``synchronous=FULL``).

    Safe to share between threads (each thread gets its own connection) and to open from
    several processes at once.

    >>> import tempfile, os
    >>> with SQLiteStore(os.path.join(tempfile.mkdtemp(), "s.db")) as st:
    ...     st.sessions().height
    0
    """

    def __init__(
        self, path: str | os.PathLike[str], *, create: bool = True, timeout_s: float = 30.0
    ):
        self.path = Path(path)
        self._timeout = timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        if self.path.is_dir():
            raise StoreError(
                f"{self.path} is a directory; hint: give a file path such as "
                f"{self.path / 'cemreplay.db'}"
            )
        if not create and not self.path.exists():
            raise StoreError(
                f"no store at {self.path}; hint: check the path, or start `cemreplay serve "
                f"--db {self.path}` to create one"
            )
        if not self.path.parent.exists():
            raise StoreError(f"folder {self.path.parent} does not exist; hint: create it first")
        # dictionaries read so far (immutable: never re-read) and keys recently found missing
        self._dicts: dict[tuple[str, int], Dictionary] = {}
        self._dict_misses: dict[tuple[str, int], float] = {}
        self._dict_lock = threading.Lock()
        #: Counts the dictionaries put through this object (what serves them from memory
        #: compares it to know when to ask again).
        self.dictionary_generation = 0
        self._migrate()

    # -- connections and transactions

    def _con(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            try:
                con = sqlite3.connect(
                    self.path,
                    timeout=self._timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
                con.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
                mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"{self.path} cannot be put in WAL mode (got {mode})")
                con.execute("PRAGMA synchronous = FULL")
            except sqlite3.DatabaseError as exc:
                raise StoreError(
                    f"cannot open {self.path} as a cemreplay store: {exc}; hint: is it an "
                    "SQLite file written by cemreplay?"
                ) from exc
            self._local.con = con
            with self._lock:
                self._all.append(con)
        return con

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        con = self._con()
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(
                f"cannot write {self.path}: {exc}; hint: another process may "
                "hold a long transaction"
            ) from exc
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        try:
            con.execute("COMMIT")
        except sqlite3.Error as exc:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise StoreError(f"cannot commit to {self.path}: {exc}") from exc

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        con = self._con()
        con.execute("BEGIN")
        try:
            yield con
        finally:
            con.execute("COMMIT")

    def _migrate(self) -> None:
        with self._write() as con:
            have = int(con.execute("PRAGMA user_version").fetchone()[0])
            if have > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has store schema version {have}, newer than this cemreplay's "
                    f"{SCHEMA_VERSION}; hint: upgrade cemreplay"
                )
            for v in range(have + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[v](con)
                con.execute(f"PRAGMA user_version = {v}")

    @property
    def schema_version(self) -> int:
        return int(self._con().execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        """Close every connection this store opened (call when no thread still uses it)."""
        with self._lock:
            for con in self._all:
                con.close()
            self._all.clear()
        self._local = threading.local()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing

    def put_batches(self, batches: Sequence[bytes], *, scrub: bool = True) -> list[Outcome]:
        """Validate, scrub and store ``batches`` in one transaction; one :class:`Outcome` each.

        When this returns, every batch whose outcome is ``ok`` is durably stored. Bad batches
        go to quarantine (same transaction) with their reason.
        """
        prepared = ingest.prepare(batches, scrub=scrub, dictionaries=self._resolve)
        now = _now_ms()
        out: list[Outcome] = []
        sess: dict[str, list[Any]] = {}
        rows: list[tuple[Any, ...]] = []
        with self._write() as con:
            # What the group's keys already hold (we hold the write lock: nothing changes).
            have = self._existing(
                con, [(p.session_id, p.seq) for p in prepared if isinstance(p, ingest.Good)]
            )
            for raw, p in zip(batches, prepared, strict=True):
                if isinstance(p, ingest.Bad):
                    kept = p.keep if p.keep is not None else mask_bytes(bytes(raw))
                    self._quarantine(con, now, p.session_id, p.seq, p.code, p.reason, kept)
                    out.append(Outcome("quarantined", p.session_id, p.seq, p.reason, p.code))
                    continue
                key = (p.session_id, p.seq)
                old = have.get(key)
                if old is None:
                    have[key] = p.data
                    rows.append(
                        (
                            p.session_id,
                            p.seq,
                            now,
                            p.data,
                            p.visitor_id,
                            p.site_key,
                            p.base_ts,
                            p.n,
                            p.dictionary,
                        )
                    )
                    out.append(Outcome("stored", p.session_id, p.seq))
                    s = sess.get(p.session_id)
                    if s is None:
                        sess[p.session_id] = [
                            p.visitor_id,
                            p.site_key,
                            p.base_ts,
                            p.base_ts,
                            p.n,
                            1,
                        ]
                    else:
                        s[2] = min(s[2], p.base_ts)
                        s[3] = max(s[3], p.base_ts)
                        s[4] += p.n
                        s[5] += 1
                elif old == p.data:
                    out.append(Outcome("duplicate", p.session_id, p.seq))
                else:
                    reason = "another batch has the same session_id and seq but other content"
                    code = ingest.DUPLICATE_CONFLICT
                    self._quarantine(con, now, p.session_id, p.seq, code, reason, p.data)
                    out.append(Outcome("quarantined", p.session_id, p.seq, reason, code))
            con.executemany(
                "INSERT INTO batches (session_id, seq, received_ms, data, visitor_id, "
                "site_key, base_ts, n, dictionary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            if sess:
                con.executemany(
                    "INSERT INTO sessions (session_id, visitor_id, site_key, first_ts, last_ts, "
                    "events, batches, dirty) VALUES (?, ?, ?, ?, ?, ?, ?, 1) "
                    "ON CONFLICT (session_id) DO UPDATE SET "
                    "first_ts = min(first_ts, excluded.first_ts), "
                    "last_ts = max(last_ts, excluded.last_ts), "
                    "events = events + excluded.events, "
                    "batches = batches + excluded.batches, dirty = 1",
                    [(k, *v) for k, v in sess.items()],
                )
        return out

    @staticmethod
    def _existing(
        con: sqlite3.Connection, keys: list[tuple[str, int]]
    ) -> dict[tuple[str, int], bytes]:
        """Stored bytes of those ``(session_id, seq)`` keys that exist.

        One primary-key lookup per key: a row-value ``IN (VALUES ...)`` makes SQLite scan the
        whole table, which grows with the store (15 ms per group at 30k batches).
        """
        found: dict[tuple[str, int], bytes] = {}
        query = "SELECT data FROM batches WHERE session_id = ? AND seq = ?"
        for key in keys:
            row = con.execute(query, key).fetchone()
            if row is not None:
                found[key] = bytes(row[0])
        return found

    @staticmethod
    def _quarantine(
        con: sqlite3.Connection,
        now: int,
        session_id: str | None,
        seq: int | None,
        code: int,
        reason: str,
        data: bytes,
    ) -> None:
        con.execute(
            "INSERT INTO quarantine (received_ms, session_id, seq, code, reason, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                now,
                session_id,
                seq if seq is None or 0 <= seq < 1 << 63 else None,
                code,
                reason,
                data,
            ),
        )

    # -- reading

    def _batches_of(
        self, con: sqlite3.Connection, where: str, args: Sequence[Any]
    ) -> list[tuple[bytes, str, int | None]]:
        """(data, site_key, dictionary) of the batches ``where`` selects."""
        return con.execute(
            f"SELECT data, site_key, dictionary FROM batches WHERE {where}", args
        ).fetchall()

    def session_events(self, session_id: str) -> pl.DataFrame:
        """The event table of one session (all its stored batches, decoded).

        Raises :class:`UnknownSessionError` when no batch of it is stored.
        """
        with self._read() as con:
            rows = con.execute(
                "SELECT data, site_key, dictionary, n FROM batches WHERE session_id = ? "
                "ORDER BY seq",
                (session_id,),
            ).fetchall()
        if not rows:
            raise UnknownSessionError(
                f"no session {session_id!r} in {self.path}; hint: `cemreplay sessions --db "
                f"{self.path} --visitor ID` lists a visitor's sessions"
            )
        # the reference decoder for a few events, or when the kernels run as Python anyway
        small = sum(int(r[3] or 0) for r in rows) <= SMALL_DECODE_EVENTS or JIT_DISABLED
        return self._decode(rows, engine="python" if small else "numba").events

    def events(
        self, *, sessions: Iterable[str] | None = None, visitors: Iterable[str] | None = None
    ) -> pl.DataFrame:
        """The event table of the given sessions and/or visitors' sessions (default: all)."""
        with self._read() as con:
            if sessions is None and visitors is None:
                data = self._batches_of(con, "1", ())
            else:
                data = []
                for col, given in (("session_id", sessions), ("visitor_id", visitors)):
                    if given is None:
                        continue
                    ids = list(given)
                    for k in range(0, len(ids), 500):
                        part = ids[k : k + 500]
                        marks = ",".join("?" * len(part))
                        data += self._batches_of(
                            con,
                            f"session_id IN ({marks})"
                            if col == "session_id"
                            # by the session's visitor (its first batch's), as analyze groups
                            else "session_id IN (SELECT session_id FROM sessions "
                            f"WHERE visitor_id IN ({marks}))",
                            part,
                        )
        return self._decode(data).events

    def iter_events(self, *, chunk_visitors: int = 5_000) -> Iterator[pl.DataFrame]:
        """The whole store's events, a chunk of visitors at a time (each visitor whole)."""
        for visitors in self._visitor_chunks("1", chunk_visitors):
            yield self.events(visitors=visitors)

    def dirty_sessions(self) -> int:
        """How many sessions have batches that :meth:`analyze` has not yet seen."""
        with self._read() as con:
            return int(con.execute("SELECT count(*) FROM sessions WHERE dirty = 1").fetchone()[0])

    def dirty_session_ids(self, limit: int = 10_000) -> list[str]:
        """The ids of at most ``limit`` sessions marked dirty, the latest (``last_ts``) first:
        what a restarted live worker catches up on (:mod:`cemreplay.live_process`)."""
        with self._read() as con:
            return [
                str(r[0])
                for r in con.execute(
                    "SELECT session_id FROM sessions WHERE dirty = 1 ORDER BY last_ts DESC LIMIT ?",
                    (int(limit),),
                )
            ]

    def baselines(
        self,
        *,
        chunk_visitors: int = 5_000,
        progress: Callable[[int, int], None] | None = None,
    ) -> Any:
        """The store-wide page baselines of the detectors (``cemreplay.detectors.Baselines``),
        merged exactly from one pass over the store a chunk of visitors at a time.

        Pass them to :meth:`analyze` so that ``excessive_scroll`` and ``quick_back`` judge each
        page view against every stored view of its URL, not just those of the chunk being
        analyzed: the findings then equal ``detect(store.events())`` whatever the chunking.
        ``progress(done, total)`` counts chunks.
        """
        from cemreplay.detectors import Baselines

        chunks = self._visitor_chunks("1", chunk_visitors)
        parts = []
        if progress is not None:
            progress(0, len(chunks))
        for k, visitors in enumerate(chunks):
            parts.append(Baselines.of(self.events(visitors=visitors)))
            if progress is not None:
                progress(k + 1, len(chunks))
        return Baselines.merge(parts)

    def _visitor_chunks(self, where: str, size: int) -> list[list[str]]:
        if size < 1:
            raise ConfigError(f"chunk_visitors must be >= 1, got {size}")
        with self._read() as con:
            vs = [
                r[0]
                for r in con.execute(
                    f"SELECT DISTINCT visitor_id FROM sessions WHERE {where} ORDER BY visitor_id"
                )
            ]
        return [vs[k : k + size] for k in range(0, len(vs), size)]

    def sessions(
        self,
        *,
        visitor: str | None = None,
        since: int | datetime | str | None = None,
        limit: int | None = 100,
        session_id: str | None = None,
    ) -> pl.DataFrame:
        """The sessions index (:data:`SESSIONS_SCHEMA`), newest first.

        ``visitor``: one visitor's sessions; ``since``: sessions whose last time is at or after
        it (see :func:`parse_since`); ``session_id``: that session only.
        """
        where, args = ["1"], list[Any]()
        if visitor is not None:
            where.append("visitor_id = ?")
            args.append(visitor)
        if session_id is not None:
            where.append("session_id = ?")
            args.append(session_id)
        t0 = parse_since(since)
        if t0 is not None:
            where.append("last_ts >= ?")
            args.append(t0)
        sql = (
            "SELECT session_id, visitor_id, site_key, first_ts, last_ts, pages, events, "
            "batches, locale, country, campaign, device, score, dirty = 0 FROM sessions "
            f"WHERE {' AND '.join(where)} ORDER BY first_ts DESC, session_id"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._read() as con:
            rows = con.execute(sql, args).fetchall()
        return pl.DataFrame(rows, schema=SESSIONS_SCHEMA, orient="row")

    def quarantine(self, *, limit: int | None = None) -> pl.DataFrame:
        """Quarantined batches (:data:`QUARANTINE_SCHEMA`), oldest first."""
        sql = (
            "SELECT id, received_ms, session_id, seq, code, reason, data FROM quarantine "
            "ORDER BY id"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._read() as con:
            rows = [(*r[:6], bytes(r[6])) for r in con.execute(sql)]
        return pl.DataFrame(rows, schema=QUARANTINE_SCHEMA, orient="row")

    # -- dictionaries (wire version 3)

    def _decode(self, rows: Sequence[Sequence[Any]], **kw: Any) -> DecodeReport:
        """``decode_report`` of stored batches, rows of (data, site_key, dictionary, ...),
        given the dictionaries they name."""
        keys = {(r[1], r[2]) for r in rows if r[2]}
        data = [bytes(r[0]) for r in rows]
        if keys:
            kw["dictionaries"] = self._resolve(keys)
        return decode_report(data, **kw)

    def _resolve(self, keys: Collection[tuple[str, int]]) -> list[Dictionary]:
        """The stored dictionaries of ``keys`` (site key, id) that exist, from memory; a key
        not read yet is looked up in the table (once per :data:`DICTIONARY_MISS_S` while it
        is missing). No table read when every key is known."""
        now = time.monotonic()
        with self._dict_lock:
            ask = [
                k for k in keys if k not in self._dicts and self._dict_misses.get(k, -1e18) <= now
            ]
        if ask:
            con = self._con()  # inside put_batches' transaction, or a statement of its own
            found: dict[tuple[str, int], Dictionary] = {}
            for site, did in ask:
                row = con.execute(
                    "SELECT data FROM dictionaries WHERE site_key = ? AND id = ?", (site, did)
                ).fetchone()
                if row is not None:
                    found[(site, did)] = _dictionary(bytes(row[0]), self.path)
            with self._dict_lock:
                self._dicts.update(found)
                if len(self._dict_misses) > 10_000:  # bounded, whatever ids batches name
                    self._dict_misses = {k: t for k, t in self._dict_misses.items() if t > now}
                for k in ask:
                    if k in found:
                        self._dict_misses.pop(k, None)
                    else:
                        self._dict_misses[k] = now + DICTIONARY_MISS_S
        with self._dict_lock:
            return [self._dicts[k] for k in keys if k in self._dicts]

    def put_dictionary(self, d: Dictionary) -> int:
        """Store dictionary ``d`` (immutable: putting the same one again does nothing; the
        same site and id with other strings is a :class:`ConfigError`).

        Batches quarantined because they named this dictionary before the store had it are
        then validated again and stored (their quarantine rows go; one that fails again is
        quarantined anew with its new reason). Returns how many were stored so.
        """
        from cemreplay.wire import Dictionary

        if not isinstance(d, Dictionary):
            raise ConfigError(f"put_dictionary takes a cemreplay.wire.Dictionary, got {d!r}")
        data = d.to_json()
        with self._write() as con:
            row = con.execute(
                "SELECT data FROM dictionaries WHERE site_key = ? AND id = ?", (d.site_key, d.id)
            ).fetchone()
            if row is None:
                con.execute(
                    "INSERT INTO dictionaries (site_key, id, data, created) VALUES (?, ?, ?, ?)",
                    (d.site_key, d.id, data, time.time()),
                )
            elif _dictionary(bytes(row[0]), self.path).strings != d.strings:
                raise ConfigError(
                    f"site {d.site_key!r} already has a dictionary {d.id} with other strings "
                    f"in {self.path}; hint: dictionaries are immutable, give a new id "
                    "(next_dictionary_id(latest_dictionary(site)))"
                )
        with self._dict_lock:
            self._dicts[(d.site_key, d.id)] = d
            self._dict_misses.pop((d.site_key, d.id), None)
            self.dictionary_generation += 1
        return self._release_quarantined(d.site_key, d.id)

    def _release_quarantined(self, site_key: str, did: int) -> int:
        """Put again the quarantined batches naming dictionary ``did`` of ``site_key``."""
        with self._read() as con:
            rows = [
                (qid, bytes(data))
                for qid, data in con.execute(
                    "SELECT id, data FROM quarantine WHERE code = ? ORDER BY id",
                    (ingest.UNKNOWN_DICTIONARY,),
                )
            ]
        rows = [(q, data) for q, data in rows if ingest.dictionary_ref(data) == (site_key, did)]
        if not rows:
            return 0
        outcomes = self.put_batches([data for _, data in rows])
        with self._write() as con:
            con.executemany("DELETE FROM quarantine WHERE id = ?", [(q,) for q, _ in rows])
        return sum(o.ok for o in outcomes)

    def dictionaries(self, site_key: str | None = None) -> list[Dictionary]:
        """The stored dictionaries (of one site), by site key and id."""
        sql = "SELECT site_key, id, data FROM dictionaries"
        args: tuple[Any, ...] = ()
        if site_key is not None:
            sql += " WHERE site_key = ?"
            args = (site_key,)
        with self._read() as con:
            rows = con.execute(sql + " ORDER BY site_key, id", args).fetchall()
        out = []
        for site, did, data in rows:
            with self._dict_lock:
                d = self._dicts.get((site, did))
            if d is None:
                d = _dictionary(bytes(data), self.path)
                with self._dict_lock:
                    self._dicts[(site, did)] = d
            out.append(d)
        return out

    def latest_dictionary(self, site_key: str) -> Dictionary | None:
        """The site's dictionary with the highest id (what the collector serves), or None."""
        with self._read() as con:
            row = con.execute(
                "SELECT data FROM dictionaries WHERE site_key = ? ORDER BY id DESC LIMIT 1",
                (site_key,),
            ).fetchone()
        return None if row is None else _dictionary(bytes(row[0]), self.path)

    def dictionary_sites(self) -> list[str]:
        """The site keys of the stored sessions (what the collector learns dictionaries for)."""
        with self._read() as con:
            return [r[0] for r in con.execute("SELECT DISTINCT site_key FROM sessions ORDER BY 1")]

    def learn_dictionary(
        self,
        site_key: str,
        *,
        sessions: int = 20_000,
        min_visitors: int = 20,
        progress: Callable[[int, int], None] | None = None,
    ) -> Dictionary | None:
        """Learn the site's dictionary from its newest ``sessions`` sessions and store it when
        its strings differ from the latest's; returns the (possibly new) latest, None when
        the site has none and no string qualifies.

        The sessions are decoded :data:`LEARN_CHUNK_SESSIONS` at a time (``progress(done,
        total)`` after each, sessions as the unit; it may raise to stop), each chunk reduced to
        its (string, visitor) pairs (:func:`cemreplay.wire.string_counts`) before the next is
        read, and learned from by :func:`cemreplay.wire.learn_dictionary` with
        ``min_visitors`` (a string goes in only
        when that many distinct visitors sent it; strings are scrubbed before they are
        stored, so before they are ever counted). The new id is the latest's + 1, and at
        least the time in seconds (:func:`next_dictionary_id`).
        """
        from cemreplay import wire

        for name, v in (("sessions", sessions), ("min_visitors", min_visitors)):
            if type(v) is not int or v < 1:
                raise ConfigError(f"{name} must be an int >= 1, got {v!r}")
        with self._read() as con:
            ids = [
                r[0]
                for r in con.execute(
                    "SELECT session_id FROM sessions WHERE site_key = ? "
                    "ORDER BY first_ts DESC, session_id LIMIT ?",
                    (site_key, sessions),
                )
            ]

        def chunks() -> Iterator[pl.DataFrame]:
            if progress is not None:
                progress(0, len(ids))
            for k in range(0, len(ids), LEARN_CHUNK_SESSIONS):
                part = ids[k : k + LEARN_CHUNK_SESSIONS]
                yield self.events(sessions=part)
                if progress is not None:
                    progress(k + len(part), len(ids))

        # each chunk's events are let go once counted: memory holds one chunk and the counts
        counts = wire.string_counts(chunks())
        for _ in range(5):
            latest = self.latest_dictionary(site_key)
            new_id = next_dictionary_id(latest)
            learned = wire.learn_dictionary(
                counts=counts, site_key=site_key, id=new_id, min_visitors=min_visitors
            )
            if learned is None or (latest is not None and learned.strings == latest.strings):
                return latest
            try:
                self.put_dictionary(learned)
            except ConfigError:
                # another process stored this id meanwhile: learn against its dictionary
                if self.latest_dictionary(site_key) == latest:
                    raise
                continue
            return learned
        raise StoreError(
            f"could not store a new dictionary of site {site_key!r} in {self.path}: other "
            "writers keep storing new ones; hint: learn in one process only"
        )

    def session_view(self, session_id: str) -> SessionView:
        """One session for a lookup: its events, findings and index row.

        The findings are the stored ones when the session is analyzed and unchanged since;
        otherwise they are computed now from its events (and not stored).
        """
        events = self.session_events(session_id)
        idx = self.sessions(session_id=session_id, limit=1)
        info: dict[str, Any] = idx.to_dicts()[0] if idx.height else {"session_id": session_id}
        if info.get("analyzed"):
            found = self.findings(session_id=session_id)
        else:
            from cemreplay.detectors import detect

            found = detect(events)
        return SessionView(events, found, info)

    # -- findings

    def save_findings(
        self, findings: pl.DataFrame, *, sessions: Iterable[str] | None = None
    ) -> None:
        """Replace the stored findings of ``sessions`` (default: those in ``findings``).

        Their kept report facts (computed by :meth:`analyze` from the findings it stored) are
        dropped: a report computes theirs from the events until the next :meth:`analyze`.
        """
        ids = list(sessions) if sessions is not None else None
        with self._write() as con:
            self._save_findings(con, findings, ids)
            if ids is None:
                ids = findings["session_id"].cast(pl.String).unique().to_list()
            con.executemany(
                "UPDATE sessions SET facts_part = NULL WHERE session_id = ?", [(s,) for s in ids]
            )

    @staticmethod
    def _save_findings(
        con: sqlite3.Connection, findings: pl.DataFrame, sessions: Iterable[str] | None
    ) -> int:
        missing = [c for c in ("session_id", "kind") if c not in findings.columns]
        if missing:
            raise ConfigError(
                f"findings lack column(s) {missing}; hint: pass the frame "
                "cemreplay.detect() returns"
            )
        cols = [c for c in FINDING_COLUMNS if c in findings.columns]
        frame = findings.select(pl.col(c).cast(FINDING_COLUMNS[c]) for c in cols)
        ids = list(sessions) if sessions is not None else frame["session_id"].unique().to_list()
        con.executemany("DELETE FROM findings WHERE session_id = ?", [(s,) for s in ids])
        con.executemany(
            f"INSERT INTO findings ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            frame.iter_rows(),
        )
        return frame.height

    def findings(
        self, *, kind: str | Sequence[str] | None = None, session_id: str | None = None
    ) -> pl.DataFrame:
        """Stored findings (:data:`FINDING_COLUMNS`), by session and time; filter by kind(s)
        and/or session."""
        where, args = ["1"], list[Any]()
        if kind is not None:
            kinds = [kind] if isinstance(kind, str) else list(kind)
            where.append(f"kind IN ({','.join('?' * len(kinds))})")
            args += kinds
        if session_id is not None:
            where.append("session_id = ?")
            args.append(session_id)
        with self._read() as con:
            rows = con.execute(
                f"SELECT {', '.join(FINDING_COLUMNS)} FROM findings WHERE {' AND '.join(where)} "
                "ORDER BY session_id, t, kind",
                args,
            ).fetchall()
        return pl.DataFrame(rows, schema=FINDING_COLUMNS, orient="row")

    # -- analysis

    def analyze(
        self,
        *,
        progress: Callable[[int, int], None] | None = None,
        chunk_visitors: int = 2_000,
        baselines: Any = None,
        workers: int | None = None,
    ) -> AnalyzeResult:
        """Decode the sessions changed since the last run and bring the index up to date.

        For each chunk of visitors with a changed session: decode all their batches, fill the
        sessions index (times, counts, segment fields), run ``cemreplay.detectors.detect`` and
        ``cemreplay.score`` when they can be imported, replace those sessions' findings and
        their rows of the per-page baselines (``page_sessions``, ``page_hours``).
        Batches the session-level decode rejects for good (a string table entry defined twice
        differently, a changed visitor id) move to quarantine. ``progress(done, total)`` is
        called after each chunk, with visitors as the unit. ``baselines`` (per-URL statistics
        of ``cemreplay.detectors``) is passed on to ``detect`` when given.

        ``workers`` threads (default: one per core) read and analyse the next chunks while
        this thread writes the results of the current one, chunk after chunk in order (the
        store is written exactly as with one worker).
        """
        n = workers if workers is not None else len(os.sched_getaffinity(0))
        if n < 1:
            raise ConfigError(f"workers must be >= 1, got {n}")
        chunks = self._visitor_chunks("dirty = 1 OR facts_part IS NULL", chunk_visitors)
        total = sum(len(c) for c in chunks)
        done = 0
        acc = AnalyzeResult(0, 0, 0, 0, True)
        if progress is not None:
            progress(0, total)

        def compute(visitors: list[str]) -> tuple[list[Any], _Analyzed]:
            with self._read() as con:
                marks = ",".join("?" * len(visitors))
                rows = con.execute(
                    "SELECT data, site_key, dictionary, session_id, seq FROM batches "
                    "WHERE session_id IN "
                    f"(SELECT session_id FROM sessions WHERE visitor_id IN ({marks}))",
                    visitors,
                ).fetchall()
            from cemreplay.detectors import _parallel

            with _parallel.within(n):
                return rows, self._compute(rows, baselines)

        with ThreadPoolExecutor(n, thread_name_prefix="cem-analyze") as ex:
            todo = iter(chunks)
            pending = collections.deque(
                (v, ex.submit(compute, v)) for v in itertools.islice(todo, n)
            )
            try:
                while pending:
                    visitors, future = pending.popleft()
                    rows, analyzed = future.result()
                    nxt = next(todo, None)
                    if nxt is not None:  # at most n chunks analysed ahead of the writes
                        pending.append((nxt, ex.submit(compute, nxt)))
                    part, _ = self._write_analyzed(rows, analyzed)
                    del rows, analyzed
                    acc = _add(acc, part)
                    done += len(visitors)
                    if progress is not None:
                        progress(done, total)
            finally:
                for _, f in pending:
                    f.cancel()
        return acc

    def analyze_sessions(
        self,
        session_ids: Iterable[str],
        *,
        baselines: Any = None,
        on_found: Callable[[pl.DataFrame], None] | None = None,
    ) -> tuple[AnalyzeResult, pl.DataFrame]:
        """Analyze exactly these sessions (as :meth:`analyze` does) and return their findings.

        The incremental path (:mod:`cemreplay.live`): the collector calls it with the sessions
        a group commit changed. Unknown ids are ignored. ``on_found(findings)`` is called as
        soon as the findings are known, before they are written.
        """
        ids = list(dict.fromkeys(session_ids))
        rows: list[Any] = []
        with self._read() as con:
            for k in range(0, len(ids), 500):
                part = ids[k : k + 500]
                rows += con.execute(
                    "SELECT data, site_key, dictionary, session_id, seq FROM batches "
                    "WHERE session_id IN "
                    f"({','.join('?' * len(part))})",
                    part,
                ).fetchall()
        return self._analyze_rows(rows, baselines, on_found)

    def _analyze_rows(
        self,
        rows: Sequence[Any],
        baselines: Any,
        on_found: Callable[[pl.DataFrame], None] | None = None,
    ) -> tuple[AnalyzeResult, pl.DataFrame]:
        """Decode ``rows`` (session_id, seq, data: every batch of their sessions), detect,
        score and write the results; the counts and the findings."""
        return self._write_analyzed(rows, self._compute(rows, baselines, on_found))

    def _compute(
        self,
        rows: Sequence[Any],
        baselines: Any,
        on_found: Callable[[pl.DataFrame], None] | None = None,
    ) -> _Analyzed:
        """What :meth:`_analyze_rows` writes for ``rows``, computed without writing (it only
        reads the store, so several threads may run it at once)."""
        try:
            from cemreplay.detectors import detect
            from cemreplay.score import score
        except ImportError:  # pragma: no cover - only in a partial install
            detect = score = None  # type: ignore[assignment]
        report = self._decode(rows)
        seen: dict[str, int] = {}
        for r in rows:
            seen[r[3]] = seen.get(r[3], 0) + 1
        moved = [q for q in report.quarantined if q.code in _PERMANENT]
        ev = report.events
        stats = _session_stats(ev)
        kw: dict[str, Any] = {} if baselines is None else {"baselines": baselines}
        found = detect(ev, **kw) if detect is not None and ev.height else None
        scores = (
            dict(score(found).select("session_id", "score").iter_rows())
            if found is not None and score is not None and found.height
            else {}
        )
        if on_found is not None:
            on_found(found if found is not None else pl.DataFrame(schema=FINDING_COLUMNS))
        pages = _page_rows(ev, found)
        facts = (
            None
            if detect is None
            else _report_facts(ev, found, self._index_rows(list(seen), stats, scores))
        )
        return _Analyzed(
            seen, moved, ev.height, stats, found, scores, pages, facts, detect is not None
        )

    def _write_analyzed(
        self, rows: Sequence[Any], a: _Analyzed
    ) -> tuple[AnalyzeResult, pl.DataFrame]:
        """Write what :meth:`_compute` found for ``rows``; the counts and the findings."""
        seen, moved, found, stats, scores, facts = (
            a.seen,
            a.moved,
            a.found,
            a.stats,
            a.scores,
            a.facts,
        )
        pages, detected = a.pages, a.detected
        n_find = 0
        with self._write() as con:
            for q in moved:
                raw, _, _, sid, seq = rows[q.index]
                self._quarantine(con, _now_ms(), sid, seq, q.code, q.reason, bytes(raw))
                con.execute("DELETE FROM batches WHERE session_id = ? AND seq = ?", (sid, seq))
                con.execute(
                    "UPDATE sessions SET batches = batches - 1 WHERE session_id = ?", (sid,)
                )
                seen[sid] -= 1
            if found is not None:
                n_find += self._save_findings(con, found, seen)
            self._save_pages(con, pages, seen)
            old_parts = self._facts_parts_of(con, list(seen))
            part = None
            if facts is not None:
                cur = con.execute(
                    "INSERT INTO report_facts (config, sessions, data) VALUES (?, ?, ?)",
                    (facts[0], len(seen), facts[1]),
                )
                part = cur.lastrowid
            upd = []
            for sid, n_batches in seen.items():
                st = stats.get(sid)
                sc = scores.get(sid, 0.0) if detected else None
                upd.append((*(st if st is not None else (None,) * 8), sc, part, n_batches, sid))
            con.executemany(
                "UPDATE sessions SET "
                "first_ts = coalesce(?, first_ts), last_ts = coalesce(?, last_ts), "
                "events = coalesce(?, events), pages = coalesce(?, 0), locale = ?, "
                "country = ?, campaign = ?, device = ?, score = ?, facts_part = ?, "
                "dirty = CASE WHEN batches = ? THEN 0 ELSE 1 END WHERE session_id = ?",
                upd,
            )
            # parts no session refers to any more (all their sessions re-analyzed) go
            con.executemany(
                "DELETE FROM report_facts WHERE id = ? AND NOT EXISTS "
                "(SELECT 1 FROM sessions WHERE facts_part = ?)",
                [(p, p) for p in old_parts],
            )
        result = AnalyzeResult(len(seen), a.events, n_find, len(moved), detected)
        return result, found if found is not None else pl.DataFrame(schema=FINDING_COLUMNS)

    @staticmethod
    def _save_pages(con: sqlite3.Connection, pages: pl.DataFrame, sessions: Iterable[str]) -> None:
        """Replace the ``page_sessions`` rows of ``sessions`` and apply the difference to the
        hourly sums in ``page_hours`` (so they stay equal to a GROUP BY of the rows)."""
        ids = list(sessions)
        delta: dict[tuple[str, int], list[int]] = {}
        for k in range(0, len(ids), 500):
            part = ids[k : k + 500]
            marks = ",".join("?" * len(part))
            for url, t, struggled in con.execute(
                f"SELECT page_url, t, struggled FROM page_sessions WHERE session_id IN ({marks})",
                part,
            ):
                d = delta.setdefault((url, t // HOUR_MS * HOUR_MS), [0, 0])
                d[0] -= 1
                d[1] -= int(struggled)
            con.execute(f"DELETE FROM page_sessions WHERE session_id IN ({marks})", part)
        con.executemany(
            "INSERT INTO page_sessions (session_id, page_url, visitor_id, t, struggled, kinds) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            pages.iter_rows(),
        )
        for url, t, struggled in pages.select("page_url", "t", "struggled").iter_rows():
            d = delta.setdefault((url, t // HOUR_MS * HOUR_MS), [0, 0])
            d[0] += 1
            d[1] += int(struggled)
        con.executemany(
            "INSERT INTO page_hours (page_url, hour, sessions, struggling) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (page_url, hour) DO UPDATE SET sessions = sessions + "
            "excluded.sessions, struggling = struggling + excluded.struggling",
            [(u, h, n, s) for (u, h), (n, s) in delta.items() if n or s],
        )

    def page_sessions(self, *, since: int | None = None, until: int | None = None) -> pl.DataFrame:
        """Rows of the per-page baselines (:data:`PAGE_SESSIONS_SCHEMA`) with ``since <= t <
        until``: one per session and page URL it viewed (time of its first view there),
        ``struggled`` when a finding of the session is on that page, ``kinds`` those
        findings' kinds (comma-separated)."""
        return self._between(
            "SELECT session_id, page_url, visitor_id, t, struggled, kinds FROM page_sessions",
            "t",
            since,
            until,
            "t, session_id",
            PAGE_SESSIONS_SCHEMA,
        )

    def page_hours(self, *, since: int | None = None, until: int | None = None) -> pl.DataFrame:
        """Hourly per-page sums (page_url, hour, sessions, struggling) with ``since <= hour <
        until`` (hour: epoch ms of the hour's start)."""
        return self._between(
            "SELECT page_url, hour, sessions, struggling FROM page_hours WHERE sessions > 0",
            "hour",
            since,
            until,
            "hour, page_url",
            PAGE_HOURS_SCHEMA,
        )

    def _between(
        self,
        select: str,
        col: str,
        since: int | None,
        until: int | None,
        order: str,
        schema: pl.Schema,
    ) -> pl.DataFrame:
        """``select`` with ``since <= col < until`` (each bound optional), as a frame."""
        where, args = [], list[Any]()
        for op, bound in ((">=", since), ("<", until)):
            if bound is not None:
                where.append(f"{col} {op} ?")
                args.append(int(bound))
        glue = " AND " if " WHERE " in select else " WHERE "
        sql = select + (glue + " AND ".join(where) if where else "") + f" ORDER BY {order}"
        with self._read() as con:
            rows = con.execute(sql, args).fetchall()
        return pl.DataFrame(rows, schema=schema, orient="row")

    def time_range(self) -> tuple[int, int] | None:
        """The first and last page-view time in ``page_sessions`` (None when empty)."""
        with self._read() as con:
            lo, hi = con.execute("SELECT min(t), max(t) FROM page_sessions").fetchone()
        return None if lo is None else (int(lo), int(hi))

    # -- report facts (kept by analyze for cemreplay.reports)

    def _index_rows(
        self, ids: list[str], stats: dict[str, tuple[Any, ...]], scores: dict[str, float]
    ) -> pl.DataFrame:
        """The sessions index rows (:data:`INDEX_ROW_SCHEMA`) that analyzing ``ids`` writes,
        as :meth:`_analyze_rows` writes them (kept with the report facts)."""
        base: dict[str, tuple[Any, ...]] = {}
        with self._read() as con:
            for k in range(0, len(ids), 500):
                part = ids[k : k + 500]
                for sid, *rest in con.execute(
                    "SELECT session_id, visitor_id, first_ts, last_ts, events FROM sessions "
                    f"WHERE session_id IN ({','.join('?' * len(part))})",
                    part,
                ):
                    base[sid] = tuple(rest)
        rows = []
        for sid in ids:
            vis, first, last, n = base.get(sid, (None,) * 4)
            sc = float(scores.get(sid, 0.0))
            st = stats.get(sid)
            if st is None:  # no event decoded: the index keeps what put_batches wrote
                rows.append((sid, vis, first, last, 0, n, None, None, None, None, sc))
            else:  # st: first_ts, last_ts, events, pages, locale, country, campaign, device
                rows.append((sid, vis, st[0], st[1], st[3], st[2], *st[4:8], sc))
        return pl.DataFrame(rows, schema=INDEX_ROW_SCHEMA, orient="row")

    def session_count(self) -> int:
        """How many sessions the store holds."""
        with self._read() as con:
            return int(con.execute("SELECT count(*) FROM sessions").fetchone()[0])

    @staticmethod
    def _facts_parts_of(con: sqlite3.Connection, ids: Sequence[str]) -> set[int]:
        parts: set[int] = set()
        for k in range(0, len(ids), 500):
            part = ids[k : k + 500]
            parts.update(
                r[0]
                for r in con.execute(
                    "SELECT DISTINCT facts_part FROM sessions WHERE facts_part IS NOT NULL "
                    f"AND session_id IN ({','.join('?' * len(part))})",
                    part,
                )
            )
        return parts

    def facts_parts(self, key: str) -> Iterator[tuple[bytes, int, list[str] | None]]:
        """The stored report facts computed with config ``key``, one part (an analyzed chunk)
        at a time: its bytes, how many sessions' current facts it holds and, when some of its
        sessions were re-analyzed since (their facts are in a newer part), the ids of those
        whose facts are still these (None: all of the part's sessions).

        The bytes are what :mod:`cemreplay.reports` wrote (``reports.facts_blob``); the store
        keeps them opaque.
        """
        # one read transaction: every part as of one moment, even while analyze writes
        with self._read() as con:
            heads = con.execute(
                "SELECT f.id, f.sessions, (SELECT count(*) FROM sessions s "
                "WHERE s.facts_part = f.id) FROM report_facts f WHERE f.config = ? ORDER BY f.id",
                (key,),
            ).fetchall()
            for pid, n, current in heads:
                if current == 0:
                    continue
                row = con.execute("SELECT data FROM report_facts WHERE id = ?", (pid,)).fetchone()
                ids = (
                    None
                    if current == n
                    else [
                        r[0]
                        for r in con.execute(
                            "SELECT session_id FROM sessions WHERE facts_part = ?", (pid,)
                        )
                    ]
                )
                yield bytes(row[0]), int(current), ids

    def sessions_without_facts(self, key: str) -> list[str]:
        """Sessions with no stored report facts computed with config ``key`` (analyzed before
        store version 4, or by a cemreplay without reports), by visitor and session id."""
        with self._read() as con:
            return [
                r[0]
                for r in con.execute(
                    "SELECT s.session_id FROM sessions s LEFT JOIN report_facts f "
                    "ON f.id = s.facts_part WHERE f.config IS NOT ? "
                    "ORDER BY s.visitor_id, s.session_id",
                    (key,),
                )
            ]


def _dictionary(data: bytes, path: Path) -> Dictionary:
    """A stored dictionary row's ``data``, parsed (a StoreError naming the file when bad)."""
    from cemreplay.wire import Dictionary

    try:
        return Dictionary.from_json(data)
    except ConfigError as exc:
        raise StoreError(f"a stored dictionary of {path} cannot be read: {exc}") from exc


def _add(a: AnalyzeResult, b: AnalyzeResult) -> AnalyzeResult:
    return AnalyzeResult(
        a.sessions + b.sessions,
        a.events + b.events,
        a.findings + b.findings,
        a.quarantined + b.quarantined,
        a.detectors and b.detectors,
    )


#: Decoder codes for faults between batches that no later batch can mend.
_PERMANENT: Final = frozenset({17, 18})  # STRING_CONFLICT, VISITOR_CHANGE


def _session_stats(ev: pl.DataFrame) -> dict[str, tuple[Any, ...]]:
    """Per session: first_ts, last_ts, events, pages, locale, country, campaign, device."""
    return {r[0]: r[1:] for r in session_stats(ev).iter_rows()}


def _report_facts(
    ev: pl.DataFrame, found: pl.DataFrame | None, index: pl.DataFrame
) -> tuple[str, bytes] | None:
    """The report facts of ``ev``, its findings and its sessions index rows with the default
    report config: (config key, bytes), or None without cemreplay.reports."""
    try:
        from cemreplay.reports import ReportConfig, facts_blob
    except ImportError:  # pragma: no cover - only in a partial install
        return None
    cfg = ReportConfig()
    if found is None:
        found = pl.DataFrame(schema=FINDING_COLUMNS)
    # as they are stored and read back by the report
    stored = found.select(pl.col(c).cast(dt) for c, dt in FINDING_COLUMNS.items()).sort(
        "session_id", "t", "kind", maintain_order=True
    )
    return cfg.key(), facts_blob(ev, stored, cfg, sessions=index)


def _page_rows(ev: pl.DataFrame, found: pl.DataFrame | None) -> pl.DataFrame:
    """One row per (session, page URL viewed): first view time, struggled, finding kinds."""
    if ev.height == 0:
        return pl.DataFrame(schema=PAGE_SESSIONS_SCHEMA)
    views = (
        ev.filter(pl.col("kind") == int(EventKind.PAGE_VIEW))
        .select(
            pl.col("session_id").cast(pl.String),
            pl.col("target").cast(pl.String).alias("page_url"),
            pl.col("visitor_id").cast(pl.String),
            "t",
        )
        .drop_nulls("page_url")
        .group_by("session_id", "page_url")
        .agg(pl.col("visitor_id").first(), pl.col("t").min())
    )
    if found is not None and found.height:
        kinds = (
            found.filter(pl.col("kind").is_in(list(STRUGGLE_KINDS)))
            .select(
                pl.col("session_id").cast(pl.String),
                pl.col("page_url").cast(pl.String),
                pl.col("kind").cast(pl.String),
            )
            .drop_nulls("page_url")
            .group_by("session_id", "page_url")
            .agg(pl.col("kind").unique().sort().str.join(",").alias("kinds"))
        )
        views = views.join(kinds, on=["session_id", "page_url"], how="left")
    else:
        views = views.with_columns(kinds=pl.lit(None, pl.String))
    return views.select(
        "session_id",
        "page_url",
        "visitor_id",
        "t",
        pl.col("kinds").is_not_null().cast(pl.Int64).alias("struggled"),
        pl.col("kinds").fill_null(""),
    ).sort("session_id", "page_url")


def open_store(path: str | os.PathLike[str], *, create: bool = True) -> SQLiteStore:
    """Open the store at ``path`` (an SQLite file), migrating it as needed.

    With ``create=False`` a missing file is a :class:`StoreError` rather than a new store.
    """
    return SQLiteStore(path, create=create)
