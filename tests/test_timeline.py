"""The support rep's timeline: JSON content and the terminal text for one session."""

from __future__ import annotations

import json
import re

import polars as pl
import pytest

from cemreplay import timeline
from cemreplay.detectors import FINDINGS_SCHEMA
from cemreplay.errors import CemReplayError, SessionNotFoundError
from cemreplay.schema import EventKind
from tests.session_tables import (
    PHONE_SHAPE,
    SID,
    VID,
    checkout,
    checkout_events,
    checkout_findings,
    e,
    table,
)

ANSI = re.compile(r"\x1b\[")


@pytest.fixture(scope="module")
def data() -> dict:
    return timeline.to_json(checkout(), checkout_findings(), session_id=SID)


@pytest.fixture(scope="module")
def text() -> str:
    return timeline.render_text(checkout(), checkout_findings(), session_id=SID)


def kinds(data: dict, kind: str) -> list[dict]:
    return [ev for ev in data["events"] if ev["kind"] == kind]


# ------------------------------------------------------------------------------------ JSON


def test_json_is_plain_json(data: dict) -> None:
    assert json.loads(json.dumps(data)) == data


def test_json_who(data: dict) -> None:
    assert data["session_id"] == SID
    assert data["visitor_id"] == VID
    assert data["segments"] == {
        "locale": "en-US",
        "timezone": "America/New_York",
        "country": "US",
        "utm_campaign": "spring-sale",
    }
    assert data["device_class"] == "desktop"
    assert data["viewport"] == {"width": 1280, "height": 800}
    assert data["start"] == "2026-01-01T00:00:00.000Z"
    assert data["end"] == "2026-01-01T00:00:30.000Z"
    assert data["start_local"] == "2025-12-31T19:00:00-05:00"
    assert data["duration_ms"] == 30_000
    assert data["counts"] == {"events": 34, "pages": 2, "clicks": 7, "findings": 2}


def test_json_pages_in_order_with_times_and_dwell(data: dict) -> None:
    pages = data["pages"]
    assert [p["url"] for p in pages] == ["/cart", "/checkout"]
    assert [p["offset_ms"] for p in pages] == [0, 3500]
    assert [p["t"] for p in pages] == ["2026-01-01T00:00:00.000Z", "2026-01-01T00:00:03.500Z"]
    assert [p["dwell_ms"] for p in pages] == [3500, 26_500]
    assert [p["navigation"] for p in pages] == ["load", "push"]
    assert pages[0]["referrer"] == "https://mail.example/"
    assert [p["mouse_moves"] for p in pages] == [3, 1]
    assert pages[0]["scrolls"] == 2
    assert pages[0]["max_scroll_depth_pct"] == 50  # (200 + 800) / 2000
    assert pages[1]["left"] is True


def test_json_clicks_with_selector_and_position(data: dict) -> None:
    clicks = kinds(data, "click")
    assert [(c["selector"], c["x"], c["y"]) for c in clicks] == [
        ("a.checkout-button", 640, 410),
        ("input#phone", 620, 218),
        *[
            ("button#apply-coupon", x, y)
            for x, y in [(812, 440), (814, 441), (811, 439), (813, 442)]
        ],
        ("button#continue", 640, 545),
    ]
    assert clicks[0]["offset_ms"] == 3200
    assert clicks[0]["t"] == "2026-01-01T00:00:03.200Z"
    assert clicks[0]["page_view"] == 0 and clicks[1]["page_view"] == 1
    assert clicks[5]["modifiers"] == ["shift"] and clicks[0]["modifiers"] == []
    assert all(c["button"] == "left" and c["interactive"] for c in clicks)


def test_json_fields_carry_length_and_shape_never_a_value(data: dict) -> None:
    (change,) = kinds(data, "change")
    assert change == {
        "kind": "change",
        "t": "2026-01-01T00:00:09.000Z",
        "offset_ms": 9000,
        "page_view": 1,
        "field": "phone",
        "length": 15,
        "shape": PHONE_SHAPE,
    }
    assert [f["field"] for f in kinds(data, "focus")] == ["phone", "phone"]
    for ev in data["events"]:
        if "field" in ev:
            assert set(ev) <= {
                "kind",
                "t",
                "offset_ms",
                "page_view",
                "field",
                "length",
                "shape",
                "message",
                "source",
            }


def test_json_validation_error_has_message_and_shape_typed(data: dict) -> None:
    (err,) = kinds(data, "validation_error")
    assert err["field"] == "phone"
    assert err["message"] == "Enter a valid US phone number"
    assert err["shape"] == PHONE_SHAPE and err["length"] == 15
    assert err["source"] == "native"
    assert err["offset_ms"] == 16_010


def test_json_errors_milestones_submits(data: dict) -> None:
    (js,) = kinds(data, "js_error")
    assert js["message"] == "TypeError: coupon is undefined"
    assert js["source"] == "https://shop.example/app.js:12"
    (net,) = kinds(data, "network_failure")
    assert (net["method"], net["url"], net["status"]) == ("POST", "/api/coupon", 500)
    (ms,) = kinds(data, "milestone")
    assert (ms["name"], ms["value"]) == ("checkout_start", 4990)
    (sub,) = kinds(data, "submit")
    assert sub["form"] == "form#shipping"


