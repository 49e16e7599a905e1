"""Hand-built sessions for the timeline and replay tests: a checkout where the phone number is
refused, and a hostile session whose strings try to break out of HTML and the terminal."""

from __future__ import annotations

from typing import Any

import polars as pl

from cemreplay.detectors import FINDINGS_SCHEMA
from cemreplay.schema import EVENT_SCHEMA, ClickFlag, EventKind

K = EventKind
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SID = "S-CHECKOUT-1"
VID = "V-42"
BUTTON = int(ClickFlag.INTERACTIVE)
FIELD = int(ClickFlag.INTERACTIVE | ClickFlag.TEXT_INPUT)
PHONE_SHAPE = "+99 9999 999999"


def e(ms: int, kind: EventKind, **slots: Any) -> dict[str, Any]:
    """One event ``ms`` after T0."""
    return {"t": T0 + ms, "kind": int(kind), **slots}


def table(events: list[dict[str, Any]], sid: str = SID, vid: str = VID) -> pl.DataFrame:
    rows = []
    for n, ev in enumerate(events):
        row = {
            "session_id": sid,
            "visitor_id": vid,
            "batch": n // 50,
            "i": n % 50,
            "x": 0,
            "y": 0,
            "a": 0,
            "b": 0,
            "target": None,
            "text": None,
        }
        row.update(ev)
        rows.append(row)
    return pl.DataFrame(rows, schema=EVENT_SCHEMA)


def checkout_events() -> list[dict[str, Any]]:
    cart = [
        e(0, K.PAGE_VIEW, x=1280, y=800, a=1, b=0, target="/cart", text="https://mail.example/"),
        e(5, K.ATTRIBUTE, target="locale", text="en-US"),
        e(5, K.ATTRIBUTE, target="timezone", text="America/New_York"),
        e(5, K.ATTRIBUTE, target="country", text="US"),
        e(5, K.ATTRIBUTE, target="utm_campaign", text="spring-sale"),
        e(10, K.GEOMETRY, x=20, y=10, a=120, b=40, target="a.logo"),
        e(11, K.GEOMETRY, x=520, y=390, a=240, b=48, target="a.checkout-button"),
        e(400, K.MOUSE_MOVE, x=300, y=300),
        e(700, K.MOUSE_MOVE, x=450, y=360),
        e(1000, K.MOUSE_MOVE, x=600, y=400),
        e(1500, K.SCROLL, x=0, y=200, a=2000, b=800),
        e(1800, K.SCROLL, x=0, y=0, a=2000, b=800),
        e(3200, K.CLICK, x=640, y=410, a=BUTTON, b=1, target="a.checkout-button"),
    ]
    checkout = [
        e(3500, K.PAGE_VIEW, x=1280, y=800, a=1, b=1, target="/checkout", text="/cart"),
        e(3510, K.GEOMETRY, x=400, y=200, a=480, b=40, target="input#phone"),
        e(3511, K.GEOMETRY, x=700, y=420, a=200, b=44, target="button#apply-coupon"),
        e(3512, K.GEOMETRY, x=400, y=520, a=480, b=52, target="button#continue"),
        e(3600, K.MILESTONE, a=4990, target="checkout_start"),
        e(5000, K.MOUSE_MOVE, x=620, y=215),
        e(5100, K.CLICK, x=620, y=218, a=FIELD, b=1, target="input#phone"),
        e(5105, K.FOCUS, target="phone"),
        e(9000, K.CHANGE, a=15, target="phone", text=PHONE_SHAPE),
        e(9004, K.BLUR, a=15, target="phone", text=PHONE_SHAPE),
        e(12400, K.CLICK, x=812, y=440, a=BUTTON, b=1, target="button#apply-coupon"),
        e(12600, K.CLICK, x=814, y=441, a=BUTTON, b=2, target="button#apply-coupon"),
        e(12800, K.CLICK, x=811, y=439, a=BUTTON, b=3, target="button#apply-coupon"),
        e(
            13020,
            K.CLICK,
            x=813,
            y=442,
            a=BUTTON | int(ClickFlag.SHIFT),
            b=4,
            target="button#apply-coupon",
        ),
        e(13100, K.NETWORK_FAILURE, a=500, target="/api/coupon", text="POST"),
        e(
            14000,
            K.JS_ERROR,
            target="https://shop.example/app.js:12",
            text="TypeError: coupon is undefined",
        ),
        e(16000, K.CLICK, x=640, y=545, a=BUTTON, b=1, target="button#continue"),
        e(16004, K.SUBMIT, target="form#shipping"),
        e(16010, K.VALIDATION_ERROR, a=0, target="phone", text="Enter a valid US phone number"),
        e(16020, K.FOCUS, target="phone"),
        e(30000, K.PAGE_LEAVE),
    ]
    return cart + checkout


