"""Live analysis: rules, incremental analysis identical to a batch run, per-page baselines,
the bounded hand-off from the collector."""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pytest

from cemreplay.detectors import detect
from cemreplay.errors import ConfigError
from cemreplay.live import (
    DEFAULT_RULES,
    AnswerChannel,
    LiveAnalyzer,
    Rule,
    evaluate,
    parse_rules,
)
from cemreplay.store import HOUR_MS, SQLiteStore, _page_rows
from cemreplay.synth import generate
from cemreplay.wire import encode
from tests.live_support import struggling

#: The two kinds whose findings compare a page view with per-URL baselines over the input.
BASELINE_KINDS = ("excessive_scroll", "quick_back")


def test_parse_rules_round_trips_and_refuses_nonsense():
    rules = parse_rules("default")
    assert rules == DEFAULT_RULES
    assert [r.name for r in parse_rules("failed_submit>=2/same,rage_click->error_click<20s")] == [
        "failed_submit>=2/same",
        "rage_click->error_click<20s",
    ]
    assert parse_rules("dead_click->form_error<500ms")[0].within_ms == 500
    assert parse_rules("rage_click>=3")[0] == Rule("rage_click", count=3)
    for bad in ("rage_clik>=2", "rage_click>>2", "", "failed_submit>=0"):
        with pytest.raises(ConfigError):
            parse_rules(bad)


def test_rules_fire_on_the_struggling_sessions_only():
    found = detect(struggling())
    hits = {(str(h[-1]["session_id"]), r.name) for r, h in evaluate(DEFAULT_RULES, found)}
    assert hits == {
        ("S1", "failed_submit>=2/same"),
        ("S2", "rage_click->error_click<30s"),
    }
    # a longer window takes S4's late error; S3's single failed submit needs count 1
    wide = parse_rules("rage_click->error_click<120s,failed_submit>=1")
    hits = {(str(h[-1]["session_id"]), r.kind) for r, h in evaluate(wide, found)}
    assert ("S4", "rage_click") in hits and ("S3", "failed_submit") in hits


def test_failed_submits_of_two_forms_are_not_the_same_form():
    ev = struggling().with_columns(
        target=pl.when((pl.col("session_id") == "S1") & (pl.col("t") > 1_767_225_604_000)
                       & (pl.col("kind") == 9))
        .then(pl.lit("form#other"))
        .otherwise(pl.col("target").cast(pl.String))
        .cast(pl.Categorical)
    )
    found = detect(ev)
    assert not [h for r, h in evaluate(DEFAULT_RULES, found) if r.kind == "failed_submit"]
    loose = parse_rules("failed_submit>=2")
    assert [h for r, h in evaluate(loose, found) if r.kind == "failed_submit"]


def test_signals_fire_once_per_session_and_rule_and_reach_the_sinks(tmp_path: Path):
    got = []
    answer = AnswerChannel()
    with SQLiteStore(tmp_path / "s.db") as st:
        live = LiveAnalyzer(st, sinks=[got.append, answer], max_age_ms=None)
        batches = encode(struggling(), site_key="k")
        st.put_batches(batches)
        sigs = live.process(["S1", "S2", "S3", "S4"])
        assert {(s.session_id, s.rule) for s in sigs} == {
            ("S1", "failed_submit>=2/same"),
            ("S2", "rage_click->error_click<30s"),
        }
        assert got == sigs
        assert "form#pay" in sigs[0].reason and "/checkout" in sigs[0].reason
        assert live.process(["S1", "S2"]) == []  # already signalled
        polled = answer.poll("S1")
        assert [p["rule"] for p in polled] == ["failed_submit>=2/same"]
        assert answer.poll("S1", after=polled[-1]["n"]) == []
        assert answer.poll("S3") == []
        # the findings and the index were written as analyze would
        assert st.sessions(session_id="S1")["analyzed"].to_list() == [True]
        assert st.findings(session_id="S2", kind="error_click").height == 1


