"""The HTML replay in headless chromium: what a support rep sees and can do, and that session
data can neither run script nor reach the network."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cemreplay.replay import render_html
from tests.browser_support import MARKS, launch
from tests.session_tables import (
    PHONE_SHAPE,
    SID,
    XSS_IMG,
    XSS_SCRIPT,
    XSS_SID,
    checkout,
    checkout_findings,
    hostile,
)

pytestmark = MARKS


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launch() as b:
        yield b


class Opened:
    """A replay open in a page, with every request and script error recorded."""

    def __init__(self, browser: Any, html: str, where: Path) -> None:
        self.requests: list[str] = []
        self.errors: list[str] = []
        path = where / "replay.html"
        path.write_text(html, encoding="utf-8")
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.page.route("**/*", self._route)
        self.page.on("request", lambda r: self._saw(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.goto(path.as_uri())
        self.page.wait_for_selector("#findings li")

    def _saw(self, url: str) -> None:
        if not url.startswith("file://"):
            self.requests.append(url)

    def _route(self, route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            self.requests.append(route.request.url)
            route.abort()

    def seek(self, ms: int) -> None:
        self.page.eval_on_selector(
            "#scrub", "(s, v) => { s.value = v; s.dispatchEvent(new Event('input')); }", str(ms)
        )

    def text(self, selector: str) -> str:
        return str(self.page.text_content(selector))

    def texts(self, selector: str) -> list[str]:
        return [
            str(t)
            for t in self.page.eval_on_selector_all(selector, "ns => ns.map(n => n.textContent)")
        ]

    def until(self, script: str, timeout_s: float = 10.0) -> None:
        """Poll ``script`` (an expression) until truthy. wait_for_function would need eval,
        which the replay's Content-Security-Policy rightly refuses."""
        deadline = time.monotonic() + timeout_s
        while not self.page.evaluate(f"() => Boolean({script})"):
            assert time.monotonic() < deadline, f"timed out waiting for {script}"
            self.page.wait_for_timeout(50)

    def scrub(self) -> int:
        return int(self.page.eval_on_selector("#scrub", "s => s.value"))


@pytest.fixture
def rep(browser: Any, tmp_path: Path) -> Iterator[Opened]:
    html = render_html(checkout(), checkout_findings(), session_id=SID, score=9.5)
    opened = Opened(browser, html, tmp_path)
    yield opened
    assert opened.requests == [], "the replay must not touch the network"
    assert opened.errors == []
    opened.page.close()


def test_header_and_findings_panel(rep: Opened) -> None:
    who = rep.text("#who")
    assert f"Session {SID}" in who and "V-42" in who and "struggle score 9.5" in who
    assert "desktop 1280×800" in who and "utm_campaign: spring-sale" in who
    kinds = rep.page.eval_on_selector_all("#findings li", "ns => ns.map(n => n.dataset.kind)")
    assert kinds == ["rage_click", "form_error"]
    items = rep.texts("#findings li")
    assert "4 clicks in 0.62 s" in items[0] and "00:12.4" in items[0]
    assert "Enter a valid US phone number" in items[1]


def test_timeline_has_markers(rep: Opened) -> None:
    markers = rep.page.eval_on_selector_all(
        "#markers .marker", "ns => ns.map(n => [n.dataset.kind, n.style.left])"
    )
    assert [k for k, _ in markers] == ["rage_click", "form_error"]
    assert float(markers[0][1].rstrip("%")) == pytest.approx(100 * 12_400 / 30_000)
    assert rep.page.locator("#markers .tick").count() >= 2  # page changes, errors
    assert rep.page.eval_on_selector("#scrub", "s => s.max") == "30000"


def test_play_advances_and_pause_stops(rep: Opened) -> None:
    rep.page.uncheck("#skip")
    assert rep.text("#time") == "00:00.0 / 00:30.0"
    rep.page.click("#play")
    assert rep.text("#play") == "Pause"
    rep.until("document.getElementById('scrub').value > 600")
    rep.page.click("#play")
    assert rep.text("#play") == "Play"
    stopped = rep.scrub()
    assert rep.text("#time") != "00:00.0 / 00:30.0"
    rep.page.wait_for_timeout(400)
    assert rep.scrub() == stopped


def test_speed_and_skipping_inactivity(rep: Opened) -> None:
    def advance(ms: int) -> tuple[int, float]:
        start = rep.scrub()
        t0 = rep.page.evaluate("performance.now()")
        rep.page.click("#play")
        rep.page.wait_for_timeout(ms)
        rep.page.click("#play")
        return rep.scrub() - start, rep.page.evaluate("performance.now()") - t0

    rep.page.uncheck("#skip")
    rep.page.select_option("#speed", "8")
    moved, wall = advance(700)
    assert moved > 2.5 * wall  # 8x, with room for a slow machine
    # nothing happens between 16.02 s and 30 s: skipping jumps to 0.5 s before the end
    rep.page.select_option("#speed", "1")
    rep.page.check("#skip")
    rep.seek(16_100)
    rep.page.click("#play")
    rep.until("document.getElementById('scrub').value >= 29000")
    assert "inactivity" in rep.text("#notice") or rep.scrub() == 30_000


