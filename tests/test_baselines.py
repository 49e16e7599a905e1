"""Page baselines as mergeable partials: a split run with merged baselines equals the whole."""

from __future__ import annotations

import statistics
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from cemreplay.detectors import (
    DEFERRED,
    Baselines,
    Config,
    ExcessiveScrollConfig,
    QuickBackConfig,
    detect,
    detect_split,
)
from cemreplay.detectors._base import prepare
from cemreplay.detectors.baselines import DWELL_SCHEMA, medians
from cemreplay.errors import ConfigError
from cemreplay.schema import EVENT_SCHEMA, EventKind
from tests.test_detectors_props import CONFIGS, tables

K = EventKind
LOW = Config(
    excessive_scroll=ExcessiveScrollConfig(
        min_reversals=1, min_baseline_views=2, fallback_reversals=50, multiplier=1.5
    ),
    quick_back=QuickBackConfig(min_baseline_views=2, baseline_ratio=0.9, quick_ms=1),
)


def split(events: pl.DataFrame, assign: list[int], n: int) -> list[pl.DataFrame]:
    """``events`` cut into ``n`` parts, session s (in order of appearance) in part
    ``assign[s % len(assign)]``."""
    sids = events["session_id"].cast(pl.String).unique(maintain_order=True).to_list()
    part = {s: assign[k % len(assign)] % n for k, s in enumerate(sids)}
    key = events["session_id"].cast(pl.String).replace_strict(part, return_dtype=pl.Int64)
    return [events.filter(key == j) for j in range(n)]


def by_parts(parts: list[pl.DataFrame], config: Config) -> pl.DataFrame:
    merged = Baselines.merge(Baselines.of(p) for p in parts)
    got = pl.concat([detect(p, config, baselines=merged) for p in parts])
    return got.sort("session_id", "t", "kind", "page_view", "target", maintain_order=True)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tables(),
    st.sampled_from([*CONFIGS, LOW]),
    st.integers(1, 3),
    st.lists(st.integers(0, 2), min_size=1, max_size=4),
)
def test_split_merge_equals_whole(
    events: pl.DataFrame, config: Config, n: int, assign: list[int]
) -> None:
    whole = detect(events, config)
    assert_frame_equal(detect(events, config, baselines=Baselines.of(events)), whole)
    parts = split(events, assign, n)
    assert sum(p.height for p in parts) == events.height
    assert_frame_equal(by_parts(parts, config), whole)
    # Merging is order- and tree-independent.
    ps = [Baselines.of(p) for p in parts]
    assert Baselines.merge(ps) == Baselines.merge([Baselines.merge(ps[::-1][:1]), *ps[::-1][1:]])
    assert Baselines.merge(ps) == Baselines.merge([Baselines.of(events)])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tables(),
    st.sampled_from([*CONFIGS, LOW]),
    st.integers(1, 3),
    st.lists(st.integers(0, 2), min_size=1, max_size=4),
)
def test_detect_split_then_finish_equals_whole(
    events: pl.DataFrame, config: Config, n: int, assign: list[int]
) -> None:
    """The pipeline's one pass: each part split (its table may then go), the parts' page
    baselines merged, the deferred kinds finished on the rows each part kept. Row for row
    what detect gives over the whole table (the order of the findings too)."""
    whole = detect(events, config)
    parts = split(events, assign, n)
    splits = [detect_split(prepare(p), config) for p in parts]
    assert all(not s.findings["kind"].is_in(list(DEFERRED)).any() for s in splits)
    merged = Baselines.merge(s.baselines for s in splits)
    assert merged == Baselines.merge(Baselines.of(p) for p in parts)
    got = pl.concat([s.finish(merged) for s in splits]).sort(
        "session_id", "t", "kind", "page_view", "target", maintain_order=True
    )
    assert_frame_equal(got, whole)
    if n == 1:  # one part: its own baselines are all the data's
        assert_frame_equal(detect_split(prepare(events), config).finish(), whole)


def test_split_keeps_a_few_rows_of_real_traffic() -> None:
    """On synthetic traffic the rows kept for the deferred kinds are a few percent of the
    table, mouse moves and geometry never among them, and finishing equals detect."""
    from cemreplay import synth

    events = synth.generate(400, seed=3).events
    s = detect_split(prepare(events))
    kept = s.rest
    assert 0 < kept.height < 0.15 * events.height
    assert not kept["kind"].is_in([int(K.MOUSE_MOVE), int(K.GEOMETRY)]).any()
    assert kept.filter(pl.col("kind") == int(K.PAGE_VIEW)).height == (
        events.filter(pl.col("kind") == int(K.PAGE_VIEW)).height
    )
    assert_frame_equal(s.finish(), detect(events))
    with pytest.raises(ConfigError, match="baselines must be"):
        s.finish("not baselines")  # type: ignore[arg-type]


def test_split_counts_the_interactions_of_a_quick_back_page() -> None:
    """A return under the page's median dwell with two clicks on the page: the finish,
    which sees only the kept rows, still counts both clicks (they are kept)."""
    from tests.detector_tables import click, pv, table

    ev = table(
        {
            "s1": [
                pv(0, "/a"),
                pv(1000, "/b"),
                click(1200, "a#x"),
                click(1500, "a#y"),
                pv(2000, "/a"),
            ],
            "s2": [pv(0, "/b"), pv(10_000, "/c"), pv(20_000, "/b"), pv(30_000, "/c")],
        }
    )
    cfg = Config(quick_back=QuickBackConfig(min_baseline_views=2, baseline_ratio=0.9, quick_ms=1))
    whole = detect(ev, cfg, kinds="quick_back")
    assert whole.height == 1 and whole["count"].to_list() == [2]
    got = detect_split(prepare(ev), cfg).finish().filter(pl.col("kind") == "quick_back")
    assert_frame_equal(got, whole)


