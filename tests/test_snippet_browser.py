"""The built snippet in headless Chromium, acting like a visitor, read back by cemreplay.

A test page is served from one 127.0.0.1 port and the batches go cross-origin (CORS
preflight included) to a small receiver on another port. Everything the receiver got is
decoded with ``cemreplay.wire.decode``; the raw request bodies are searched for what the
visitor typed, which must never be there.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack
import polars as pl
import pytest

from cemreplay.errors import DecodeError
from cemreplay.schema import ClickFlag, EventKind, NavigationType
from cemreplay.wire import Dictionary, decode, decode_report
from tests.browser_support import MARKS, launch, wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

DIST = Path(__file__).resolve().parent.parent / "js-snippet" / "dist" / "cemreplay.min.js"

pytestmark = MARKS

#: What the visitor types. None of it may ever leave the browser.
PHONE = "+47 912 34 567"
NAME = "Kari Nordmann"
PASSWORD = "hunter2-Secret"
CARD = "4111 1111 1111 1111"
BLOCKED = "blockedvalue-xyz"
EMAIL = "kari.nordmann@example.no"
TYPED = [PHONE, "912 34 567", NAME, "Nordmann", PASSWORD, CARD, "4111", BLOCKED, EMAIL]

PAGE = """<!doctype html>
<html lang="nb"><head><meta charset="utf-8"><title>checkout</title></head>
<body>
<nav>%(links)s</nav>
<form id="checkout">
  <label>Telefon <input id="phone" name="phone" type="tel" required
    pattern="\\+1[0-9 ]{10,13}"></label>
  <input id="fullname" name="fullname" autocomplete="name" aria-describedby="name-err">
  <span id="name-err">Skriv hele navnet</span>
  <input id="pw" name="pw" type="password">
  <input id="card" name="cardnumber" autocomplete="cc-number">
  <button id="pay" type="submit">Betal</button>
</form>
<button id="dead">Nothing happens</button>
<button id="grow" onclick="for (let i = 0; i < 5; i++)
  document.body.appendChild(document.createElement('p')).textContent = 'row ' + i">Grow</button>
<div data-cem-block><button id="hush">Blocked</button><input id="blocked-input"></div>
<button id="err" onclick="throw new Error('boom from the page')">Throw</button>
<button id="reject" onclick="Promise.reject(new Error('no account for %(email)s'))">Reject</button>
<button id="fetchfail" onclick="fetch('/api/fail?token=abc123')">Fail</button>
<button id="fetchok" onclick="fetch('/api/ok')">Ok</button>
<button id="xhrfail" onclick="const x = new XMLHttpRequest(); x.open('post', '/api/fail?k=v');
  x.send('{}')">Xhr</button>
<a id="next" href="/spa/step2"
  onclick="event.preventDefault(); history.pushState({}, '', '/spa/step2?utm_campaign=spring')">
  Next</a>
<script>
  document.getElementById('checkout').addEventListener('submit', (e) => e.preventDefault());
</script>
<script src="/cemreplay.min.js"></script>
<script>
  const q = new URLSearchParams(location.search);
  if (!q.has('noinit')) cemreplay.init({endpoint: '%(collector)s', siteKey: 'test-site',
    flushMs: 1000, consent: q.get('consent') !== '0', sampleRate: +(q.get('sample') || 1)});
