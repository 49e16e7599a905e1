"""The store: idempotent puts, quarantine, the sessions index, findings, migrations, concurrency
and scrubbing (nothing personal reaches the file)."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import threading
from pathlib import Path

import msgpack
import polars as pl
import pytest

from cemreplay.errors import CemReplayError, ConfigError
from cemreplay.schema import EventKind
from cemreplay.store import (
    SCHEMA_VERSION,
    SQLiteStore,
    Store,
    StoreError,
    UnknownSessionError,
    open_store,
)
from tests.batches import BASE_TS, batch, envelope, pack


@pytest.fixture
def store(tmp_path: Path):
    with SQLiteStore(tmp_path / "s.db") as st:
        yield st


def test_sqlite_store_is_a_store(store):
    assert isinstance(store, Store)
    assert store.schema_version == SCHEMA_VERSION
    con = sqlite3.connect(store.path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_put_stores_once_and_retries_are_duplicates(store):
    b = batch("s1", 0)
    assert [o.status for o in store.put_batches([b])] == ["stored"]
    assert [o.status for o in store.put_batches([b, b])] == ["duplicate", "duplicate"]
    row = store.sessions().row(0, named=True)
    assert (row["session_id"], row["batches"], row["events"]) == ("s1", 1, 4)
    assert store.session_events("s1").height == 4


def test_same_key_other_bytes_is_a_quarantined_conflict(store):
    store.put_batches([batch("s1", 0)])
    (o,) = store.put_batches([batch("s1", 0, moves=5)])
    assert o.status == "quarantined" and not o.ok
    assert "same session_id and seq" in (o.reason or "")
    q = store.quarantine()
    assert q.height == 1 and q["session_id"][0] == "s1" and q["seq"][0] == 0
    # the first one stays the truth
    assert store.session_events("s1").height == 4


def test_out_of_order_batches_decode_in_order(store):
    bs = [batch("s1", k, url=f"/p{k}") for k in range(4)]
    for b in reversed(bs):
        assert store.put_batches([b])[0].status == "stored"
    ev = store.session_events("s1")
    assert ev["batch"].to_list() == sorted(ev["batch"].to_list())
    pv = ev.filter(pl.col("kind") == EventKind.PAGE_VIEW)
    assert pv["target"].cast(pl.String).to_list() == ["/p0", "/p1", "/p2", "/p3"]


def test_reference_to_a_later_arriving_batch_is_accepted(store):
    # batch 1 refers to entry 0, which batch 0 defines; batch 1 arrives first
    b0 = pack(envelope("s1", 0, [(EventKind.PAGE_VIEW, 0, {"target": 1})], strings=["/"]))
    b1 = pack(envelope("s1", 1, [(EventKind.REQUEST, 5, {"target": 1})], str_base=1))
    assert store.put_batches([b1])[0].status == "stored"
    assert store.put_batches([b0])[0].status == "stored"
    ev = store.session_events("s1")
    assert ev["target"].cast(pl.String).to_list() == ["/", "/"]


@pytest.mark.parametrize(
    "raw, words",
    [
        (b"", "truncated"),
        (b"\xc0", "not a msgpack array"),
        (b"\x93\x01\x02\x03", "not a msgpack array"),
        (batch("s1")[:-4], "truncated"),
        (batch("s1") + b"\x00", "bytes follow"),
        (pack(envelope("s1", 0, [(99, 0, {})])), "unknown kind"),
        (pack(envelope("s1", 0, [(EventKind.PAGE_VIEW, 0, {"target": 5})], strings=["/"])),
         "refers past"),
        (pack([4, *envelope("s1", 0, [])[1:]]), "version 4"),
        (pack([3, *envelope("s1", 0, [])[1:]]), "version 3 has 14"),  # v3 has one more element
        (pack([3, *envelope("s1", 0, [])[1:], 5]), "names dictionary 5 of site 'k'"),
    ],
)
def test_bad_batches_go_to_quarantine_with_their_reason(store, raw, words):
    (o,) = store.put_batches([raw])
    assert o.status == "quarantined"
    assert words in (o.reason or "")
    q = store.quarantine()
    assert q.height == 1 and words in q["reason"][0]
    assert len(q["data"][0]) == len(raw)  # kept, masked in place at most
    assert store.sessions().height == 0


def test_one_bad_batch_does_not_spoil_its_group(store):
    out = store.put_batches([batch("a"), b"\xc1junk", batch("b")])
    assert [o.status for o in out] == ["stored", "quarantined", "stored"]
    assert sorted(store.sessions()["session_id"].to_list()) == ["a", "b"]


def test_unknown_session_and_missing_store(store, tmp_path):
    with pytest.raises(UnknownSessionError, match="no session 'nope'"):
        store.session_events("nope")
    with pytest.raises(StoreError, match="no store at"):
        open_store(tmp_path / "absent.db", create=False)
    assert not (tmp_path / "absent.db").exists()
    assert issubclass(StoreError, CemReplayError)


def test_sessions_filters(store):
    store.put_batches([
        batch("s1", visitor_id="va", base_ts=BASE_TS),
        batch("s2", visitor_id="va", base_ts=BASE_TS + 86_400_000),
        batch("s3", visitor_id="vb", base_ts=BASE_TS + 2 * 86_400_000),
    ])
    assert store.sessions()["session_id"].to_list() == ["s3", "s2", "s1"]
    assert store.sessions(visitor="va")["session_id"].to_list() == ["s2", "s1"]
    assert store.sessions(since=BASE_TS + 86_400_000)["session_id"].to_list() == ["s3", "s2"]
    assert store.sessions(since="2026-01-02")["session_id"].to_list() == ["s3", "s2"]
    assert store.sessions(limit=1).height == 1
    with pytest.raises(CemReplayError, match="not a time"):
        store.sessions(since="yesterday-ish")


def test_analyze_fills_the_index_and_findings(store):
    store.put_batches([
        batch("s1", 0, attrs={"locale": "de-DE", "country": "DE", "utm_campaign": "spring"}),
        batch("s1", 1, url="/cart"),
        batch("s2", 0, visitor_id="v2"),
    ])
    before = store.sessions(session_id="s1").row(0, named=True)
    assert before["pages"] is None and before["analyzed"] is False
    seen: list[tuple[int, int]] = []
    r = store.analyze(progress=lambda d, t: seen.append((d, t)))
    assert r.sessions == 2 and r.detectors
    assert seen[0] == (0, 2) and seen[-1] == (2, 2)
    row = store.sessions(session_id="s1").row(0, named=True)
    assert row["pages"] == 2 and row["analyzed"] is True
    assert (row["locale"], row["country"], row["campaign"], row["device"]) == (
        "de-DE", "DE", "spring", "desktop")
    assert row["score"] is not None
    assert row["last_ts"] > row["first_ts"]
    # nothing changed: nothing to do; a new batch makes its session dirty again
    assert store.analyze().sessions == 0
    store.put_batches([batch("s2", 1)])
    assert store.sessions(session_id="s2")["analyzed"][0] is False
    assert store.analyze().sessions == 1


def test_findings_round_trip_and_replace(store):
    f = pl.DataFrame({
        "session_id": ["s1", "s1", "s2"], "visitor_id": ["v", "v", "w"],
        "kind": ["rage_click", "dead_click", "rage_click"], "t": [3, 1, 2],
        "explanation": ["a", "b", "c"],
    })
    store.save_findings(f)
    assert store.findings().height == 3
    assert store.findings(kind="rage_click")["session_id"].to_list() == ["s1", "s2"]
    assert store.findings(session_id="s1")["t"].to_list() == [1, 3]
    store.save_findings(f.filter(pl.col("kind") == "dead_click"))
    assert store.findings(session_id="s1")["kind"].to_list() == ["dead_click"]
    assert store.findings(session_id="s2").height == 1


def test_visitor_change_moves_to_quarantine_at_analyze(store):
    store.put_batches([batch("s1", 0, visitor_id="v1"), batch("s1", 1, visitor_id="intruder")])
    r = store.analyze()
    assert r.quarantined == 1
    q = store.quarantine()
    assert q["seq"].to_list() == [1] and "visitor_id differs" in q["reason"][0]
    assert store.sessions(session_id="s1")["batches"][0] == 1
    assert store.sessions(session_id="s1")["analyzed"][0] is True


def test_events_by_visitor_and_in_chunks(store):
    store.put_batches([batch(f"s{k}", visitor_id=f"v{k % 3}") for k in range(9)])
    assert store.events().height == 9 * 4
    assert set(store.events(visitors=["v1"])["session_id"].cast(pl.String)) == {"s1", "s4", "s7"}
    assert store.events(sessions=["s0", "s8"]).height == 8
    chunks = list(store.iter_events(chunk_visitors=2))
    assert [c["visitor_id"].n_unique() for c in chunks] == [2, 1]
    assert sum(c.height for c in chunks) == 36


# -- scrubbing ---------------------------------------------------------------------------------

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"


def test_personal_data_never_reaches_the_file(tmp_path):
    path = tmp_path / "s.db"
    with SQLiteStore(path) as st:
        out = st.put_batches([
            batch("s1", 0, url=f"/account/{EMAIL}/orders", message=f"card {CARD} declined"),
            batch("s1", 1, url="/x", message="call +47 912 34 567 or 555-123-4567"),
        ])
        assert [o.status for o in out] == ["stored", "stored"]
        ev = st.session_events("s1")
        strings = set(ev["target"].cast(pl.String).drop_nulls()) | set(
            ev["text"].cast(pl.String).drop_nulls())
        assert "/account/[email]/orders" in strings
        assert "card [card] declined" in strings
        assert "call [phone] or [phone]" in strings
        # a quarantined batch is masked in place too
        bad = batch("s2", 0, url=f"/u/{EMAIL}") + b"\x00"
        assert st.put_batches([bad])[0].status == "quarantined"
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for secret in (EMAIL, CARD, CARD.replace(" ", ""), "912 34 567", "123-4567"):
        assert secret.encode() not in blob, secret


@pytest.mark.parametrize("version", [1, 2])
def test_scrubbing_works_on_every_wire_version(tmp_path, version):
    from cemreplay import wire
    from cemreplay.schema import EVENT_SCHEMA

    rows = [
        dict(session_id="s9", visitor_id="v9", t=BASE_TS + 10 * k, batch=k // 2, i=k % 2,
             kind=int(EventKind.PAGE_VIEW), x=1280, y=720, a=1, b=0,
             target=f"/account/{EMAIL}/p{k % 2}", text=None)
        for k in range(4)
    ]
    batches = wire.encode(pl.DataFrame(rows, schema=EVENT_SCHEMA), version=version)
    assert [msgpack.unpackb(b)[0] for b in batches] == [version, version]
    path = tmp_path / "s.db"
    with SQLiteStore(path) as st:
        assert [o.status for o in st.put_batches(batches[::-1])] == ["stored", "stored"]
        got = st.session_events("s9")["target"].cast(pl.String).to_list()
        assert got == ["/account/[email]/p0", "/account/[email]/p1"] * 2
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert EMAIL.encode() not in blob


def test_scrub_can_be_turned_off_for_trusted_imports(store):
    store.put_batches([batch("s1", url=f"/{EMAIL}")], scrub=False)
    ev = store.session_events("s1")
    assert ev["target"].cast(pl.String)[0] == f"/{EMAIL}"


# -- migrations --------------------------------------------------------------------------------

V1_DDL = """
CREATE TABLE batches (
    session_id TEXT NOT NULL, seq INTEGER NOT NULL, received_ms INTEGER NOT NULL,
    data BLOB NOT NULL, PRIMARY KEY (session_id, seq)
);
CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, reason TEXT NOT NULL,
    data BLOB NOT NULL
);
PRAGMA user_version = 1;
"""


def test_a_store_written_by_version_1_is_migrated(tmp_path):
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript(V1_DDL)
    con.execute("INSERT INTO batches VALUES ('s1', 0, 1, ?)", (batch("s1", 0, visitor_id="vv"),))
    con.execute("INSERT INTO batches VALUES ('s1', 1, 2, ?)", (batch("s1", 1, visitor_id="vv"),))
    con.execute("INSERT INTO quarantine VALUES (1, 3, 'old reason', x'c1')")
    con.commit()
    con.close()
    with SQLiteStore(path) as st:
        assert st.schema_version == SCHEMA_VERSION
        row = st.sessions().row(0, named=True)
        assert (row["session_id"], row["visitor_id"], row["batches"], row["events"]) == (
            "s1", "vv", 2, 8)
        assert st.session_events("s1").height == 8
        q = st.quarantine()
        assert q["reason"].to_list() == ["old reason"] and q["code"].to_list() == [0]
        assert st.put_batches([batch("s1", 1, visitor_id="vv")])[0].status == "duplicate"
        assert st.analyze().sessions == 1
    with SQLiteStore(path) as st:  # reopening does not migrate again
        assert st.sessions()["pages"].to_list() == [2]


def test_a_store_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "new.db"
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(StoreError, match="newer than this cemreplay"):
        SQLiteStore(path)


def test_a_file_that_is_not_a_store(tmp_path):
    path = tmp_path / "x.db"
    path.write_bytes(b"hello, this is not sqlite" * 100)
    with pytest.raises(StoreError):
        SQLiteStore(path)


# -- concurrency -------------------------------------------------------------------------------


def test_threads_writing_one_store(store):
    errors: list[BaseException] = []

    def work(w: int) -> None:
        try:
            for k in range(20):
                # every thread also retries the others' batches: duplicates, never conflicts
                store.put_batches([batch(f"t{w}-{k}"), batch(f"t{(w + 1) % 4}-{k}")])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert store.sessions(limit=None).height == 80
    assert store.quarantine().height == 0


def _proc_writer(path: str, w: int) -> None:
    with SQLiteStore(path) as st:
        for k in range(15):
            st.put_batches([batch(f"p{w}-{k}"), batch("shared", k)])


def test_processes_writing_one_store(tmp_path):
    path = str(tmp_path / "s.db")
    SQLiteStore(path).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_proc_writer, args=(path, w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
        assert p.exitcode == 0
    with SQLiteStore(path) as st:
        assert st.sessions(limit=None).height == 3 * 15 + 1
        assert st.sessions(session_id="shared")["batches"][0] == 15
        assert st.quarantine().height == 0


def test_stored_bytes_are_the_received_bytes_when_clean(store):
    b = batch("s1", message="fine")
    store.put_batches([b])
    con = sqlite3.connect(store.path)
    (data,) = con.execute("SELECT data FROM batches").fetchone()
    assert data == b
    assert msgpack.unpackb(data)[3] == "s1"


def test_a_fault_after_a_reference_to_another_batch_is_still_found(store):
    # entry 0 comes from batch 0 (not given): the decoder alone would stop at the reference;
    # the ingest check looks past it and finds the leftover byte in the refs section
    env = envelope("s1", 1, [(EventKind.REQUEST, 5, {"target": 1})], str_base=1)
    env[12] = env[12] + b"\x00"
    (o,) = store.put_batches([pack(env)])
    assert o.status == "quarantined" and "left over" in (o.reason or "")
    env = envelope("s1", 1, [(EventKind.REQUEST, 5, {"target": 1})], str_base=1)
    assert store.put_batches([pack(env)])[0].status == "stored"


def _finding_rows(df: pl.DataFrame) -> list[tuple[object, ...]]:
    cols = ["session_id", "kind", "t", "page_view", "target", "count", "explanation"]
    return sorted(df.select([pl.col(c).cast(pl.String) for c in cols]).rows(), key=str)


def test_store_baselines_make_analyze_independent_of_the_chunking(tmp_path):
    from cemreplay.detectors import detect
    from cemreplay.synth import generate
    from cemreplay.wire import encode

    traffic = generate(sessions=300, seed=5)
    batches = encode(traffic.events, site_key="k")
    runs = {}
    for name, chunk, use_store in [("whole", 10**6, False), ("small", 7, True),
                                   ("small-chunk-only", 7, False)]:
        with open_store(tmp_path / f"{name}.db") as st:
            st.put_batches(batches)
            base = st.baselines(chunk_visitors=11) if use_store else None
            st.analyze(chunk_visitors=chunk, baselines=base)
            runs[name] = _finding_rows(st.findings())
            events = st.events()
    # One chunk holding every visitor is detect() over everything; small chunks with the
    # store's baselines find exactly that too.
    assert runs["whole"] == _finding_rows(detect(events))
    assert runs["small"] == runs["whole"]
    # Without them the page baselines are a chunk's own, and the findings differ.
    kinds = {"excessive_scroll", "quick_back"}
    assert [r for r in runs["small-chunk-only"] if r[1] in kinds] != [
        r for r in runs["whole"] if r[1] in kinds
    ]


def _appender(calls: list[tuple[int, int]]):
    return lambda done, total: calls.append((done, total))


def _sorted(v):
    if isinstance(v, pl.DataFrame) and v.height:
        return v.sort(v.columns, nulls_last=True).to_dicts()
    return v.to_dicts() if isinstance(v, pl.DataFrame) else v


def test_analyze_on_threads_writes_what_one_worker_writes(tmp_path):
    """Chunks analysed on two threads ahead of the writes, written in order: every table of
    the store ends up exactly as with one worker (a quarantined batch included)."""
    from cemreplay.reports._facts import facts_of_blob
    from cemreplay.synth import generate
    from cemreplay.wire import encode

    batches = encode(generate(sessions=200, seed=9).events, site_key="k")
    dumps = {}
    for workers in (1, 2):
        path = tmp_path / f"w{workers}.db"
        with open_store(path) as st:
            st.put_batches(batches)
            done: list[tuple[int, int]] = []
            r = st.analyze(chunk_visitors=9, workers=workers, progress=_appender(done))
            assert r.sessions == st.sessions(limit=None).height and r.findings > 0
            assert done[0][0] == 0 and done[-1][0] == done[-1][1]
            assert [d for d, _ in done] == sorted(d for d, _ in done)
        con = sqlite3.connect(path)
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        dump = {}
        for t in tables:
            if t == "batches":  # received_ms is when put_batches ran
                rows = con.execute("SELECT session_id, seq, data FROM batches").fetchall()
            elif t == "report_facts":  # the facts' row order varies from run to run
                rows = [
                    (i, c, n, {k: _sorted(v) for k, v in facts_of_blob(d).items()})
                    for i, c, n, d in con.execute("SELECT * FROM report_facts")
                ]
            else:
                rows = con.execute(f"SELECT * FROM {t}").fetchall()
            dump[t] = sorted(map(repr, rows))
        dumps[workers] = dump
        con.close()
    assert dumps[1].keys() == dumps[2].keys() and "report_facts" in dumps[1]
    differ = [t for t in dumps[1] if dumps[1][t] != dumps[2][t]]
    assert differ == [], differ
    bad = pytest.raises(ConfigError, match="workers must be >= 1")
    with open_store(tmp_path / "w1.db") as st, bad:
        st.analyze(workers=0)