def test_json_summarises_moves_and_scrolls(data: dict) -> None:
    listed = {ev["kind"] for ev in data["events"]}
    assert not listed & {"mouse_move", "scroll", "geometry", "attribute", "page_view"}
    (run,) = kinds(data, "activity")
    assert run["scrolls"] == 2
    assert (run["offset_ms"], run["until_offset_ms"]) == (1500, 1800)
    assert (run["max_y"], run["to_y"], run["depth_pct"]) == (200, 0, 50)


def test_json_events_in_time_order(data: dict) -> None:
    offsets = [ev["offset_ms"] for ev in data["events"]]
    assert offsets == sorted(offsets)


def test_json_findings_with_explanations(data: dict) -> None:
    got = [(f["kind"], f["offset_ms"], f["page_view"]) for f in data["findings"]]
    assert got == [("rage_click", 12_400, 1), ("form_error", 16_010, 1)]
    assert data["findings"][0]["explanation"].startswith("4 clicks in 0.62 s")
    assert data["findings"][0]["t"] == "2026-01-01T00:00:12.400Z"
    assert data["score"] is None


def test_json_score_from_argument_or_column() -> None:
    f = checkout_findings()
    assert timeline.to_json(checkout(), f, session_id=SID, score=7.5)["score"] == 7.5
    scored = f.with_columns(score=pl.lit(4.25))
    assert timeline.to_json(checkout(), scored, session_id=SID)["score"] == 4.25


def test_findings_of_other_sessions_are_ignored() -> None:
    other = checkout_findings().with_columns(session_id=pl.lit("someone-else"))
    both = pl.concat([checkout_findings(), other])
    got = timeline.to_json(checkout(), both, session_id=SID)["findings"]
    assert len(got) == 2


@pytest.mark.parametrize("empty", [pl.DataFrame(), pl.DataFrame(schema=FINDINGS_SCHEMA)])
def test_no_findings(empty: pl.DataFrame) -> None:
    data = timeline.to_json(checkout(), empty, session_id=SID)
    assert data["findings"] == [] and data["counts"]["findings"] == 0
    text = timeline.render_text(checkout(), empty, session_id=SID)
    assert "!!" not in text
    assert "0 finding(s): none" in text


def test_only_the_asked_session_is_read() -> None:
    other = table([e(0, EventKind.PAGE_VIEW, target="/elsewhere")], sid="S-OTHER")
    both = pl.concat([other, checkout()])
    data = timeline.to_json(both, checkout_findings(), session_id=SID)
    assert [p["url"] for p in data["pages"]] == ["/cart", "/checkout"]


def test_recording_order_not_row_order() -> None:
    shuffled = checkout().sample(fraction=1.0, shuffle=True, seed=7)
    assert timeline.to_json(shuffled, checkout_findings(), session_id=SID) == timeline.to_json(
        checkout(), checkout_findings(), session_id=SID
    )


def test_events_before_the_first_page_view() -> None:
    rows = [e(0, EventKind.JS_ERROR, target="boot.js", text="early"), *checkout_events()[:3]]
    data = timeline.to_json(table(rows), pl.DataFrame(), session_id=SID)
    assert kinds(data, "js_error")[0]["page_view"] == 0
    assert data["pages"][0]["url"] == "/cart"


# ------------------------------------------------------------------------------------ text


def test_text_header(text: str) -> None:
    head = text[: text.index("\n-- page")]
    assert f"Session {SID}" in head and f"visitor {VID}" in head
    assert "2026-01-01 00:00:00 UTC (19:00:00 local, America/New_York)" in head
    assert "desktop, viewport 1280x800" in head
    assert "locale en-US" in head and "utm_campaign spring-sale" in head
    assert "lasted 30.0 s" in head
    assert "2 finding(s): rage_click, form_error" in head
    assert "score" not in head


def test_text_score_when_given() -> None:
    text = timeline.render_text(checkout(), checkout_findings(), session_id=SID, score=12.5)
    assert "score 12.5" in text


def test_text_event_lines(text: str) -> None:
    lines = text.splitlines()
    assert "  +00:03.2  click      a.checkout-button (640, 410)" in lines
    assert "  +00:12.4  click      button#apply-coupon (812, 440)" in lines
    assert "  +00:13.0  click      button#apply-coupon (813, 442) shift" in lines
    assert "  +00:03.6  milestone  checkout_start (value 4990)" in lines
    assert "  +00:05.1  focus      phone" in lines
    assert f'  +00:09.0  typed      phone  "{PHONE_SHAPE}" (15 chars)' in lines
    assert "  +00:13.1  failed req POST /api/coupon -> 500" in lines
    assert "  +00:16.0  submit     form#shipping" in lines
    assert (
        "  +00:01.5  scroll     2x over 0.3 s, down to y=200 and back up to y=0 "
        "(50% of the page seen)"
    ) in lines
    at = text.index("  +00:16.0  invalid")
    invalid = " ".join(text[at : text.index("\n  +", at)].split())  # the line and its wrap
    assert invalid == (
        f'+00:16.0 invalid phone: "Enter a valid US phone number" typed "{PHONE_SHAPE}" '
        "(15 chars) [native]"
    )


