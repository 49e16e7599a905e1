"""Journeys: vectorized code vs tests/naive/journeys.py, and invariants, on hypothesis tables."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cemreplay.events as ev
from cemreplay.journeys import canonical, with_page_views
from cemreplay.schema import EVENT_SCHEMA, EventKind
from tests.naive import journeys as naive

K = EventKind
MIN = 60_000
URLS = ["https://shop.test/", "https://shop.test/product/12?c=1", "https://shop.test/product/7#top",
        "https://shop.test/cart", "https://shop.test/checkout?step=2", "https://shop.test/thanks"]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _event(kind: K, draw: Any) -> dict[str, Any]:
    e: dict[str, Any] = {"kind": int(kind), "x": 0, "y": 0, "a": 0, "b": 0,
                         "target": None, "text": None}
    if kind == K.PAGE_VIEW:
        e.update(target=draw(st.sampled_from(URLS)), a=draw(st.integers(0, 3)), x=1280, y=800)
    elif kind == K.ATTRIBUTE:
        key = draw(st.sampled_from(["locale", "utm_campaign", "country", "utm_source"]))
        vals = {"locale": ["en-GB", "de-DE", "fr"], "utm_campaign": ["spring", "summer"],
                "country": ["NL", "US"], "utm_source": ["news"]}[key]
        e.update(target=key, text=draw(st.sampled_from(vals)))
    elif kind == K.CLICK:
        e.update(target=draw(st.sampled_from(["#buy", "#nav a", "div.card"])), x=5, y=7)
    elif kind == K.SCROLL:
        e.update(y=draw(st.integers(0, 3000)), a=draw(st.sampled_from([0, 1000, 4000])), b=800)
    elif kind in (K.FOCUS, K.CHANGE, K.BLUR, K.VALIDATION_ERROR):
        e.update(target=draw(st.sampled_from(["#email", "#phone"])))
    elif kind == K.MILESTONE:
        e.update(target=draw(st.sampled_from(["cart_add", "order_placed"])), a=1)
    elif kind == K.JS_ERROR:
        e.update(target="app.js", text="TypeError")
    return e


KINDS = [K.PAGE_VIEW, K.PAGE_VIEW, K.ATTRIBUTE, K.CLICK, K.CLICK, K.SCROLL, K.FOCUS, K.CHANGE,
         K.VALIDATION_ERROR, K.JS_ERROR, K.MILESTONE, K.VISIBILITY_HIDDEN, K.VISIBILITY_VISIBLE,
         K.MUTATION]


@st.composite
def tables(draw: Any, max_visitors: int = 4) -> pl.DataFrame:
    """An event table: visitors with sequential snippet sessions; gaps small, long, or skewed."""
    rows: list[dict[str, Any]] = []
    n_vis = draw(st.integers(0, max_visitors))
    for v in range(n_vis):
        t = 1_700_000_000_000 + draw(st.integers(0, 3 * 24 * 60)) * MIN
        for s in range(draw(st.integers(1, 3))):
            sid = f"s{v}{'abc'[s]}"
            n = draw(st.integers(1, 14))
            batch, i = 0, 0
            for _ in range(n):
                kind = draw(st.sampled_from(KINDS))
                gap = draw(st.sampled_from([0, 1, 500, 20_000, 31 * MIN, 5 * 60 * MIN, -3]))
                t += gap
                e = _event(kind, draw)
                e.update(session_id=sid, visitor_id=f"v{v}", t=t, batch=batch, i=i)
                rows.append(e)
                if draw(st.integers(0, 4)) == 0:
                    batch, i = batch + 1, 0
                else:
                    i += 1
            t += draw(st.sampled_from([1_000, 40 * MIN]))
    if not rows:
        return ev.empty()
    return pl.DataFrame(rows, schema=EVENT_SCHEMA)


def shuffled_dup(table: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Rows shuffled, some repeated: what a retried upload looks like."""
    if table.height == 0:
        return table
    extra = table.sample(n=min(3, table.height), seed=seed)
    return pl.concat([table, extra]).sample(fraction=1.0, shuffle=True, seed=seed)


# --- with_page_views ------------------------------------------------------------------------


@SETTINGS
@given(tables(), st.integers(0, 2**16))
def test_with_page_views_matches_naive(table: pl.DataFrame, seed: int) -> None:
    messy = shuffled_dup(table, seed)
    tagged = with_page_views(messy)
    assert tagged.height == messy.height
    assert tagged.drop("page_view", "page_url").equals(messy)
    assert tagged.schema["page_view"] == pl.UInt32
    want = naive.page_view_tags(table.to_dicts())
    for r in tagged.select("session_id", "batch", "i", "page_view", "page_url").iter_rows():
        assert (r[3], r[4]) == want[(r[0], r[1], r[2])]


def test_with_page_views_small_example() -> None:
    t = pl.DataFrame(
        {"session_id": ["s"] * 4, "visitor_id": ["v"] * 4, "t": [1, 2, 3, 4], "batch": [0] * 4,
         "i": [0, 1, 2, 3], "kind": [3, 1, 3, 1], "x": [0] * 4, "y": [0] * 4, "a": [0] * 4,
         "b": [0] * 4, "target": ["#a", "/one", "#b", "/two"], "text": [None] * 4},
        schema=EVENT_SCHEMA,
    )
    out = with_page_views(t)
    assert out["page_view"].to_list() == [0, 0, 0, 1]
    assert out["page_url"].cast(pl.String).to_list() == ["/one", "/one", "/one", "/two"]


@SETTINGS
@given(tables(), st.integers(0, 2**16))
def test_canonical_dedupes_and_orders(table: pl.DataFrame, seed: int) -> None:
    out = canonical(shuffled_dup(table, seed))
    assert out.height == table.height
    want = naive.recording_order(table.to_dicts())
    for sid, group in out.group_by("session_id", maintain_order=True):
        assert [(r["batch"], r["i"]) for r in group.to_dicts()] == [
            (e["batch"], e["i"]) for e in want[str(sid[0])]
        ]


def test_schema_is_checked() -> None:
    with pytest.raises(ValueError, match="not an event table"):
        with_page_views(pl.DataFrame({"session_id": ["x"]}))
