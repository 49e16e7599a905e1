"""Journeys: vectorized code vs tests/naive/journeys.py, and invariants, on hypothesis tables."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cemreplay.events as ev
from cemreplay.errors import ConfigError
from cemreplay.journeys import (
    GA4,
    MATOMO,
    POSTHOG,
    Goal,
    SessionRules,
    UrlRules,
    canonical,
    clicks_to_goal,
    funnel,
    page_views,
    path_tree,
    paths,
    sessions,
    top_paths,
    with_page_views,
)
from cemreplay.journeys._kernels import split, split_reference
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


# --- sessions and page views ----------------------------------------------------------------


RULES = st.sampled_from([
    SessionRules(),
    GA4,
    POSTHOG,
    MATOMO,
    SessionRules(inactivity_ms=None, max_length_ms=2 * 60 * MIN, midnight_tz="Asia/Tokyo"),
    SessionRules(inactivity_ms=10_000, max_length_ms=None, split_on_campaign=True),
])


def _naive_kw(rules: SessionRules) -> dict[str, Any]:
    return {"inactivity": rules.inactivity_ms, "max_length": rules.max_length_ms,
            "split_on_campaign": rules.split_on_campaign, "tz": rules.midnight_tz}


@SETTINGS
@given(tables(), RULES, st.integers(0, 2**16))
def test_sessions_match_naive(table: pl.DataFrame, rules: SessionRules, seed: int) -> None:
    got = sessions(shuffled_dup(table, seed), rules)
    want = naive.sessions(table.to_dicts(), **_naive_kw(rules))
    assert got.height == len(want)
    cols = [c for c in want[0] if c in got.columns] if want else []
    assert got.select(cols).to_dicts() == [{c: w[c] for c in cols} for w in want]
    # entry/exit pages: normalised versions of the naive raw URLs
    from cemreplay.journeys._urls import normalise
    for col, raw_col in (("entry_page", "entry_url"), ("exit_page", "exit_url")):
        expect = normalise(pl.Series([w[raw_col] for w in want], dtype=pl.String), rules.urls)
        assert got[col].to_list() == expect.to_list()


@SETTINGS
@given(tables(), RULES, st.integers(0, 2**16))
def test_page_views_match_naive(table: pl.DataFrame, rules: SessionRules, seed: int) -> None:
    got = page_views(shuffled_dup(table, seed), rules)
    want = naive.page_views(table.to_dicts(), inactivity=rules.inactivity_ms,
                            max_length=rules.max_length_ms)
    if rules.split_on_campaign or rules.midnight_tz:
        want_cols = [c for c in (want[0] if want else {}) if c != "split_session_id"]
    else:
        want_cols = list(want[0]) if want else []
    assert got.select(want_cols).to_dicts() == [{c: w[c] for c in want_cols} for w in want]
    # the reference (session_id, page_view) agrees with with_page_views
    tagged = with_page_views(table).select("session_id", "page_view").unique()
    assert tagged.height == got.height


@SETTINGS
@given(tables(), RULES, st.integers(0, 2**16))
def test_session_invariants(table: pl.DataFrame, rules: SessionRules, seed: int) -> None:
    s = sessions(table, rules)
    # every event belongs to exactly one session
    assert s["events"].sum() == table.height
    assert s["split_session_id"].n_unique() == s.height
    # a visitor's sessions do not overlap (generated snippet sessions are sequential)
    nxt = s.with_columns(next_start=pl.col("start").shift(-1).over("visitor_id"))
    assert nxt.filter(pl.col("next_start") < pl.col("end")).height == 0
    assert (s["duration_ms"] >= 0).all()
    if rules.max_length_ms is not None:
        assert (s["duration_ms"] <= rules.max_length_ms).all()
    # shuffled and duplicated input gives the same result
    assert sessions(shuffled_dup(table, seed), rules).equals(s)
    # split by visitor, concatenate: the same as the whole
    parts = [sessions(part, rules) for _, part in table.group_by("visitor_id")]
    whole = pl.concat(parts).sort("visitor_id", "start", "split_session_id") if parts else s
    assert whole.equals(s)
    pv = page_views(table, rules)
    pv_parts = [page_views(part, rules) for _, part in table.group_by("visitor_id")]
    if pv_parts:
        assert pl.concat(pv_parts).sort("session_id", "page_view").equals(pv)


@SETTINGS
@given(st.lists(st.tuples(st.booleans(), st.integers(-5, 4_000), st.booleans(),
                          st.integers(0, 2)), max_size=40),
       st.integers(0, 3_000), st.integers(0, 9_000))
def test_split_kernel_matches_reference(rows: list[Any], inactivity: int, max_len: int) -> None:
    import numpy as np

    new = np.array([True] + [r[0] for r in rows[1:]], dtype=np.bool_)[: len(rows)]
    t = np.cumsum([r[1] for r in rows]).astype(np.int64)
    brk = np.array([r[2] for r in rows], dtype=np.bool_)
    day = np.cumsum([r[3] for r in rows]).astype(np.int64) // 3
    a = split(new, t, brk, day, inactivity, max_len)
    b = split_reference(new, t, brk, day, inactivity, max_len)
    assert a[0].tolist() == b[0].tolist() and a[1].tolist() == b[1].tolist()


@SETTINGS
@given(st.lists(st.tuples(st.booleans(), st.integers(-5, 4_000), st.booleans()), max_size=40),
       st.integers(0, 3_000), st.integers(0, 9_000))
def test_split_rows_matches_reference(rows: list[Any], inactivity: int, max_len: int) -> None:
    """The scan journeys use (first row and piece per session) cuts where the reference does."""
    import numpy as np

    from cemreplay.journeys._scan import split_rows

    n = len(rows)
    new = np.array([True] + [r[0] for r in rows[1:]], dtype=np.bool_)[:n]
    sid = (np.cumsum(new) - 1).astype(np.uint32)
    t = np.cumsum([r[1] for r in rows]).astype(np.int64)
    brk = np.array([r[2] for r in rows], dtype=np.bool_)
    kind = np.zeros(n, dtype=np.uint8)
    piece, _ = split_reference(new, t, brk, np.zeros(n, dtype=np.int64), inactivity, max_len)
    starts, pieces, _ = split_rows(sid, t, kind, brk, inactivity, max_len)
    want = [k for k in range(n) if new[k] or piece[k] != piece[k - 1]]
    assert starts.tolist() == want
    assert pieces.tolist() == [int(piece[k]) for k in want]


def test_inactivity_and_max_length_split() -> None:
    ts = [0, 1_000, 31 * MIN + 1_000, 31 * MIN + 2_000]
    t = pl.DataFrame(
        {"session_id": ["s"] * 4, "visitor_id": ["v"] * 4, "t": ts, "batch": [0] * 4,
         "i": [0, 1, 2, 3], "kind": [1, 3, 1, 19], "x": [0] * 4, "y": [0] * 4, "a": [3, 0, 1, 0],
         "b": [0] * 4, "target": ["https://x/a?q=1", "#b", "https://x/b/42", "order_placed"],
         "text": [None] * 4}, schema=EVENT_SCHEMA)
    s = sessions(t)
    assert s["split_session_id"].to_list() == ["s", "s~2"]
    assert s["entry_page"].to_list() == ["/a", "/b/:id"]
    assert s["device"].cast(pl.String).to_list() == ["mobile", "desktop"]
    assert s["converted"].to_list() == [False, True]
    assert sessions(t, SessionRules(inactivity_ms=None, max_length_ms=MIN)).height == 2
    assert sessions(t, SessionRules(inactivity_ms=None, max_length_ms=None)).height == 1
    assert sessions(t, SessionRules(goal=Goal(url="/b/*")))["converted"].to_list() == [
        False, True]


def test_country_sources() -> None:
    rows = [(1, "https://x/", None), (2, "locale", "en-GB"), (2, "timezone", "Europe/London")]
    t = pl.DataFrame(
        {"session_id": ["s"] * 3, "visitor_id": ["v"] * 3, "t": [0, 1, 2], "batch": [0] * 3,
         "i": [0, 1, 2], "kind": [r[0] for r in rows], "x": [0] * 3, "y": [0] * 3,
         "a": [0] * 3, "b": [0] * 3, "target": [r[1] for r in rows],
         "text": [r[2] for r in rows]}, schema=EVENT_SCHEMA)
    assert sessions(t)["country"].to_list() == ["GB"]
    assert sessions(t, country_lookup={"s": "IE"})["country"].to_list() == ["IE"]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: SessionRules(inactivity_ms=0), "inactivity_ms must be a positive int"),
        (lambda: SessionRules(max_length_ms=-1), "max_length_ms"),
        (lambda: SessionRules(midnight_tz="Mars/Olympus"), "IANA time zone"),
        (Goal, "exactly one of"),
        (lambda: Goal(url="re:(("), "regular expression"),
        (lambda: UrlRules(keep_query="q"), "tuple of parameter names"),  # type: ignore[arg-type]
    ],
)
def test_rules_validate(make: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        make()
    assert "hint:" in str(info.value)


def test_url_rules() -> None:
    from cemreplay.journeys._urls import normalise

    u = pl.Series(["https://s.test/product/123?c=1&q=x#top", "https://s.test/app#/order/77",
                   "/Cart/", None])
    assert normalise(u, UrlRules()).to_list() == ["/product/:id", "/app#/order/:id", "/Cart",
                                                  None]
    assert normalise(u, UrlRules(keep_query=("q",), lowercase=True,
                                 collapse_ids=False)).to_list() == [
        "/product/123?q=x", "/app#/order/77", "/cart", None]


# --- paths, funnels, clicks-to-goal -----------------------------------------------------------


STEPS = st.lists(
    st.sampled_from([("page", "/"), ("page", "/product/:id"), ("page", "/cart"),
                     ("page", "/checkout"), ("milestone", "cart_add"),
                     ("milestone", "order_placed")]),
    min_size=1, max_size=4,
)


def _goal(step: tuple[str, str]) -> Goal:
    return Goal(milestone=step[1]) if step[0] == "milestone" else Goal(url=step[1])


@SETTINGS
@given(tables(), STEPS, st.sampled_from(["ordered", "strict", "any"]),
       st.sampled_from([None, 60_000, 40 * MIN]), st.sampled_from(["session", "visitor"]),
       st.integers(0, 2**16))
def test_funnel_matches_naive(table: pl.DataFrame, steps: list[tuple[str, str]], order: Any,
                              window: int | None, by: Any, seed: int) -> None:
    res = funnel(shuffled_dup(table, seed), [_goal(s) for s in steps], order=order,
                 window_ms=window, by=by)
    want = naive.funnel(table.to_dicts(), steps, order=order, window=window, by=by)
    got = {r[0]: (r[1], list(r[2:])) for r in res.units.iter_rows()}
    assert got == want
    levels = [lv for lv, _ in want.values()]
    n = len(steps)
    assert res.steps["entered"].to_list() == [sum(lv >= k for lv in levels) for k in
                                              range(1, n + 1)]
    assert res.steps["dropped"].to_list() == [
        sum(lv == k for lv in levels) if k < n else 0 for k in range(1, n + 1)]
    assert sorted(res.drops["unit"].to_list()) == sorted(u for u, (lv, _) in want.items()
                                                         if lv < n)


@SETTINGS
@given(tables(), st.sampled_from([("page", "/cart"), ("milestone", "order_placed")]),
       st.sampled_from(["session", "visitor"]), st.integers(0, 2**16))
def test_clicks_to_goal_matches_naive(table: pl.DataFrame, goal: tuple[str, str], by: Any,
                                      seed: int) -> None:
    res = clicks_to_goal(shuffled_dup(table, seed), _goal(goal), by=by)
    want = naive.clicks_to_goal(table.to_dicts(), goal, by=by)
    assert {r[0]: tuple(r[1:]) for r in res.units.iter_rows()} == want
    assert res.summary["reached"].item() == sum(w[0] for w in want.values())


def _tiny(rows: list[tuple[str, int, int, str | None]]) -> pl.DataFrame:
    """(session_id, t, kind, target) rows, one visitor per session."""
    n = len(rows)
    return pl.DataFrame(
        {"session_id": [r[0] for r in rows], "visitor_id": ["v" + r[0] for r in rows],
         "t": [r[1] for r in rows], "batch": [0] * n, "i": list(range(n)),
         "kind": [r[2] for r in rows], "x": [0] * n, "y": [0] * n, "a": [0] * n, "b": [0] * n,
         "target": [r[3] for r in rows], "text": [None] * n}, schema=EVENT_SCHEMA)


def test_funnel_drop_tags_and_medians() -> None:
    t = _tiny([
        ("a", 0, 1, "/cart"), ("a", 1_000, 3, "#go"), ("a", 3_000, 1, "/checkout"),
        ("b", 0, 1, "/cart"), ("b", 500, 6, "#phone"), ("b", 900, 10, "#phone"),
        ("b", 1_000, 1, "/help"),
    ])
    findings = pl.DataFrame({"session_id": ["b"], "t": [950], "kind": ["form_error"]})
    res = funnel(t, ["/cart", "/checkout"], findings=findings)
    assert res.steps["entered"].to_list() == [2, 1]
    assert res.steps["median_ms_to_next"].to_list()[0] == 3_000
    drop = res.drops.row(0, named=True)
    assert (drop["unit"], drop["step"], drop["last_page"], drop["last_field"],
            drop["last_finding"]) == ("b", 1, "/help", "#phone", "form_error")
    strict = funnel(t, ["/cart", "/checkout"], order="strict")
    assert strict.steps["converted"].to_list()[0] == 1


def test_paths_and_trees() -> None:
    t = _tiny([
        ("a", 0, 1, "/"), ("a", 1, 1, "/p/1"), ("a", 2, 1, "/p/2"), ("a", 3, 1, "/"),
        ("b", 0, 1, "/"), ("b", 1, 1, "/cart"),
    ])
    p = paths(t)
    assert p["path"].to_list() == [["/", "/p/:id", "/"], ["/", "/cart"]]
    assert p["loops"].to_list() == [1, 0]
    assert top_paths(p, 1, max_depth=1)["sessions"].to_list() == [2]
    tree = path_tree(p, "/", depth=1)
    assert tree.select("page", "sessions", "ends").rows() == [
        ("/", 2, 0), ("/cart", 1, 1), ("/p/:id", 1, 0)]
    rev = path_tree(p, "/cart", direction="reverse")
    assert rev["path"].to_list() == [["/cart"], ["/cart", "/"]]
    with pytest.raises(ConfigError, match="hint"):
        path_tree(p, "/", direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="hint"):
        funnel(t, [], by="session")
    with pytest.raises(ConfigError, match="hint"):
        clicks_to_goal(t, "/", by="person")  # type: ignore[arg-type]
