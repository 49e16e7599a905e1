"""The HTML replay without a browser: one self-contained file, data that cannot escape its tag.

What the page does when played is checked in headless chromium (test_replay_browser.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

import polars as pl
import pytest

from cemreplay.errors import SessionNotFoundError
from cemreplay.replay import render_html, script_json
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

DATA = re.compile(r'<script type="application/json" id="session-data">(.*?)</script>', re.S)


def embedded(page: str) -> dict:
    (raw,) = DATA.findall(page)
    return json.loads(raw)


def test_script_json_escapes_what_could_close_the_tag() -> None:
    value = {"s": "</script><!-- <![CDATA[ & \u2028\u2029 é"}
    text = script_json(value)
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in text
    assert json.loads(text) == value
    with pytest.raises(ValueError):
        script_json({"x": float("nan")})


def test_one_self_contained_file() -> None:
    page = render_html(checkout(), checkout_findings(), session_id=SID)
    assert page.startswith("<!doctype html>")
    # nothing to fetch: no src/href attributes, no stylesheet or script links, no imports
    assert not re.search(r"\s(src|href)\s*=", page, re.I)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert page.count("<script") == 2 and page.count("<style>") == 1
    data = embedded(page)
    assert [p["url"] for p in data["pages"]] == ["/cart", "/checkout"]
    assert [f["kind"] for f in data["findings"]] == ["rage_click", "form_error"]
    assert data["moves"][0] == [400, 300, 300, 0]
    assert data["boxes"][1][5] == "a.checkout-button"
    assert PHONE_SHAPE in json.dumps(data)


def test_player_never_uses_html_sinks() -> None:
    page = render_html(checkout(), checkout_findings(), session_id=SID)
    js = page.split("<script>")[1].split("</script>")[0]
    code = "\n".join(ln for ln in js.splitlines() if not ln.lstrip().startswith("//"))
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "setTimeout(\"", "srcdoc"):  # fmt: skip
        assert sink not in code


def test_csp_admits_only_the_inlined_player() -> None:
    page = render_html(checkout(), checkout_findings(), session_id=SID)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp is not None
    policy = csp.group(1)
    assert "default-src 'none'" in policy and "connect-src 'none'" in policy
    js = page.split("<script>")[1].split("</script>")[0]
    css = page.split("<style>")[1].split("</style>")[0]
    for text in (js, css):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert "unsafe-inline" not in policy


def test_hostile_strings_stay_inside_the_data() -> None:
    events, found = hostile()
    page = render_html(events, found, session_id=XSS_SID, title=XSS_IMG)
    assert XSS_IMG not in page and XSS_SCRIPT not in page
    assert "<title>&lt;img src=x onerror=window.__xss=1&gt;</title>" in page
    assert page.count("</script>") == 2
    data = embedded(page)
    assert data["pages"][0]["url"] == f"/p?{XSS_SCRIPT}"
    assert data["findings"][0]["kind"] == XSS_IMG
    assert data["boxes"][0][5] == XSS_IMG


def test_default_title_and_unknown_session() -> None:
    page = render_html(checkout(), pl.DataFrame(), session_id=SID)
    assert f"<title>Session {SID}</title>" in page
    assert embedded(page)["findings"] == []
    with pytest.raises(SessionNotFoundError, match="hint"):
        render_html(checkout(), pl.DataFrame(), session_id="nope")