def test_clicking_a_finding_jumps_the_scrubber(rep: Opened) -> None:
    rep.page.click("#findings li[data-kind=form_error]")
    assert rep.scrub() == 16_010 - 1000
    assert rep.text("#time").startswith("00:15.0")
    rep.page.click("#markers .marker[data-kind=rage_click]")
    assert rep.scrub() == 12_400 - 1000
    assert "active" in str(rep.page.get_attribute("#findings li[data-kind=rage_click]", "class"))


def test_the_stage_follows_the_session(rep: Opened) -> None:
    rep.seek(1000)
    assert rep.text("#url") == "/cart" and rep.text("#page-n") == "page 1/2"
    assert "a.checkout-button" in rep.texts("#doc .box .sel")
    rep.seek(16_500)
    assert rep.text("#url") == "/checkout" and rep.text("#page-n") == "page 2/2"
    phone = rep.page.locator("#doc .box.field.invalid")
    assert phone.count() == 1
    assert phone.locator(".sel").text_content() == "input#phone"
    assert PHONE_SHAPE in str(phone.locator(".shape").text_content())
    assert "Enter a valid US phone number" in rep.texts("#doc .errmsg")
    toasts = " ".join(rep.texts("#toasts li"))
    assert "struggle: form_error" in toasts and "invalid" in toasts
    rep.seek(12_500)  # a click 0.1 s ago: a ripple and the cursor at the button
    assert rep.page.locator("#doc .ripple.rage").count() == 1
    assert rep.page.locator("#doc .box.hit .sel").text_content() == "button#apply-coupon"
    rep.seek(29_999)
    rep.seek(30_000)
    assert rep.text("#overlay") == "The visitor left the page"


def test_screenshot_is_not_blank(rep: Opened, tmp_path: Path) -> None:
    rep.seek(16_500)
    shot = tmp_path / "replay.png"
    rep.page.screenshot(path=str(shot))
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    image = pytest.importorskip("PIL.Image")
    with image.open(shot) as im:
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50


def test_hostile_session_renders_as_text(browser: Any, tmp_path: Path) -> None:
    events, found = hostile()
    opened = Opened(browser, render_html(events, found, session_id=XSS_SID, title=XSS_SCRIPT),
                    tmp_path)  # fmt: skip
    page = opened.page
    assert page.title() == XSS_SCRIPT
    for ms in range(0, 6001, 250):  # every moment: boxes, toasts, fields, errors, pages
        opened.seek(ms)
        assert page.evaluate("typeof window.__xss") == "undefined"
        assert page.evaluate("document.images.length") == 0
        assert page.evaluate("document.scripts.length") == 2
    opened.seek(100)
    assert opened.text("#url") == f"/p?{XSS_SCRIPT}"
    assert XSS_IMG in opened.texts("#doc .box .sel") and XSS_SCRIPT in opened.texts(
        "#doc .box .sel"
    )
    assert opened.texts("#findings li .kind")[0] == XSS_IMG
    assert XSS_SCRIPT in opened.texts("#findings li .expl")
    opened.seek(2100)
    assert any(XSS_IMG in t for t in opened.texts("#toasts li"))
    opened.seek(4000)
    assert opened.text("#url") == XSS_IMG
    page.select_option("#speed", "8")
    page.click("#play")
    opened.until("document.getElementById('play').textContent === 'Play'")
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert "locale: " + XSS_SCRIPT in opened.texts("#who .chip")
    assert opened.requests == [] and opened.errors == []
    page.close()


def test_sparse_session_plays_without_errors(browser: Any, tmp_path: Path) -> None:
    """No page view, no geometry, no findings: still a working player, nothing thrown."""
    import polars as pl

    from tests.session_tables import K, e, table

    events = table([e(0, K.CLICK, x=10, y=20, target="b"), e(900, K.JS_ERROR, text="boom")])
    opened = Opened(browser, render_html(events, pl.DataFrame(), session_id=SID), tmp_path)
    assert opened.texts("#findings li") == ["No struggle found in this session."]
    assert opened.text("#url") == "(unknown URL)"
    opened.page.click("#play")
    opened.until("document.getElementById('play').textContent === 'Play'")
    assert opened.text("#time") == "00:00.9 / 00:00.9"
    assert opened.requests == [] and opened.errors == []
    opened.page.close()