def test_text_groups_lines_under_pages_in_order(text: str) -> None:
    cart = text.index("-- page 1/2  /cart  at +00:00.0, 3.5 s on page")
    checkout_at = text.index("-- page 2/2  /checkout  at +00:03.5, 26.5 s on page")
    assert cart < text.index("a.checkout-button (640") < checkout_at < text.index("input#phone (")
    assert "3 mouse moves, scrolled to 50% of the page" in text[cart:checkout_at]
    assert "from /cart, by push, 1 mouse move\n" in text
    times = [ln.split()[0] for ln in text.splitlines() if ln.startswith("  +")]
    assert times == sorted(times)


def test_text_findings_inline_at_their_time(text: str) -> None:
    lines = text.splitlines()
    rage = next(i for i, ln in enumerate(lines) if "!! rage_click" in ln)
    assert lines[rage].startswith("  +00:12.4  !! rage_click  4 clicks in 0.62 s")
    assert "(812, 440)" in lines[rage - 1]  # right after the click it rests on
    assert "(814, 441)" in lines[rage + 1]
    form = next(ln for ln in lines if "!! form_error" in ln)
    assert form.startswith("  +00:16.0  !! form_error  field phone rejected")


def test_text_summarises_moves_and_repeated_blur(text: str) -> None:
    assert "mouse_move" not in text and "mouse move " not in text
    assert " blur " not in text  # blur right after the same shape was typed says nothing new
    assert text.count(PHONE_SHAPE) >= 2  # typed, and the form_error / invalid lines


def test_text_no_colour_by_default(text: str) -> None:
    assert not ANSI.search(text)
    coloured = timeline.render_text(checkout(), checkout_findings(), session_id=SID, color=True)
    assert ANSI.search(coloured)
    assert ANSI.sub("", re.sub(r"\x1b\[[0-9;]*m", "", coloured)) == text


def test_text_respects_width(text: str) -> None:
    for width in (60, 100):
        out = timeline.render_text(checkout(), checkout_findings(), session_id=SID, width=width)
        assert max(len(ln) for ln in out.splitlines()) <= width


def test_text_escapes_terminal_control_characters() -> None:
    rows = checkout_events()
    rows.append(e(20_000, EventKind.JS_ERROR, target="x.js", text="boom\x1b[2J\x1b]0;pwned\x07\r"))
    out = timeline.render_text(table(rows), pl.DataFrame(), session_id=SID)
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "boom\\x1b[2J" in out


def test_unknown_session_raises_with_a_hint() -> None:
    for fn in (timeline.to_json, timeline.render_text):
        with pytest.raises(SessionNotFoundError) as err:
            fn(checkout(), checkout_findings(), session_id="s-checkout-1 ")
        assert isinstance(err.value, CemReplayError) and isinstance(err.value, KeyError)
        msg = str(err.value)
        assert "no events for session 's-checkout-1 '" in msg
        assert f"hint: did you mean {SID}?" in msg
    with pytest.raises(SessionNotFoundError, match="hint: check the id"):
        timeline.render_text(checkout(), pl.DataFrame(), session_id="nothing-like-it-at-all")


# ------------------------------------------------------------------------------- synthetic


@pytest.mark.slow
def test_synthetic_sessions() -> None:
    synth = pytest.importorskip("cemreplay.synth")
    from cemreplay.detectors import detect

    traffic = synth.generate(sessions=12, seed=5)
    events = traffic.events
    found = detect(events)
    ids = events.get_column("session_id").unique().cast(pl.String).sort().to_list()
    struggled = set(found.get_column("session_id").to_list())
    assert struggled, "synthetic traffic should hold some struggle"
    for sid in ids:
        one = events.filter(pl.col("session_id").cast(pl.String) == sid)
        # (how fast a lookup is, is benchmarks/cli_lookup.py's to say, not a unit test's)
        data = timeline.to_json(events, found, session_id=sid)
        text = timeline.render_text(events, found, session_id=sid)
        json.dumps(data)
        assert len(data["pages"]) == one.filter(pl.col("kind") == EventKind.PAGE_VIEW).height
        want = found.filter(pl.col("session_id") == sid).get_column("kind").to_list()
        assert [f["kind"] for f in data["findings"]] == want
        assert text.count("\n  +") >= 1 and text.count("-- page ") == len(data["pages"])
        for kind in want:
            assert f"!! {kind}" in text
        typed = one.filter(pl.col("kind") == EventKind.CHANGE).get_column("text").cast(pl.String)
        for shape in typed.drop_nulls().to_list():
            assert shape in text
