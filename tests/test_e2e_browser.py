"""End to end: the built snippet in headless Chromium sends to the real collector (uvicorn on
127.0.0.1), which stores the batches; the store's events decode, the detectors find the
struggle, and a support rep's `cemreplay show` tells the story. Nothing typed is stored."""

from __future__ import annotations

import socket
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgpack
import polars as pl
import pytest
import uvicorn

from cemreplay.cli import main as cli
from cemreplay.detectors import detect
from cemreplay.schema import EventKind
from tests.browser_support import MARKS, launch, wait_for

DIST = Path(__file__).resolve().parent.parent / "js-snippet" / "dist" / "cemreplay.min.js"

pytestmark = [
    *MARKS,
    pytest.mark.skipif(
        not DIST.exists(), reason="snippet not built: cd js-snippet && npm run build"
    ),
]

PHONE = "+47 912 34 567"
EMAIL = "kari.nordmann@example.no"

PAGE = """<!doctype html><html lang="nb"><head><meta charset="utf-8"><title>shop</title></head>
<body>
<form id="shipping">
  <input id="phone" name="phone" type="tel" required pattern="\\+1[0-9 ]{10,13}">
  <input id="email" name="email" type="email">
  <button id="send" type="submit">Send</button>
</form>
<button id="coupon">Apply coupon</button>
<button id="err" onclick="throw new Error('boom for ' + document.getElementById('email').value)">
  Err</button>
<script>document.getElementById('shipping').addEventListener('submit', e => e.preventDefault());
</script>
<script src="/cemreplay.min.js"></script>
<script>cemreplay.init({endpoint: '%(collector)s', siteKey: 'e2e-site', flushMs: 500});</script>
</body></html>
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    from cemreplay.collector import create_app

    db = tmp_path / "shop.db"
    port = free_port()
    app = create_app(db, site_key="e2e-site")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: server.started, "the collector to start")
    try:
        yield url, db
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def site(collector: tuple[str, Path]) -> Iterator[str]:
    page = (PAGE % {"collector": collector[0]}).encode()
    snippet = DIST.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            js = self.path.startswith("/cemreplay.min.js")
            body = snippet if js else page
            self.send_response(200)
            self.send_header("Content-Type", "text/javascript" if js else "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    ).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_snippet_to_collector_to_support_rep(
    site: str, collector: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, db = collector
    with launch() as browser:
        page = browser.new_page(locale="nb-NO", timezone_id="Europe/Oslo")
        page.goto(f"{site}/checkout?utm_campaign=spring-promo")
        page.click("#phone")
        page.keyboard.type(PHONE)
        page.click("#email")
        page.keyboard.type(EMAIL)
        page.click("#send")  # the Norwegian number fails the US-only pattern
        page.click("#coupon", click_count=1)
        for _ in range(4):  # rage: the coupon button does nothing
            page.click("#coupon", delay=10)
        page.click("#err")
        assert page.evaluate("cemreplay.flush()") is True  # acknowledged by the collector
        sid = page.evaluate("cemreplay.sessionId()")
        vid = page.evaluate("cemreplay.visitorId()")

    # Nothing typed reached the database, in any table, in any form.
    con = sqlite3.connect(db)
    try:
        blobs = [
            bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode()
            for table in ("batches", "quarantine")
            for row in con.execute(f"SELECT * FROM {table}")
            for v in row
            if v is not None
        ]
    finally:
        con.close()
    assert blobs, "the collector stored nothing"
    for secret in (PHONE, "912 34 567", EMAIL, "nordmann"):
        assert not any(secret.encode() in b for b in blobs), secret

    from cemreplay.store import open_store

    store = open_store(db)
    try:
        events = store.session_events(sid)
    finally:
        store.close()
    assert events["visitor_id"].cast(pl.String).unique().to_list() == [vid]
    kinds = set(events["kind"].to_list())
    # The browser refuses to submit the invalid form: `invalid` fires instead of `submit`.
    assert int(EventKind.SUBMIT) not in kinds
    for k in (
        EventKind.PAGE_VIEW,
        EventKind.CLICK,
        EventKind.CHANGE,
        EventKind.VALIDATION_ERROR,
        EventKind.JS_ERROR,
    ):
        assert int(k) in kinds, k.name
    shapes = events.filter(pl.col("kind") == int(EventKind.CHANGE))["text"].cast(pl.String)
    assert "+99 999 99 999" in shapes.to_list()

    findings = detect(events)
    assert "form_error" in findings["kind"].to_list()
    assert "rage_click" in findings["kind"].to_list()

    assert cli(["analyze", "--db", str(db)]) == 0
    assert cli(["show", sid, "--db", str(db), "--format", "text"]) == 0
    shown = capsys.readouterr().out
    assert sid in shown
    assert "rage_click" in shown
    assert "+99 999 99 999" in shown
    assert PHONE not in shown


def test_a_learned_dictionary_reaches_the_next_visitor(
    site: str,
    collector: tuple[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A first visit stores v2 batches; the site's dictionary is learned from it (CLI, another
    process's view of the store); the next visitor's snippet fetches it from the running
    collector and sends v3 batches, which the store reads back into the same strings."""
    _, db = collector
    # the collector asks the store again at once (it keeps its answer for a minute otherwise)
    monkeypatch.setattr("cemreplay.collector.DICTIONARY_RECHECK_S", 0.0)
    with launch() as browser:
        first = browser.new_context()
        page = first.new_page()
        page.goto(f"{site}/checkout")
        page.click("#coupon")
        page.click("#phone")
        assert page.evaluate("cemreplay.flush()") is True
        first.close()
        learn = ["dictionary", "--db", str(db), "--site", "e2e-site", "--learn"]
        assert cli([*learn, "--min-visitors", "1"]) == 0
        capsys.readouterr()

        second = browser.new_context()  # a new visitor: an empty HTTP cache
        page = second.new_page()
        with page.expect_response(lambda r: "/v1/dictionary?" in r.url) as answer:
            page.goto(f"{site}/checkout")
        assert answer.value.status == 200
        page.evaluate("new Promise((r) => setTimeout(r, 50))")  # its JSON is taken up
        for _ in range(2):
            page.click("#coupon")
        page.click("#phone")
        page.keyboard.type(PHONE)
        page.click("#coupon")
        assert page.evaluate("cemreplay.flush()") is True
        sid = page.evaluate("cemreplay.sessionId()")
        second.close()

    con = sqlite3.connect(db)
    try:
        stored = [
            bytes(r[0]) for r in con.execute("SELECT data FROM batches WHERE session_id=?", (sid,))
        ]
    finally:
        con.close()
    envelopes = [msgpack.unpackb(b) for b in stored]
    # (a batch sealed before the dictionary's answer was read would be v2, and hold no click)
    assert envelopes and envelopes[-1][0] == 3, [e[0] for e in envelopes]
    assert all(e[13] >= 1 for e in envelopes if e[0] == 3)
    sent = {s for e in envelopes for s in e[7]}
    assert "button#coupon" not in sent and "input#phone" not in sent, sent

    from cemreplay.store import open_store

    store = open_store(db)
    try:
        events = store.session_events(sid)
    finally:
        store.close()
    clicks = events.filter(pl.col("kind") == int(EventKind.CLICK))["target"].cast(pl.String)
    assert clicks.to_list() == ["button#coupon", "button#coupon", "input#phone", "button#coupon"]
    assert cli(["show", sid, "--db", str(db), "--format", "text"]) == 0
    shown = capsys.readouterr().out
    assert "button#coupon" in shown and PHONE not in shown
