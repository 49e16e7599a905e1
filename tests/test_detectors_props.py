"""Property tests: every detector equals its naive reference on generated event streams."""

from __future__ import annotations

from typing import Any

import polars as pl
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from cemreplay.detectors import (
    Config,
    ExcessiveScrollConfig,
    FailedSubmitConfig,
    QuickBackConfig,
    detect,
)
from cemreplay.detectors._parallel import threads
from cemreplay.schema import EVENT_SCHEMA, ClickFlag, EventKind
from tests.naive import detectors as naive

K = EventKind
URLS = [
    "/cart",
    "/checkout",
    "/checkout/payment",
    "/confirmation",
    "/home",
    "https://shop.test/cart/?a=1",
    "/p/1",
    None,
]
TARGETS = ["button#a", "button#b", "div.qty-plus", "a#next", "p.text", None]
FIELDS = ["email", "phone", None]
FLAGS = [
    0,
    int(ClickFlag.INTERACTIVE),
    int(ClickFlag.INTERACTIVE | ClickFlag.LINK),
    int(ClickFlag.INTERACTIVE | ClickFlag.TEXT_INPUT),
    int(ClickFlag.INTERACTIVE | ClickFlag.CTRL),
    int(ClickFlag.INTERACTIVE | ClickFlag.NEW_CONTEXT),
    int(ClickFlag.NO_RAGE),
    int(ClickFlag.UNKNOWN_ELEMENT),
    1,
    2,
]
KINDS = [
    K.PAGE_VIEW,
    K.CLICK,
    K.CLICK,
    K.CLICK,
    K.MOUSE_MOVE,
    K.MOUSE_MOVE,
    K.SCROLL,
    K.SCROLL,
    K.FOCUS,
    K.BLUR,
    K.CHANGE,
    K.SUBMIT,
    K.VALIDATION_ERROR,
    K.JS_ERROR,
    K.NETWORK_FAILURE,
    K.MUTATION,
    K.REQUEST,
    K.MILESTONE,
    K.PAGE_LEAVE,
]


@st.composite
def event(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(KINDS))
    dt = draw(st.sampled_from([0, 0, 10, 40, 120, 300, 700, 1100, 2600, 6000, -5]))
    row: dict[str, Any] = {
        "kind": int(kind),
        "dt": dt,
        "x": 0,
        "y": 0,
        "a": 0,
        "b": 0,
        "target": None,
        "text": None,
    }
    if kind == K.PAGE_VIEW:
        row["target"] = draw(st.sampled_from(URLS))
    elif kind == K.CLICK:
        row.update(
            target=draw(st.sampled_from(TARGETS)),
            a=draw(st.sampled_from(FLAGS)),
            b=draw(st.integers(1, 4)),
            x=draw(st.sampled_from([100, 105, 140])),
            y=draw(st.sampled_from([100, 110])),
        )
    elif kind in (K.MOUSE_MOVE, K.SCROLL):
        row.update(
            x=draw(st.sampled_from([0, 40, 80, 300])), y=draw(st.sampled_from([0, 30, 60, 500]))
        )
    elif kind in (K.FOCUS, K.BLUR, K.CHANGE, K.VALIDATION_ERROR):
        row.update(
            target=draw(st.sampled_from(FIELDS)),
            text=draw(st.sampled_from(["99", "aaa", None])),
            a=draw(st.integers(0, 3)),
        )
    elif kind == K.NETWORK_FAILURE:
        row.update(a=draw(st.sampled_from([0, 200, 404, 500])), target="/api", text="POST")
    elif kind in (K.SUBMIT, K.MILESTONE):
        row["target"] = draw(st.sampled_from(["form#f", "order_placed"]))
    elif kind == K.JS_ERROR:
        row.update(target="app.js", text="boom")
    return row


@st.composite
def macro(draw: Any) -> list[dict[str, Any]]:
    """A few events that together come near a detector's threshold."""
    base = {"x": 0, "y": 0, "a": 0, "b": 0, "target": None, "text": None}
    which = draw(st.sampled_from(["burst", "shake", "scroll", "refill", "back", "dead"]))
    n = draw(st.integers(2, 6))
    gap = draw(st.sampled_from([0, 100, 300, 900, 1200]))
    if which == "burst":
        tgt = draw(st.sampled_from(TARGETS))
        a = draw(st.sampled_from(FLAGS))
        return [
            {
                **base,
                "kind": int(K.CLICK),
                "dt": gap,
                "target": tgt,
                "a": a,
                "b": k + 1,
                "x": 100 + draw(st.sampled_from([0, 5, 40])),
                "y": 100,
            }
            for k in range(n)
        ]
    if which == "shake":
        return [
            {
                **base,
                "kind": int(K.MOUSE_MOVE),
                "dt": draw(st.sampled_from([50, 60, 400])),
                "x": 300 + (40 if k % 2 else 0),
                "y": 200 + draw(st.sampled_from([0, 25])),
            }
            for k in range(2 * n)
        ]
    if which == "scroll":
        return [
            {
                **base,
                "kind": int(K.SCROLL),
                "dt": gap,
                "y": 500 * (k % 2) + draw(st.sampled_from([0, 0, 100])),
            }
            for k in range(2 * n)
        ]
    if which == "refill":
        f = draw(st.sampled_from(FIELDS))
        kinds = [K.FOCUS, K.CHANGE, K.BLUR, K.FOCUS, K.CHANGE, K.CHANGE, K.BLUR]
        return [
            {**base, "kind": int(k), "dt": gap, "target": f, "text": "99", "a": 2}
            for k in kinds[: n + 1]
        ]
    if which == "dead":
        return [
            {**base, "kind": int(K.MUTATION), "dt": gap},
            {
                **base,
                "kind": int(K.CLICK),
                "dt": draw(st.sampled_from([-60, -20, 0, 500])),
                "target": draw(st.sampled_from(TARGETS)),
                "a": draw(st.sampled_from(FLAGS)),
                "b": 1,
            },
            {
                **base,
                "kind": int(draw(st.sampled_from([K.MUTATION, K.MILESTONE]))),
                "dt": draw(st.sampled_from([2999, 3000, 3001, 5000])),
            },
        ]
    urls = draw(st.permutations(["/home", "/p/1", "/cart"]))
    return [
        {
            **base,
            "kind": int(K.PAGE_VIEW),
            "dt": draw(st.sampled_from([500, 3000, 9000])),
            "target": urls[k % 2],
        }
        for k in range(n)
    ]