def _page(sid: str, vid: str, t0: int, urls: list[tuple[str, int]], scrolls: int) -> list[Any]:
    rows: list[dict[str, Any]] = []
    t = t0
    for url, dwell in urls:
        rows.append({"kind": int(K.PAGE_VIEW), "t": t, "target": url})
        for r in range(scrolls if url == "/long" else 0):
            rows.append({"kind": int(K.SCROLL), "t": t + 10 + r, "y": 500 * (r % 2)})
        t += dwell
    base = {"session_id": sid, "visitor_id": vid, "batch": 0, "x": 0, "a": 0, "b": 0}
    out = []
    for i, r in enumerate(rows):
        out.append({"y": 0, "text": None, "target": None, **base, **r, "i": i})
    return out


def test_a_part_alone_differs_and_merged_baselines_fix_it() -> None:
    """Visitor a reads /long calmly in many sessions; visitor b scrolls it up and down and
    bounces off /b fast. Alone, b's part has b's own high baselines and finds nothing."""
    rows: list[Any] = []
    for k in range(6):
        rows += _page(
            f"a{k}",
            "va",
            1000 * k,
            [("/home", 900), ("/long", 9_000), ("/b", 8_000), ("/long", 100)],
            scrolls=2,
        )
    for k in range(2):
        rows += _page(
            f"b{k}",
            "vb",
            50_000 + 1000 * k,
            [("/home", 900), ("/long", 50), ("/b", 500), ("/long", 100)],
            scrolls=12,
        )
    events = pl.DataFrame(rows, schema=EVENT_SCHEMA)
    parts = [events.filter(pl.col("visitor_id") == v) for v in ("va", "vb")]
    whole = detect(events, LOW)
    assert set(whole["kind"]) >= {"excessive_scroll", "quick_back"}
    alone = pl.concat([detect(p, LOW) for p in parts])
    assert alone.height < whole.height
    assert_frame_equal(by_parts(parts, LOW), whole)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["/a", "/b", None]), st.integers(0, 50)), min_size=1))
def test_medians_from_counts_equal_the_median(values: list[tuple[str | None, int]]) -> None:
    counts = (
        pl.DataFrame(values, schema={"url": pl.String, "dwell": pl.Int64}, orient="row")
        .group_by("url", "dwell")
        .agg(n=pl.len().cast(pl.Int64))
        .select(DWELL_SCHEMA.names())
    )
    got = {r["url"]: (r["median"], r["views"]) for r in medians(counts).iter_rows(named=True)}
    want: dict[str | None, list[int]] = {}
    for url, d in values:
        want.setdefault(url, []).append(d)
    assert got == {u: (float(statistics.median(ds)), len(ds)) for u, ds in want.items()}


def test_bad_baselines_are_refused() -> None:
    with pytest.raises(ConfigError, match="baselines must be"):
        detect(pl.DataFrame(schema=EVENT_SCHEMA), baselines={"x": 1})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"Baselines\.scroll"):
        Baselines(scroll=pl.DataFrame({"url": ["/a"]}))
    with pytest.raises(ConfigError, match="merge takes Baselines"):
        Baselines.merge([1])  # type: ignore[list-item]


@pytest.mark.parametrize("gap", [700, 2**32 + 5])
def test_dwell_counts_equal_a_group_by(gap: int) -> None:
    """The dwell partial is the count of each (URL, dwell to the next page view), whatever
    the dwell's size (packed sort under 2**32 ms, lexsort above)."""
    urls = ["/a", "/b", None, "/a", "/b", "/a"]
    rows = [
        {"session_id": f"s{k % 2}", "visitor_id": "v", "t": 1000 + j * gap + k, "batch": 0,
         "i": j, "kind": int(K.PAGE_VIEW), "target": u}
        for k in range(2) for j, u in enumerate(urls)
    ]  # fmt: skip
    events = pl.DataFrame(rows, schema=EVENT_SCHEMA)
    want = (
        events.sort("session_id", "t")
        .with_columns(
            url=pl.col("target").cast(pl.String),
            dwell=pl.col("t").shift(-1).over("session_id") - pl.col("t"),
        )
        .drop_nulls("dwell")
        .group_by("url", "dwell")
        .agg(n=pl.len().cast(pl.Int64))
        .sort("url", "dwell", nulls_last=True)
    )
    got = Baselines.merge([Baselines.of(events)]).dwell
    assert_frame_equal(got, want.select(DWELL_SCHEMA.names()))
    assert Baselines.of(events).scroll["views"].sum() == events.height


@pytest.mark.parametrize(
    "dwell",
    [
        [5, 3, 7, 5, 3, 7],  # packed into one integer key
        [5, 3, 2**40, 5, 3, -1],  # beyond 32 bits, and below 0: sorted as two keys
        [5, None, 7, 5, None, 7],  # a null dwell: the general group-by
    ],
)
def test_merge_adds_equal_rows_and_sorts_by_url_then_dwell(dwell: list[int | None]) -> None:
    table = pl.DataFrame(
        {"url": ["/b", None, "/a", "/b", None, "/a"], "dwell": dwell, "n": [1, 2, 3, 4, 5, 6]},
        schema=DWELL_SCHEMA,
    )
    halves = [Baselines(dwell=table.head(3)), Baselines(dwell=table.tail(3))]
    want = (
        table.group_by("url", "dwell")
        .agg(pl.col("n").sum())
        .sort("url", "dwell", nulls_last=True)
        .select(DWELL_SCHEMA.names())
    )
    assert_frame_equal(Baselines.merge(halves).dwell, want)
    assert Baselines.merge(halves).dwell["n"].sum() == 21
