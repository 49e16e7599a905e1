"""The store's site dictionaries (wire version 3, store schema 5): the table and its migration,
put/list/latest/learn, every decode of the store given the dictionaries its batches name, and
batches naming a dictionary the store lacks quarantined, then stored once it is put."""

from __future__ import annotations

import sqlite3
import time

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from cemreplay import synth, wire
from cemreplay.errors import ConfigError
from cemreplay.export import export_store
from cemreplay.ingest import UNKNOWN_DICTIONARY, dictionary_ref
from cemreplay.outofcore import SUFFIX, run_dir, run_store, write_file
from cemreplay.pipeline import Pool
from cemreplay.store import MIGRATIONS, SCHEMA_VERSION, SQLiteStore, next_dictionary_id
from cemreplay.wire import Dictionary

SITE = "demo"  # wire.encode's default site key


@pytest.fixture(scope="module")
def traffic() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Earlier sessions (to learn from) and later ones (sent with the dictionary)."""
    ev = synth.generate(sessions=400, seed=11).events
    ids = ev["session_id"].unique(maintain_order=True).to_list()
    first = ev.filter(pl.col("session_id").is_in(ids[:250]))
    later = ev.filter(pl.col("session_id").is_in(ids[250:]))
    return first, later


@pytest.fixture(scope="module")
def learned(traffic) -> Dictionary:
    d = wire.learn_dictionary(traffic[0], site_key=SITE, id=1)
    assert d is not None and len(d.strings) > 20
    return d


def test_a_version_4_store_migrates_and_keeps_its_data(tmp_path, traffic):
    path = tmp_path / "v4.db"
    with SQLiteStore(path) as st:  # filled and analyzed, then taken back to version 4's tables
        st.put_batches(wire.encode(traffic[0]))
        st.analyze()
        sessions, found = st.sessions(limit=None), st.findings()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("DROP TABLE dictionaries")
    con.execute("ALTER TABLE batches DROP COLUMN dictionary")
    con.execute("PRAGMA user_version = 4")
    con.close()
    assert SCHEMA_VERSION == 5 and 5 in MIGRATIONS
    with SQLiteStore(path) as st:
        assert st.schema_version == 5
        assert st.dictionaries() == [] and st.latest_dictionary(SITE) is None
        assert_frame_equal(st.sessions(limit=None), sessions)
        assert_frame_equal(st.findings(), found)
        assert st.events().equals(traffic[0])
        assert st.dirty_sessions() == 0  # nothing to re-analyze
        # and it takes version 3 batches now
        d = st.learn_dictionary(SITE)
        assert d is not None and d.id >= int(time.time()) - 60  # ids start from the clock
        more = wire.encode(traffic[1], dictionary=d)
        assert {o.status for o in st.put_batches(more)} == {"stored"}
        assert st.events().height == traffic[0].height + traffic[1].height


def test_put_list_latest_and_immutability(tmp_path, learned):
    with SQLiteStore(tmp_path / "s.db") as st:
        assert st.put_dictionary(learned) == 0
        st.put_dictionary(learned)  # the same again: nothing happens
        two = Dictionary(SITE, 2, learned.strings[:5])
        other = Dictionary("other", 1, ("/x",))
        st.put_dictionary(two)
        st.put_dictionary(other)
        with pytest.raises(ConfigError, match=r"already has a dictionary 2 with other strings"):
            st.put_dictionary(Dictionary(SITE, 2, ("/y",)))
        with pytest.raises(ConfigError, match=r"takes a cemreplay\.wire\.Dictionary"):
            st.put_dictionary(learned.to_json())  # type: ignore[arg-type]
    with SQLiteStore(tmp_path / "s.db") as st:  # read back by a new store object
        assert st.dictionaries() == [learned, two, other]
        assert st.dictionaries(SITE) == [learned, two]
        assert st.latest_dictionary(SITE) == two
        assert st.latest_dictionary("other") == other
        assert st.latest_dictionary("none") is None


def test_learn_stores_only_what_changed(tmp_path, traffic, learned):
    seen: list[tuple[int, int]] = []
    with SQLiteStore(tmp_path / "s.db") as st:
        assert st.learn_dictionary(SITE) is None  # nothing stored yet
        st.put_batches(wire.encode(traffic[0]))
        d = st.learn_dictionary(SITE, progress=lambda a, b: seen.append((a, b)))
        # wire.learn_dictionary of the site's sessions, its id from the clock
        assert d is not None and d.strings == learned.strings and d.site_key == SITE
        assert abs(d.id - time.time()) < 60
        learned = d
        assert seen[0] == (0, 250) and seen[-1] == (250, 250)
        assert st.learn_dictionary(SITE) == learned  # unchanged: no new id
        assert st.dictionaries() == [learned]
        assert st.learn_dictionary("no-such-site") is None
        st.put_batches(wire.encode(traffic[1]))
        d2 = st.learn_dictionary(SITE, min_visitors=5)  # more strings qualify
        assert d2 is not None and d2.id > d.id and len(d2.strings) > len(learned.strings)
        assert st.learn_dictionary(SITE, sessions=1, min_visitors=20) == d2  # none qualify
        with pytest.raises(ConfigError, match="min_visitors must be an int >= 1"):
            st.learn_dictionary(SITE, min_visitors=0)


def test_version_3_batches_are_analysed_shown_and_exported_like_version_2(
    tmp_path, traffic, learned
):
    later = traffic[1]
    v2, v3 = wire.encode(later), wire.encode(later, dictionary=learned)
    assert all(dictionary_ref(b) == (SITE, 1) for b in v3)
    assert sum(map(len, v3)) < 0.85 * sum(map(len, v2))
    paths = {}
    for name, batches in (("v2", v2), ("v3", v3)):
        paths[name] = path = tmp_path / f"{name}.db"
        with SQLiteStore(path) as st:
            st.put_dictionary(learned)
            assert {o.status for o in st.put_batches(batches)} == {"stored"}
    sid = later["session_id"][0]
    with SQLiteStore(paths["v2"]) as a, SQLiteStore(paths["v3"]) as b:
        assert b.events().equals(later)
        assert b.session_events(sid).equals(a.session_events(sid))
        assert_frame_equal(b.session_view(sid).findings, a.session_view(sid).findings)
        ra, rb = a.analyze(), b.analyze()
        assert rb == ra and rb.quarantined == 0 and rb.events == later.height
        assert_frame_equal(b.findings(), a.findings())
        assert_frame_equal(b.sessions(limit=None), a.sessions(limit=None))
        assert b.quarantine().height == 0
    # other readers of a store: out-of-core analysis and the Parquet export
    # one pool of threads for the five runs (worker processes: tests/test_pipeline.py)
    pool = Pool(2, mode="thread")
    oa = run_store(paths["v2"], chunk_visitors=50, pool=pool)
    ob = run_store(paths["v3"], chunk_visitors=50, pool=pool)
    assert_frame_equal(ob.findings, oa.findings)
    assert oa.findings.height > 0
    # and batch files (outofcore.run_dir) given the store's dictionaries
    for name, batches in (("v2", v2), ("v3", v3)):
        (tmp_path / name).mkdir()
        write_file(tmp_path / name / f"part{SUFFIX}", batches)
    with SQLiteStore(paths["v3"]) as b:
        dicts = b.dictionaries()
    da = run_dir(tmp_path / "v2", pool=pool)
    db = run_dir(tmp_path / "v3", dictionaries=dicts, pool=pool)
    assert_frame_equal(db.findings, da.findings)
    assert_frame_equal(db.findings, oa.findings)
    # without them: set aside
    assert len(run_dir(tmp_path / "v3", pool=pool).quarantined) == len(v3)
    pool.close()
    ea = export_store(paths["v2"], tmp_path / "pa")
    eb = export_store(paths["v3"], tmp_path / "pb")
    assert (
        (eb.sessions, eb.events)
        == (ea.sessions, ea.events)
        == (later["session_id"].n_unique(), later.height)
    )


def test_a_batch_naming_a_missing_dictionary_is_quarantined_then_stored(tmp_path, traffic, learned):
    later = traffic[1]
    ids = later["session_id"].unique(maintain_order=True).to_list()
    ours = later.filter(pl.col("session_id").is_in(ids[:3]))
    good = wire.encode(later.filter(pl.col("session_id").is_in(ids[3:6])), dictionary=learned)
    foreign = Dictionary(SITE, 9, learned.strings)  # say, another store's
    orphans = wire.encode(ours, dictionary=foreign)
    with SQLiteStore(tmp_path / "s.db") as st:
        st.put_dictionary(learned)
        out = st.put_batches([*good, *orphans])
        assert [o.status for o in out] == ["stored"] * len(good) + ["quarantined"] * len(orphans)
        bad = out[len(good)]
        assert bad.code == UNKNOWN_DICTIONARY
        assert SITE in bad.reason and "9" in bad.reason
        q = st.quarantine()
        assert q.height == len(orphans) and set(q["code"]) == {UNKNOWN_DICTIONARY}
        assert st.sessions(limit=None).height == 3  # the good ones only
        # the dictionary arrives: those batches are validated again and stored
        assert st.put_dictionary(foreign) == len(orphans)
        assert st.quarantine().height == 0
        assert st.events(sessions=ids[:3]).equals(ours)
        assert st.analyze().quarantined == 0


def test_dictionaries_are_read_from_the_table_once(tmp_path, traffic, learned):
    batches = wire.encode(traffic[1], dictionary=learned)
    path = tmp_path / "s.db"
    with SQLiteStore(path) as st:
        st.put_dictionary(learned)
    with SQLiteStore(path) as st:  # a new store object: nothing in memory yet
        asked: list[str] = []
        st._con().set_trace_callback(asked.append)
        for b in batches[:5]:
            assert st.put_batches([b])[0].status == "stored"
        st.session_events(traffic[1]["session_id"][0])
        assert sum("FROM dictionaries" in s for s in asked) == 1
        # an unknown id: looked up once, then remembered as missing for a while
        asked.clear()
        unknown = wire.encode(traffic[1].head(20), dictionary=Dictionary(SITE, 5, ("/",)))
        for _ in range(3):
            assert st.put_batches(unknown[:1])[0].code == UNKNOWN_DICTIONARY
        assert sum("FROM dictionaries" in s for s in asked) == 1
        st._con().set_trace_callback(None)


def test_dictionary_ids_come_from_the_clock_and_only_grow():
    assert next_dictionary_id(None, now=1_800_000_000.7) == 1_800_000_000
    old = Dictionary(SITE, 1_800_000_000, ("/",))
    assert next_dictionary_id(old, now=1_800_000_000.2) == 1_800_000_001  # same second
    assert next_dictionary_id(old, now=1_700_000_000) == 1_800_000_001  # a clock set back
    assert next_dictionary_id(old, now=1_900_000_000) == 1_900_000_000