@st.composite
def tables(draw: Any) -> pl.DataFrame:
    n_sessions = draw(st.integers(0, 4))
    rows = []
    for s in range(n_sessions):
        parts = draw(st.lists(st.one_of(event().map(lambda e: [e]), macro()), max_size=12))
        evs = [e for part in parts for e in part]
        t = 1_000_000 + s
        for n, ev in enumerate(evs):
            t = max(0, t + ev.pop("dt"))
            rows.append(
                {
                    "session_id": f"s{s % 3}" if s < 3 else "a-last",
                    "visitor_id": f"v{s % 2}",
                    "t": t,
                    "batch": n // 7,
                    "i": n % 7,
                    **ev,
                }
            )
    # Shuffle sessions' order of appearance (not canonical) sometimes.
    if rows and draw(st.booleans()):
        rows = list(reversed(rows))
    return pl.DataFrame(rows, schema=EVENT_SCHEMA) if rows else pl.DataFrame(schema=EVENT_SCHEMA)


CONFIGS = [
    Config(),
    Config(
        excessive_scroll=ExcessiveScrollConfig(
            min_reversals=1, min_baseline_views=2, fallback_reversals=2, multiplier=1.5
        ),
        quick_back=QuickBackConfig(min_baseline_views=2, baseline_ratio=0.9),
        # only this milestone is a success ("form#f" is not)
        failed_submit=FailedSubmitConfig(success_milestones=("order_placed",)),
    ),
]

COLS = ["session_id", "kind", "t", "page_view", "target", "field", "count", "duration_ms", "detail"]


def _early_next_page() -> pl.DataFrame:
    """Found by hypothesis: batch 1's events stamped before its PAGE_VIEW, so in time order
    a scroll of page view 1 falls between the last two scrolls of page view 0."""
    scrolls = [(1_000_000 + 100 * k, 0, k, int(K.SCROLL), 500 * ((k + 1) % 2)) for k in range(1, 7)]
    rows = [
        (1_000_000, 0, 0, int(K.PAGE_VIEW), 0),
        *scrolls,
        (1_000_600, 1, 0, int(K.PAGE_VIEW), 0),
        (1_000_595, 1, 1, int(K.MOUSE_MOVE), 0),
        (1_000_595, 1, 2, int(K.SCROLL), 0),
    ]
    return pl.DataFrame(
        [
            {
                "session_id": "s0",
                "visitor_id": "v0",
                "t": t,
                "batch": b,
                "i": i,
                "kind": k,
                "x": 0,
                "y": y,
                "a": 0,
                "b": 0,
                "target": "/cart" if k == K.PAGE_VIEW else None,
            }
            for t, b, i, k, y in rows
        ],
        schema=EVENT_SCHEMA,
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.sampled_from(CONFIGS))
@example(_early_next_page(), CONFIGS[1])
def test_detect_matches_naive(events: pl.DataFrame, config: Config) -> None:
    got = detect(events, config)
    want = naive.findings(events.to_dicts(), config)
    have = {tuple(r) for r in got.select(COLS).iter_rows()}
    assert have == want
    # Sorted by session_id string, then t, then kind.
    keys = got.select("session_id", "t", "kind").rows()
    assert keys == sorted(keys)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(tables(), min_size=1, max_size=4), st.sampled_from(CONFIGS))
def test_threads_give_the_single_threaded_findings(
    parts: list[pl.DataFrame], config: Config
) -> None:
    # Several generated tables under distinct session ids make one with enough sessions to
    # split; parts of a single row force every kernel through its threaded path.
    events = pl.concat(
        [
            p.with_columns((pl.col("session_id").cast(pl.String) + f"-{k}").cast(pl.Categorical))
            for k, p in enumerate(parts)
        ]
    )
    with threads(1):
        one = detect(events, config)
    for n in (2, 3):
        with threads(n, min_rows=1):
            assert_frame_equal(detect(events, config), one)