</script>
</body></html>
"""


@dataclass
class Received:
    """What the test receiver got: one entry per POST /v1/batch."""

    bodies: list[bytes] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    encodings: list[str] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: What GET /v1/dictionary answers: the site dictionary's JSON, or None for 204.
    dictionary: bytes | None = None
    dictionary_gets: list[str] = field(default_factory=list)

    def count(self) -> int:
        with self.lock:
            return len(self.bodies)

    def events(self, dictionaries: Iterable[Dictionary] = ()) -> pl.DataFrame:
        with self.lock:
            bodies = list(self.bodies)
        return decode(bodies, dictionaries=dictionaries).with_columns(
            pl.col(pl.Categorical).cast(pl.String)
        )


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    ).start()
    host, port = server.server_address[:2]
    return server, f"http://{host!s}:{port}"


@dataclass
class Site:
    url: str
    received: Received


@pytest.fixture
def site() -> Iterator[Site]:
    received = Received()

    class Collector(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _cors(self) -> None:
            self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin") or "*")
            self.send_header("Access-Control-Allow-Methods", "POST")
            self.send_header("Access-Control-Allow-Headers", "Content-Type, Content-Encoding")
            self.send_header("Access-Control-Max-Age", "600")

        def do_OPTIONS(self) -> None:
            self.send_response(204)
            self._cors()
            self.end_headers()

        def do_GET(self) -> None:
            body = received.dictionary
            ok = self.path.startswith("/v1/dictionary?")
            if ok:
                received.dictionary_gets.append(self.path)
            self.send_response(404 if not ok else 200 if body else 204)
            self._cors()
            if ok and body:
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "public, max-age=3600")
            self.end_headers()
            if ok and body:
                self.wfile.write(body)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            encoding = self.headers.get("Content-Encoding") or ""
            body = gzip.decompress(raw) if encoding == "gzip" else raw
            ok = self.path == "/v1/batch"
            if ok:
                with received.lock:
                    received.raw.append(raw)
                    received.bodies.append(body)
                    received.encodings.append(encoding)
                    received.content_types.append(self.headers.get("Content-Type") or "")
            self.send_response(204 if ok else 404)
            self._cors()
            self.end_headers()

    collector, collector_url = _serve(Collector)
    links = "".join(f'<a href="#s{i}" class="nav-link">Section {i}</a> ' for i in range(150))
    page = (PAGE % {"links": links, "email": EMAIL, "collector": collector_url}).encode()
    snippet = DIST.read_bytes()

    class Site_(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            status, ctype, body = 200, "text/html; charset=utf-8", page
            if path == "/cemreplay.min.js":
                ctype, body = "text/javascript", snippet
            elif path == "/api/ok":
                ctype, body = "application/json", b"{}"
            elif path == "/api/fail":
                status, ctype, body = 500, "application/json", b'{"error": "down"}'
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

    server, url = _serve(Site_)
    try:
        yield Site(url, received)
    finally:
        for s in (server, collector):
            s.shutdown()
            s.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch() as b:
        yield b


def flush(page: Page) -> bool:
    return bool(page.evaluate("cemreplay.flush()"))


def rows(df: pl.DataFrame, kind: EventKind) -> list[dict[str, Any]]:
    return df.filter(pl.col("kind") == int(kind)).to_dicts()


def test_a_visit_recorded_privately_and_completely(browser: Browser, site: Site) -> None:
    context = browser.new_context(locale="nb-NO", timezone_id="Europe/Oslo")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{site.url}/checkout?utm_source=news&q=private-search")

    page.click("#grow")
    page.click("#dead", click_count=3)  # a triple click: UIEvent.detail 1, 2, 3
    page.click("#hush")
    page.click("#phone")
    page.keyboard.type(PHONE)
    page.click("#fullname")
    page.keyboard.type(NAME)
    page.fill("#pw", PASSWORD)
    page.fill("#card", CARD)
    page.fill("#blocked-input", BLOCKED)
    page.click("#pay")  # the phone does not match the US-only pattern: native `invalid`
    page.evaluate(
        "cemreplay.formError(document.getElementById('phone'),"
        " 'Nummeret ' + document.getElementById('phone').value + ' er ikke gyldig')"
    )
    page.evaluate("document.getElementById('fullname').setAttribute('aria-invalid', 'true')")
    page.evaluate("document.getElementById('phone').removeAttribute('pattern')")
    page.click("#pay")  # now valid: a submit
    page.click("#err")
    page.click("#reject")
    page.click("#fetchfail")
    page.click("#fetchok")
    page.click("#xhrfail")  # the test site answers POST with 501
    page.click("#next")  # history.pushState
    page.click('a[href="#s3"]')  # a fragment: hashchange
    page.go_back()  # back to /spa/step2: a fragment change again
    page.go_back()  # back to the landing URL: popstate
    page.evaluate("cemreplay.track('order_placed', 12900)")
    session = page.evaluate("cemreplay.sessionId()")
    visitor = page.evaluate("cemreplay.visitorId()")
    assert flush(page) is True

    # Offline: batches wait in localStorage; the next page load sends them.
    context.set_offline(True)
    page.evaluate("cemreplay.track('offline_milestone', 7)")
    page.click("#dead")
    assert flush(page) is False
    queued = page.evaluate("JSON.parse(localStorage.getItem('cem_q')).length")
    assert queued >= 1
    before = site.received.count()
    context.set_offline(False)
    page.goto(f"{site.url}/checkout")
    wait_for(
        lambda: "offline_milestone" in set(site.received.events()["target"].drop_nulls()),
        "the batch queued offline",
    )
    assert site.received.count() > before
    assert flush(page) is True
    wait_for(lambda: page.evaluate("localStorage.getItem('cem_q')") == "[]", "an empty queue")
    context.close()

    # What cemreplay reads back.
    df = site.received.events()
    assert df["session_id"].unique().to_list() == [session]
    assert df["visitor_id"].unique().to_list() == [visitor]
    assert all(ct == "application/msgpack" for ct in site.received.content_types)
    sizes = [len(b) for b in site.received.bodies]
    assert "gzip" in site.received.encodings, f"no batch over 1 KB was gzipped: {sizes}"

    views = rows(df, EventKind.PAGE_VIEW)
    assert views[0]["target"] == f"{site.url}/checkout?utm_source=news&q="
    assert views[0]["b"] == NavigationType.LOAD and views[0]["a"] == 1  # desktop
    assert (views[0]["x"], views[0]["y"]) == (1280, 720)
    push = [v for v in views if v["b"] == NavigationType.PUSH]
    assert [v["target"] for v in push] == [f"{site.url}/spa/step2?utm_campaign=spring"]
    assert push[0]["text"] == views[0]["target"]  # an SPA view's referrer is the last view
    assert [v["b"] for v in views[1:5]] == [
        NavigationType.PUSH,
        NavigationType.HASH,
        NavigationType.HASH,
        NavigationType.POP,
    ]
    assert views[2]["target"] == f"{site.url}/spa/step2?utm_campaign=spring#s3"
    assert views[4]["target"] == views[0]["target"]
    assert views[5]["b"] == NavigationType.LOAD  # the next page load, same session
    attrs = {(r["target"], r["text"]) for r in rows(df, EventKind.ATTRIBUTE)}
    assert {
        ("locale", "nb-NO"),
        ("timezone", "Europe/Oslo"),
        ("utm_source", "news"),
        ("utm_campaign", "spring"),
    } <= attrs
    assert len(rows(df, EventKind.ATTRIBUTE)) == len(attrs)  # sent once, not on every view

    clicks = rows(df, EventKind.CLICK)
    dead = [c for c in clicks if c["target"] == "button#dead"]
    assert len(dead) == 4
    assert all(c["a"] & ClickFlag.INTERACTIVE and c["x"] > 0 and c["y"] > 0 for c in dead)
    assert [c["b"] for c in dead[:3]] == [1, 2, 3]  # click counts
    assert next(c for c in clicks if c["target"] == "input#phone")["a"] & ClickFlag.TEXT_INPUT
    link = next(c for c in clicks if c["target"] == "a#next")
    assert link["a"] & ClickFlag.LINK
    grow_t = next(c["t"] for c in clicks if c["target"] == "button#grow")
    mutations = [m for m in rows(df, EventKind.MUTATION) if grow_t <= m["t"] <= grow_t + 1000]
    assert mutations and mutations[0]["a"] >= 5, (grow_t, rows(df, EventKind.MUTATION))

    blurs = {r["target"]: r for r in rows(df, EventKind.BLUR)}
    assert (blurs["input#phone"]["a"], blurs["input#phone"]["text"]) == (14, "+99 999 99 999")
    assert (blurs["input#fullname"]["a"], blurs["input#fullname"]["text"]) == (13, "Aaaa Aaaaaaaa")
    for sensitive in ("input#pw", "input#card"):
        assert (blurs[sensitive]["a"], blurs[sensitive]["text"]) == (0, None), sensitive
    assert any(r["target"] == "input#phone" for r in rows(df, EventKind.FOCUS))

    errs = {(r["a"], r["target"]): r["text"] for r in rows(df, EventKind.VALIDATION_ERROR)}
    assert (0, "input#phone") in errs  # native `invalid`
    assert errs[(2, "input#phone")] == "Nummeret +99 999 99 999 er ikke gyldig"  # formError
    assert errs[(1, "input#fullname")] == "Skriv hele navnet"  # aria-invalid
    assert [r["target"] for r in rows(df, EventKind.SUBMIT)] == ["form#checkout"]

    js = rows(df, EventKind.JS_ERROR)
    assert any("boom from the page" in r["text"] for r in js)
    thrown = next(r for r in js if "boom" in r["text"])
    assert thrown["target"].startswith(f"{site.url}/checkout")  # file:line
    assert any("no account for" in r["text"] for r in js)
    failures = rows(df, EventKind.NETWORK_FAILURE)
    assert [(r["a"], r["target"], r["text"]) for r in failures] == [
        (500, f"{site.url}/api/fail?token=", "GET"),
        (501, f"{site.url}/api/fail?k=", "POST"),
    ]
    requests = {r["target"] for r in rows(df, EventKind.REQUEST)}
    assert {f"{site.url}/api/fail?token=", f"{site.url}/api/ok"} <= requests
    milestones = {(r["target"], r["a"]) for r in rows(df, EventKind.MILESTONE)}
    assert {("order_placed", 12900), ("offline_milestone", 7)} <= milestones
    assert rows(df, EventKind.GEOMETRY) and rows(df, EventKind.MOUSE_MOVE)
    assert rows(df, EventKind.PAGE_LEAVE)

    # Blocked subtrees leave no trace; nothing typed leaves the browser.
    strings = set(df["target"].drop_nulls()) | set(df["text"].drop_nulls())
    assert not any("hush" in s or "blocked" in s for s in strings)
    for body in site.received.bodies + site.received.raw:
        for typed in TYPED:
            assert typed.encode() not in body, typed
    assert not any("private-search" in s or "abc123" in s for s in strings)
    # The snippet itself threw nothing into the page (only the page's own two errors).
    assert errors and all("boom" in e or "no account" in e for e in errors), errors


def test_consent_off_records_and_sends_nothing(browser: Browser, site: Site) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{site.url}/checkout?consent=0")
    page.click("#dead")
    assert flush(page) is False
    assert page.evaluate("cemreplay.sessionId()") is None
    assert page.evaluate("Object.keys(localStorage)") == []
    page.evaluate("cemreplay.optIn()")
    page.click("#dead")
    assert flush(page) is True
    df = site.received.events()
    assert [r["target"] for r in rows(df, EventKind.CLICK)] == ["button#dead"]  # after optIn only

    page.evaluate("cemreplay.optOut()")
    sent = site.received.count()
    page.click("#dead")
    page.evaluate("cemreplay.track('after_opt_out')")
    assert flush(page) is False
    assert page.evaluate("[localStorage.getItem('cem_q'), localStorage.getItem('cem_v')]") == [
        "null",
        "null",
    ]
    # a new page load remembers the choice
    page.goto(f"{site.url}/checkout")
    page.click("#dead")
    assert flush(page) is False
    assert site.received.count() == sent
    context.close()


def test_collector_down_costs_the_page_nothing(browser: Browser, site: Site) -> None:
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{site.url}/checkout?noinit")
    page.evaluate("cemreplay.init({endpoint: 'http://127.0.0.1:9', siteKey: 'x', flushMs: 200})")
    for _ in range(3):
        page.click("#grow")
        page.click("#fetchok")
    page.click("#xhrfail")  # the test site answers POST with 501
    assert flush(page) is False
    assert page.evaluate("JSON.parse(localStorage.getItem('cem_q')).length") >= 1
    # the page's own code keeps working: its fetch, history and handlers are intact
    assert page.evaluate("fetch('/api/ok').then(r => r.status)") == 200
    assert page.evaluate("document.querySelectorAll('p').length") == 15
    assert errors == []
    context.close()


def test_cost_per_event(browser: Browser, site: Site) -> None:
    """Measures what the page pays per event (reported, not asserted: see docs/snippet.md)."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{site.url}/checkout?noinit")
    bench = """(n) => {
      const b = document.getElementById('dead'), f = document.getElementById('fullname');
      const run = (mk) => { const t = performance.now(); for (let i = 0; i < n; i++) mk(i);
        return (performance.now() - t) * 1000 / n; };
      return {
        click: run(() => b.dispatchEvent(new MouseEvent('click', {bubbles: true}))),
        mousemove: run((i) => document.dispatchEvent(new MouseEvent('mousemove',
          {bubbles: true, clientX: i % 800, clientY: (i * 7) % 600}))),
        focus_blur: run(() => { f.dispatchEvent(new FocusEvent('focusin', {bubbles: true}));
          f.dispatchEvent(new FocusEvent('focusout', {bubbles: true})); }),
      };
    }"""
    baseline = page.evaluate(bench, 2000)
    page.evaluate(
        f"cemreplay.init({{endpoint: {json.dumps(site.url)}, siteKey: 'x', flushMs: 60000}})"
    )
    page.evaluate(bench, 200)  # warm up
    recorded = page.evaluate(bench, 2000)
    listeners = page.evaluate("Object.keys(window.cemreplay).length")
    cost = {k: round(recorded[k] - baseline[k], 2) for k in baseline}
    print(f"\nsnippet cost per event (µs, Chromium headless): {cost}; API functions: {listeners}")
    assert set(cost) == {"click", "mousemove", "focus_blur"}
    context.close()