def checkout() -> pl.DataFrame:
    return table(checkout_events())


def findings(rows: list[dict[str, Any]]) -> pl.DataFrame:
    base = {
        "page_view": None,
        "page_url": None,
        "target": None,
        "field": None,
        "severity": 0.5,
        "count": 1,
        "duration_ms": 0,
        "detail": None,
    }
    return pl.DataFrame(
        [{**base, "session_id": SID, "visitor_id": VID, **r} for r in rows], schema=FINDINGS_SCHEMA
    )


def checkout_findings() -> pl.DataFrame:
    return findings(
        [
            {
                "kind": "rage_click",
                "t": T0 + 12400,
                "page_view": 1,
                "page_url": "/checkout",
                "target": "button#apply-coupon",
                "severity": 0.8,
                "count": 4,
                "duration_ms": 620,
                "explanation": "4 clicks in 0.62 s within 3 px on button#apply-coupon",
            },
            {
                "kind": "form_error",
                "t": T0 + 16010,
                "page_view": 1,
                "page_url": "/checkout",
                "field": "phone",
                "severity": 0.5,
                "explanation": f'field phone rejected "{PHONE_SHAPE}" (15 characters typed): '
                '"Enter a valid US phone number"',
            },
        ]
    )


#: Strings that try to run script if a renderer ever builds HTML from session data.
XSS_IMG = "<img src=x onerror=window.__xss=1>"
XSS_SCRIPT = "</script><script>window.__xss=2</script>"
XSS_SID = "S-XSS"


def hostile() -> tuple[pl.DataFrame, pl.DataFrame]:
    """A session whose selector, URL, messages and finding text are markup."""
    events = [
        e(0, K.PAGE_VIEW, x=1024, y=700, a=1, target=f"/p?{XSS_SCRIPT}", text=XSS_IMG),
        e(1, K.ATTRIBUTE, target="locale", text=XSS_SCRIPT),
        e(2, K.GEOMETRY, x=100, y=100, a=300, b=60, target=XSS_IMG),
        e(3, K.GEOMETRY, x=100, y=200, a=300, b=60, target=XSS_SCRIPT),
        e(500, K.MOUSE_MOVE, x=200, y=130),
        e(1000, K.CLICK, x=200, y=130, a=BUTTON, b=1, target=XSS_IMG),
        e(1200, K.FOCUS, target=XSS_SCRIPT),
        e(1500, K.CHANGE, a=3, target=XSS_SCRIPT, text=XSS_IMG),
        e(2000, K.VALIDATION_ERROR, target=XSS_SCRIPT, text=XSS_IMG),
        e(2500, K.JS_ERROR, target=XSS_IMG, text=XSS_SCRIPT + "\u2028" + "&amp;"),
        e(3000, K.NETWORK_FAILURE, a=0, target=XSS_IMG, text="GET"),
        e(3500, K.PAGE_VIEW, x=1024, y=700, a=1, b=1, target=XSS_IMG, text=XSS_SCRIPT),
        e(6000, K.PAGE_LEAVE),
    ]
    found = findings(
        [
            {
                "kind": XSS_IMG,
                "t": T0 + 1000,
                "page_view": 0,
                "target": XSS_IMG,
                "explanation": XSS_SCRIPT,
                "detail": XSS_IMG,
            },
            {
                "kind": "rage_click",
                "t": T0 + 2000,
                "page_view": 0,
                "target": XSS_SCRIPT,
                "explanation": XSS_IMG,
            },
        ]
    ).with_columns(session_id=pl.lit(XSS_SID))
    return table(events, sid=XSS_SID), found