def test_pairs_marked_fired_are_not_signalled_again(tmp_path: Path):
    with SQLiteStore(tmp_path / "s.db") as st:
        st.put_batches(encode(struggling(), site_key="k"))
        live = LiveAnalyzer(st, max_age_ms=None)
        live.mark_fired([("S1", "failed_submit>=2/same"), ("S9", "no_such_rule")])
        sigs = live.process(["S1", "S2", "S3", "S4"])
        assert {(s.session_id, s.rule) for s in sigs} == {("S2", "rage_click->error_click<30s")}


def test_old_findings_are_not_signalled(tmp_path: Path):
    with SQLiteStore(tmp_path / "s.db") as st:
        st.put_batches(encode(struggling(), site_key="k"))
        # the events are from 2026-01-01; "now" is a day later
        live = LiveAnalyzer(st, max_age_ms=30 * 60_000, clock=lambda: 1_767_312_000.0)
        assert live.process(["S1", "S2"]) == []
        fresh = LiveAnalyzer(st, max_age_ms=30 * 60_000, clock=lambda: 1_767_225_700.0)
        assert len(fresh.process(["S1", "S2"])) == 2


def test_notify_is_bounded_and_drops_the_oldest(tmp_path: Path):
    with SQLiteStore(tmp_path / "s.db") as st:
        live = LiveAnalyzer(st, max_pending=3)
        live.notify(["a", "b"], 1.0)
        live.notify(["c", "d", "e", "a"], 2.0)
        assert live.pending == 3 and live.dropped == 2
        assert list(live._pending) == ["c", "d", "e"]
        with pytest.raises(ConfigError):
            LiveAnalyzer(st, rules=())


def _arrivals(batches: list[bytes], rounds: int, seed: int) -> list[list[bytes]]:
    """The batches in ``rounds`` arrival groups, in random order (out of order within a
    session too: the store takes batches in any order)."""
    order = list(batches)
    random.Random(seed).shuffle(order)
    cut = sorted(random.Random(seed + 1).sample(range(1, len(order)), rounds - 1))
    return [order[a:b] for a, b in zip([0, *cut], [*cut, len(order)], strict=True)]


def _sessions_of(batches: list[bytes]) -> set[str]:
    import msgpack

    return {msgpack.unpackb(b, raw=False)[3] for b in batches}


def _norm(f: pl.DataFrame) -> pl.DataFrame:
    cols = ["session_id", "kind", "t", "page_view", "page_url", "target", "field", "count",
            "severity", "explanation"]
    return (
        f.select(pl.col(c).cast(pl.String) if f.schema[c] in (pl.Categorical, pl.Enum)
                 else pl.col(c) for c in cols)
        .with_columns(pl.col("severity").round(9))
        .sort(cols[:6], nulls_last=True)
    )


def _baselines(events: pl.DataFrame):  # type: ignore[no-untyped-def]
    """The store-wide baselines of ``events`` when this tree's detectors have them."""
    import cemreplay.detectors as d

    return d.Baselines.of(events) if hasattr(d, "Baselines") else None


