"""Report facts kept in the store by ``analyze`` (store version 4) against facts from events."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgpack
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from cemreplay import reports, synth, wire
from cemreplay.store import MIGRATIONS, SCHEMA_VERSION, SQLiteStore, open_store

KEY = reports.ReportConfig().key()


@pytest.fixture(scope="module")
def traffic() -> synth.Traffic:
    return synth.generate(900, seed=23)


def _expected(st: SQLiteStore, config: reports.ReportConfig | None = None) -> reports.Facts:
    """The facts of the same data computed from events: the store's events, findings (the
    detectors' baselines are per analyzed chunk) and sessions index."""
    return reports.facts_from_events(
        st.events(), st.findings(), sessions=st.sessions(limit=None), config=config
    )


def _rows_equal(x: pl.DataFrame, y: pl.DataFrame) -> bool:
    return x.sort(x.columns, nulls_last=True).equals(y.sort(y.columns, nulls_last=True))


def _same_facts(a: reports.Facts, b: reports.Facts) -> None:
    """Every kept table equal as a set of rows, sessions and findings equal in order, and
    every report table equal."""
    assert a.sessions.equals(b.sessions)
    assert a.findings.height > 0 and a.findings.equals(b.findings)
    for name in reports.STORED_TABLES:
        x, y = getattr(a, name), getattr(b, name)
        assert x.height > 0, name
        assert x.schema == y.schema, name
        assert _rows_equal(x, y), name
    ta, tb = reports.all_tables(a), reports.all_tables(b)
    for name in ta:
        # ties among equally scored sessions may list other sessions to watch
        t, u = (x.drop("watch", strict=False) for x in (ta[name], tb[name]))
        assert_frame_equal(t, u)  # floats to 1e-5: polars' parallel sums may differ in order


def _no_decoding(st: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**_: object) -> pl.DataFrame:
        raise AssertionError("the report decoded events although facts are stored")

    monkeypatch.setattr(st, "events", refuse)