def test_unsampled_sessions_send_nothing(browser: Browser, site: Site) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{site.url}/checkout?sample=0")
    page.click("#dead")
    page.evaluate("cemreplay.track('x')")
    assert page.evaluate("cemreplay.sessionId()")  # the session exists, it is just not recorded
    assert flush(page) is True  # nothing to send
    assert site.received.count() == 0
    context.close()


def test_batches_use_the_site_dictionary_once_it_arrives(browser: Browser, site: Site) -> None:
    words = ("button#dead", "button#grow", "input#phone", "locale", "timezone")
    dictionary = Dictionary(site_key="test-site", id=41, strings=words)
    site.received.dictionary = dictionary.to_json()
    context = browser.new_context(locale="nb-NO", timezone_id="Europe/Oslo")
    page = context.new_page()
    with page.expect_response(lambda r: "/v1/dictionary?" in r.url):
        page.goto(f"{site.url}/checkout")
    page.evaluate("new Promise((r) => setTimeout(r, 50))")  # its JSON is read and taken up
    page.click("#dead")
    page.click("#grow")
    page.click("#phone")
    page.keyboard.type(PHONE)
    page.click("#pay")
    assert flush(page) is True
    assert site.received.dictionary_gets[0] == "/v1/dictionary?site=test-site"

    envelopes = [msgpack.unpackb(b) for b in site.received.bodies]
    v3 = [e for e in envelopes if e[0] == 3]
    assert v3 and all(len(e) == 14 and e[13] == 41 for e in v3)
    assert all(len(e) == 13 and e[0] == 2 for e in envelopes if e[0] != 3)
    for e in v3:  # the dictionary's strings are referred to, never sent
        assert not set(e[7]) & set(words), e[7]
    df = site.received.events([dictionary])
    clicks = [r["target"] for r in rows(df, EventKind.CLICK)]
    assert clicks[:3] == ["button#dead", "button#grow", "input#phone"], clicks
    assert [r["target"] for r in rows(df, EventKind.BLUR)] == ["input#phone"]
    assert all(PHONE not in str(r) for r in df.to_dicts())
    # without the dictionary the version-3 batches are set aside, the rest still decode
    with pytest.raises(DecodeError, match="dictionary 41"):
        decode(list(site.received.bodies))
    report = decode_report(list(site.received.bodies))
    assert len(report.quarantined) == len(v3)
    context.close()


def test_no_dictionary_keeps_version_2(browser: Browser, site: Site) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{site.url}/checkout")
    wait_for(lambda: bool(site.received.dictionary_gets), "the dictionary was asked for")
    page.click("#dead")
    assert flush(page) is True
    assert {msgpack.unpackb(b)[0] for b in site.received.bodies} == {2}
    context.close()