def test_incremental_analysis_equals_a_batch_run(tmp_path: Path):
    traffic = generate(sessions=250, seed=11)
    batches = encode(traffic.events, site_key="k")
    # The same baselines for every run: with them every kind is compared; without them (a
    # tree without cemreplay.detectors.Baselines) the two baseline kinds are left out.
    base = _baselines(traffic.events)
    kw = {} if base is None else {"baselines": base}
    whole = detect(traffic.events, **kw)
    left_out = ["unknown", *(BASELINE_KINDS if base is None else ())]
    with SQLiteStore(tmp_path / "inc.db") as inc, SQLiteStore(tmp_path / "batch.db") as bat:
        live = LiveAnalyzer(inc, max_age_ms=None, baselines=base, baseline_refresh_s=None)
        for group in _arrivals(batches, 6, seed=3):
            inc.put_batches(group)
            live.process(_sessions_of(group))  # only the sessions this arrival changed
        assert live.analyzed < 6 * 250  # not the whole store each time
        bat.put_batches(batches)
        bat.analyze(**kw)
        keep = pl.col("kind").is_in(left_out).not_()
        got = _norm(inc.findings().filter(keep))
        assert got.height > 100
        # identical to the batch command over the same data ...
        assert got.equals(_norm(bat.findings().filter(keep)))
        # ... and to detect over the whole store
        assert got.equals(_norm(whole.filter(keep)))
        if base is not None:
            assert got.filter(pl.col("kind").is_in(BASELINE_KINDS)).height > 0
        # every session analyzed and scored, as analyze leaves them
        assert inc.sessions(limit=None).sort("session_id").drop("analyzed").equals(
            bat.sessions(limit=None).sort("session_id").drop("analyzed"))
        # per-page baselines: the same rows, and the hourly sums are the rows' GROUP BY
        ps = inc.page_sessions()
        assert ps.sort("session_id", "page_url").equals(bat.page_sessions().sort(
            "session_id", "page_url"))
        want = _page_rows(traffic.events, whole).sort("session_id", "page_url")
        assert ps.sort("session_id", "page_url").equals(want)
        hours = (
            ps.group_by("page_url", (pl.col("t") // HOUR_MS * HOUR_MS).alias("hour"))
            .agg(pl.len().cast(pl.Int64).alias("sessions"),
                 pl.col("struggled").sum().alias("struggling"))
            .sort("hour", "page_url")
        )
        assert inc.page_hours().equals(hours)
        assert ps["struggled"].sum() > 0
        if base is not None:  # the refresh computes the same baselines from the store
            got_b = live.refresh_baselines()
            assert got_b.scroll.sort("url").equals(base.scroll.sort("url"))
            assert got_b.dwell.sort("url", "dwell").equals(base.dwell.sort("url", "dwell"))


def test_a_version_2_store_migrates_and_analyze_fills_the_page_baselines(tmp_path: Path):
    import sqlite3

    from cemreplay.store import MIGRATIONS, SCHEMA_VERSION

    db = tmp_path / "v2.db"
    con = sqlite3.connect(db, isolation_level=None)
    for v in (1, 2):  # the store as cemreplay wrote it at schema version 2
        MIGRATIONS[v](con)
    con.execute("PRAGMA user_version = 2")
    import msgpack

    for b in encode(struggling(), site_key="k"):  # stored and analyzed at version 2
        env = msgpack.unpackb(b, raw=False)
        con.execute(
            "INSERT INTO batches (session_id, seq, received_ms, data, visitor_id, site_key, "
            "base_ts, n) VALUES (?, ?, 0, ?, ?, ?, ?, ?)",
            (env[3], env[4], b, env[2], env[1], env[5], env[8]),
        )
        con.execute(
            "INSERT INTO sessions (session_id, visitor_id, site_key, first_ts, last_ts, events, "
            "batches, dirty) VALUES (?, ?, ?, ?, ?, ?, 1, 0)",
            (env[3], env[2], env[1], env[5], env[5], env[8]),
        )
    con.close()
    with SQLiteStore(db) as st:
        assert st.sessions(limit=None)["analyzed"].to_list() == [False] * 4  # marked dirty
        st.analyze()
        con = sqlite3.connect(db)
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 3
        con.close()
    with SQLiteStore(db) as st:
        ps = st.page_sessions()
        assert sorted(ps["session_id"].to_list()) == ["S1", "S2", "S3", "S4"]
        s1 = ps.filter(pl.col("session_id") == "S1").row(0, named=True)
        assert s1["page_url"] == "/checkout" and s1["struggled"] == 1
        assert "failed_submit" in s1["kinds"].split(",")
        assert st.page_hours()["sessions"].sum() == 4
        assert st.time_range() == (1_767_225_600_000, 1_767_225_600_000)
