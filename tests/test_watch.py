"""Page alerts on simulated time: a generated traffic stream, a breakage injected at a known
minute; the alert fires within 2 minutes naming the page, clears after, and the clean stream
raises none."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cemreplay.cli import main
from cemreplay.detectors import detect
from cemreplay.errors import ConfigError
from cemreplay.schema import EVENT_SCHEMA, ClickFlag, EventKind
from cemreplay.store import SQLiteStore, _page_rows
from cemreplay.synth import generate
from cemreplay.watch import (
    FrameSource,
    StoreSource,
    WatchConfig,
    Watcher,
    binomial_sf,
    replay,
)
from cemreplay.webhook import SIGNATURE_HEADER, verify
from cemreplay.wire import encode
from tests.live_support import receiver

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
MIN = 60_000
PAGE = "/checkout/payment"
SPAN_MIN = 150
BREAK_MIN = 110
FIXED_MIN = 130


@cache
def stream(sessions: int, seed: int, broken: bool) -> pl.DataFrame:
    """``sessions`` generated sessions starting uniformly over SPAN_MIN minutes; when
    ``broken``, from BREAK_MIN to FIXED_MIN the pay button throws: every visitor who reaches
    the payment page clicks it and gets a JS error."""
    ev = generate(sessions=sessions, seed=seed, days=1).events
    first = ev.group_by("session_id").agg(pl.col("t").min().alias("t0")).sort("session_id")
    rng = np.random.default_rng(seed)
    start = T0 + rng.integers(0, SPAN_MIN * MIN, size=first.height)
    shift = first.with_columns(shift=pl.Series(start) - pl.col("t0")).drop("t0")
    ev = ev.join(shift, on="session_id").with_columns(t=pl.col("t") + pl.col("shift")).drop(
        "shift")
    if broken:
        pay = ev.filter(
            (pl.col("kind") == int(EventKind.PAGE_VIEW))
            & (pl.col("target").cast(pl.String) == PAGE)
            & pl.col("t").is_between(T0 + BREAK_MIN * MIN, T0 + FIXED_MIN * MIN,
                                     closed="left")
        )
        add = []
        for sid, vid, t in pay.select("session_id", "visitor_id", "t").iter_rows():
            base = {"session_id": sid, "visitor_id": vid, "batch": 0, "i": 0, "x": 200,
                    "y": 300, "a": 0, "b": 0, "target": None, "text": None}
            add.append({**base, "t": t + 300, "kind": int(EventKind.CLICK),
                        "a": int(ClickFlag.INTERACTIVE), "b": 1, "target": "button#pay"})
            add.append({**base, "t": t + 400, "kind": int(EventKind.JS_ERROR),
                        "target": "/assets/app.js", "text": "TypeError: pay is not a function"})
        ev = pl.concat([ev.with_columns(o=pl.lit(0)),
                        pl.DataFrame(add, schema=EVENT_SCHEMA).with_columns(o=pl.lit(1))])
    # recording order = time order (injected events after an event of the same ms)
    ev = ev.with_row_index("r").sort("session_id", "t", "o" if broken else "r", "r")
    return ev.with_columns(
        batch=pl.lit(0, pl.UInt32),
        i=pl.int_range(pl.len()).over("session_id").cast(pl.UInt16),
    ).select(EVENT_SCHEMA.names())


def rows(ev: pl.DataFrame) -> pl.DataFrame:
    return _page_rows(ev, detect(ev))


CFG = WatchConfig(baseline_ms=24 * 3_600_000)


def test_binomial_tail():
    assert binomial_sf(0, 10, 0.3) == 1.0 and binomial_sf(11, 10, 0.3) == 0.0
    # against the direct sum
    from math import comb

    want = sum(comb(40, j) * 0.1**j * 0.9 ** (40 - j) for j in range(9, 41))
    assert binomial_sf(9, 40, 0.1) == pytest.approx(want, rel=1e-9)
    with pytest.raises(ConfigError):
        WatchConfig(clear_ratio=3.0, ratio=2.0)
    with pytest.raises(ConfigError):
        WatchConfig(window_ms=0)


def test_breakage_alerts_within_two_minutes_naming_the_page_then_clears():
    ev = stream(12_000, 5, True)
    alerts = replay(FrameSource(rows(ev)), T0, T0 + (SPAN_MIN + 30) * MIN, CFG)
    firing = [a for a in alerts if a.state == "firing"]
    assert [a.page_url for a in firing] == [PAGE], [a.line() for a in alerts]
    a = firing[0]
    assert T0 + BREAK_MIN * MIN < a.t <= T0 + (BREAK_MIN + 2) * MIN, (a.t - T0) / MIN
    assert "error_click" in a.kinds and a.affected >= CFG.min_affected
    assert len(a.sample_sessions) == CFG.samples
    broken = set(ev.filter(pl.col("target").cast(pl.String) == "button#pay")["session_id"]
                 .cast(pl.String))
    assert set(a.sample_sessions) <= broken
    cleared = [x for x in alerts if x.state == "cleared"]
    assert [x.page_url for x in cleared] == [PAGE]
    # it clears after the fix, once the window has no broken sessions left in it
    assert T0 + FIXED_MIN * MIN < cleared[0].t <= T0 + (FIXED_MIN + CFG.window_ms // MIN + 5) * MIN


def test_clean_stream_raises_no_alert():
    alerts = replay(FrameSource(rows(stream(12_000, 5, False))), T0,
                    T0 + (SPAN_MIN + 30) * MIN, CFG)
    assert alerts == [], [a.line() for a in alerts]


def test_one_alert_per_incident_not_one_per_check():
    src = FrameSource(rows(stream(12_000, 5, True)))
    w = Watcher(CFG)
    fired = []
    for m in range(BREAK_MIN, FIXED_MIN):
        fired += [a for a in w.check(T0 + m * MIN, src) if a.state == "firing"]
    assert len(fired) == 1 and PAGE in w.open


def test_watch_replay_over_a_store_from_the_command_line(tmp_path: Path, capsys, monkeypatch):
    db = tmp_path / "w.db"
    with SQLiteStore(db) as st:
        st.put_batches(encode(stream(12_000, 5, True), site_key="k"))
        st.analyze()
        # the store's hourly sums give the same alerts as the frame of its rows
        want = replay(FrameSource(st.page_sessions()), T0, T0 + SPAN_MIN * MIN, CFG)
        got = replay(StoreSource(st), T0, T0 + SPAN_MIN * MIN, CFG)
        assert got == want and got
    monkeypatch.setenv("CEMREPLAY_WEBHOOK_SECRET", "whsec")
    with receiver() as rec:
        assert main(["watch", "--db", str(db), "--replay", "--baseline", "24h",
                     "--format", "json", "--webhook", rec.url]) == 0
        assert rec.wait(2)
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(a["state"], a["page_url"]) for a in out] == [("firing", PAGE), ("cleared", PAGE)]
    assert "error_click" in out[0]["kinds"]
    # the same alerts reached the webhook, signed
    sent = []
    for headers, body, _ in rec.got:
        verify(body, headers[SIGNATURE_HEADER], "whsec")
        sent.append(json.loads(body))
    assert sent == out


def test_watch_on_the_clock_analyzes_then_checks(tmp_path: Path):
    from cemreplay.watch import watch
    from tests.live_support import struggling

    sleeps: list[float] = []
    with SQLiteStore(tmp_path / "c.db") as st:
        st.put_batches(encode(struggling(), site_key="k"))
        got = list(watch(st, WatchConfig(), on_alert=lambda a: None,
                         clock=lambda: (T0 + 5 * MIN) / 1000, sleep=sleeps.append,
                         max_checks=2))
        assert got == [T0 + 5 * MIN] * 2 and sleeps == [60.0]
        assert st.page_sessions().height == 4  # analyzed before the first check


def test_serve_refuses_bad_live_rules(tmp_path: Path, capsys):
    assert main(["serve", "--db", str(tmp_path / "c.db"), "--live-rules", "rage>=2"]) == 2
    assert "unknown finding kind 'rage'" in capsys.readouterr().err