def test_stored_facts_give_the_tables_of_facts_from_events(
    traffic: synth.Traffic, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    with open_store(tmp_path / "s.db") as st:
        st.put_batches(wire.encode(traffic.events), scrub=False)
        st.analyze(chunk_visitors=150)  # several parts
        expected = _expected(st)
        assert st.sessions_without_facts(KEY) == []
        assert len(list(st.facts_parts(KEY))) > 2
        seen: list[tuple[int, int]] = []
        recomputed = reports.from_store(st, kept=False)
        _no_decoding(st, monkeypatch)
        got = reports.from_store(st, progress=lambda d, t: seen.append((d, t)))
    _same_facts(expected, got)
    _same_facts(expected, recomputed)
    assert seen[-1] == (900, 900)


def _facts_dropped(db: Path) -> None:
    """The store as a version-3 store migrated to 4 leaves it: analyzed, no facts kept."""
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("UPDATE sessions SET facts_part = NULL")
    con.execute("DELETE FROM report_facts")
    con.close()


def test_sessions_without_stored_facts_are_computed_and_analyze_fills_them(
    traffic: synth.Traffic, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    db = tmp_path / "s.db"
    with open_store(db) as st:
        st.put_batches(wire.encode(traffic.events), scrub=False)
        st.analyze()
        expected = _expected(st)
    _facts_dropped(db)
    with open_store(db) as st:
        assert len(st.sessions_without_facts(KEY)) == 900
        seen: list[tuple[int, int]] = []
        got = reports.from_store(st, chunk_visitors=200, progress=lambda d, t: seen.append((d, t)))
        assert seen[0] == (0, 900) and seen[-1] == (900, 900) and len(seen) > 3
        _same_facts(expected, got)
        _same_facts(expected, reports.from_store(st, chunk_visitors=300, workers=2))
        assert st.dirty_sessions() == 0
        r = st.analyze()  # fills the facts the store lacks (as chunked before: same findings)
        assert r.sessions == 900
        assert st.sessions_without_facts(KEY) == []
        assert st.analyze().sessions == 0  # and then has nothing left to do
        with monkeypatch.context() as m:
            _no_decoding(st, m)
            _same_facts(expected, reports.from_store(st))


def test_another_config_computes_its_facts_from_events(
    traffic: synth.Traffic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = reports.ReportConfig(funnel=("/cart", "/checkout"))
    budget = reports.ReportConfig(max_clicks=5)  # read by the tables only: same facts
    assert budget.key() == KEY != cfg.key()
    with open_store(tmp_path / "s.db") as st:
        st.put_batches(wire.encode(traffic.events), scrub=False)
        st.analyze()
        assert len(st.sessions_without_facts(cfg.key())) == 900
        got = reports.from_store(st, config=cfg)
        _same_facts(_expected(st, cfg), got)
        expected = _expected(st, budget)
        _no_decoding(st, monkeypatch)
        kept = reports.from_store(st, config=budget)
    _same_facts(expected, kept)
    assert reports.goal_summary(kept)["max_clicks"].to_list() == [5, 5]


def test_incremental_analyze_replaces_a_sessions_facts(
    traffic: synth.Traffic, tmp_path: Path
) -> None:
    batches = wire.encode(traffic.events)
    first_k: dict[str, int] = {}
    last_k: dict[str, int] = {}
    for k, b in enumerate(batches):
        sid = msgpack.unpackb(b, raw=False)[3]
        first_k.setdefault(sid, k)
        last_k[sid] = k
    # the last batch of every third session arrives after a first analysis
    late = {last_k[sid] for sid in sorted(last_k)[::3] if last_k[sid] != first_k[sid]}
    first = [b for k, b in enumerate(batches) if k not in late]
    with open_store(tmp_path / "s.db") as st:
        st.put_batches(first, scrub=False)
        st.analyze(chunk_visitors=300)
        early = reports.from_store(st)
        parts = len(list(st.facts_parts(KEY)))
        st.put_batches([batches[k] for k in sorted(late)], scrub=False)
        assert st.dirty_sessions() > 0
        st.analyze(chunk_visitors=300)
        # the re-analyzed sessions' facts moved to new parts; the old parts hold the others
        assert any(ids is not None for _, _, ids in st.facts_parts(KEY))
        got = reports.from_store(st)
        expected = _expected(st)
    assert len(late) > 100
    assert any(not _rows_equal(getattr(early, n), getattr(got, n)) for n in reports.STORED_TABLES)
    _same_facts(expected, got)
    assert parts > 1


def test_parts_nobody_refers_to_are_deleted(traffic: synth.Traffic, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with open_store(db) as st:
        st.put_batches(wire.encode(traffic.events), scrub=False)
        st.analyze()
        con = sqlite3.connect(db, isolation_level=None)
        con.execute("UPDATE sessions SET dirty = 1")
        st.analyze()
        st.analyze()
        assert con.execute("SELECT count(*) FROM report_facts").fetchone()[0] == 1
        con.close()


def test_a_version_3_store_migrates_and_its_report_works(
    traffic: synth.Traffic, tmp_path: Path
) -> None:
    db = tmp_path / "v3.db"
    with open_store(db) as st:  # analyzed, then taken back to version 3's tables
        st.put_batches(wire.encode(traffic.events), scrub=False)
        st.analyze()
        expected = _expected(st)
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("DROP TABLE dictionaries")  # version 5's
    con.execute("ALTER TABLE batches DROP COLUMN dictionary")
    con.execute("DROP INDEX sessions_facts")
    con.execute("ALTER TABLE sessions DROP COLUMN facts_part")
    con.execute("DROP TABLE report_facts")
    con.execute("PRAGMA user_version = 3")
    con.close()
    assert 4 in MIGRATIONS and SCHEMA_VERSION >= 4
    with open_store(db) as st:
        assert st.schema_version == SCHEMA_VERSION
        assert st.dirty_sessions() == 0  # findings and index kept, nothing marked dirty
        assert len(st.sessions_without_facts(KEY)) == 900
        _same_facts(expected, reports.from_store(st))


def test_damaged_facts_are_a_clear_error(traffic: synth.Traffic, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with open_store(db) as st:
        st.put_batches(wire.encode(synth.generate(30, seed=2).events), scrub=False)
        st.analyze()
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("UPDATE report_facts SET data = x'93010203'")
    con.close()
    with open_store(db) as st, pytest.raises(reports.FactsFormatError, match="analyze"):
        reports.from_store(st)


def test_replaced_findings_drop_the_kept_facts(traffic: synth.Traffic, tmp_path: Path) -> None:
    with open_store(tmp_path / "s.db") as st:
        st.put_batches(wire.encode(traffic.events), scrub=False)
        st.analyze()
        found = st.findings()
        sid = found["session_id"][0]
        st.save_findings(found.filter(pl.col("session_id") == sid).head(1), sessions=[sid])
        assert st.sessions_without_facts(KEY) == [sid]
        _same_facts(_expected(st), reports.from_store(st))
