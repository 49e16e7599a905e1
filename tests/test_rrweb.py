"""The rrweb importer, on the real third-party recordings in shared/fixtures/rrweb and on
small hand-built recordings for what those do not contain (typed input, flags, errors)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from cemreplay.errors import DecodeError
from cemreplay.schema import EVENT_SCHEMA, ClickFlag, EventKind, NavigationType
from cemreplay.wire.rrweb import read_rrweb

# CI clones the repo into a fresh directory with shared/ beside it.
FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "rrweb"
DEMO = FIXTURES / "rrweb-player-demo.json"
POSTHOG = FIXTURES / "posthog-rageclick-interactions.jsonl"
WINDOW_1 = "187d7c761a0525d-05f175487d4b65-1d525634-384000-187d7c761a149d0"
WINDOW_2 = "187d7c77dfe1d45-08bdcaf91135a2-1d525634-384000-187d7c77dff39a6"

needs_fixtures = pytest.mark.skipif(
    not (DEMO.is_file() and POSTHOG.is_file()),
    reason=f"real rrweb fixtures not found in {FIXTURES} (shared/ must sit beside the repo)",
)


def kind(events: pl.DataFrame, k: EventKind) -> pl.DataFrame:
    return events.filter(pl.col("kind") == int(k))


def count(events: pl.DataFrame, k: EventKind) -> int:
    return kind(events, k).height


def strings(events: pl.DataFrame) -> list[str]:
    """Every string value anywhere in the table."""
    out: list[str] = []
    for name in ("session_id", "visitor_id", "target", "text"):
        out.extend(v for v in events[name].cast(pl.String).to_list() if v is not None)
    return out


def assert_canonical(events: pl.DataFrame) -> None:
    assert events.schema == EVENT_SCHEMA
    keys = list(
        zip(
            events["session_id"].cast(pl.String).to_list(),
            events["batch"].to_list(),
            events["i"].to_list(),
            strict=True,
        )
    )
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    for _, part in events.group_by("session_id"):
        assert part["t"].is_sorted()


# --------------------------------------------------------------------------- real recordings


@pytest.fixture(scope="module")
def demo() -> pl.DataFrame:
    return read_rrweb(DEMO)


@pytest.fixture(scope="module")
def posthog() -> pl.DataFrame:
    return read_rrweb(POSTHOG)


@needs_fixtures
def test_demo_counts_and_order(demo: pl.DataFrame) -> None:
    raw = json.loads(DEMO.read_text())
    assert_canonical(demo)
    assert demo["session_id"].cast(pl.String).unique().to_list() == [raw[0]["sessionId"]]
    assert count(demo, EventKind.PAGE_VIEW) == 1
    assert count(demo, EventKind.CLICK) == 3
    assert count(demo, EventKind.MUTATION) == 226
    assert count(demo, EventKind.SCROLL) == 12
    # Focus and blur of form fields only (as the snippet): the editor's textarea, not the link.
    assert count(demo, EventKind.FOCUS) == 1
    assert count(demo, EventKind.BLUR) == 2
    moves = [
        p
        for e in raw
        if e["type"] == 3 and e["data"]["source"] == 1
        for p in e["data"]["positions"]
    ]
    assert count(demo, EventKind.MOUSE_MOVE) == len(moves)
    assert count(demo, EventKind.CHANGE) == 0


@needs_fixtures
def test_demo_page_view_and_mutation_sizes(demo: pl.DataFrame) -> None:
    raw = json.loads(DEMO.read_text())
    pv = kind(demo, EventKind.PAGE_VIEW).row(0, named=True)
    assert (pv["target"], pv["x"], pv["y"]) == (
        "https://demoit.app/e/react#ReactHooks.js",
        1166,
        705,
    )
    assert pv["t"] == raw[0]["timestamp"]
    assert pv["b"] == NavigationType.LOAD
    sizes = [
        sum(len(e["data"][k]) for k in ("adds", "removes", "attributes", "texts"))
        for e in raw
        if e["type"] == 3 and e["data"]["source"] == 0
    ]
    assert kind(demo, EventKind.MUTATION)["a"].to_list() == sizes


@needs_fixtures
def test_demo_selectors_come_from_the_full_snapshot(demo: pl.DataFrame) -> None:
    clicks = kind(demo, EventKind.CLICK)
    # node 213 and 368 are CodeMirror lines (<pre class=" CodeMirror-line ">), node 36 is
    # <a href="javascript:void(0);" class="active">.
    # the snippet's rule: the tag.class chain of up to 3 levels (generated names skipped)
    line = "div>div.CodeMirror-code>pre.CodeMirror-line"
    assert clicks["target"].cast(pl.String).to_list() == [line, line, "div.status-bar>div>a.active"]
    assert clicks.select("x", "y").rows() == [(757, 268), (387, 463), (105, 23)]
    assert clicks["a"].to_list() == [0, 0, int(ClickFlag.INTERACTIVE | ClickFlag.LINK)]
    assert clicks["b"].to_list() == [1, 1, 1]  # far apart: no multi-clicks
    focus = kind(demo, EventKind.FOCUS)["target"].cast(pl.String).to_list()
    assert focus == ["div.CodeMirror.cm-s-light>div>textarea"]
    blur = kind(demo, EventKind.BLUR)
    assert blur["text"].null_count() == blur.height
    assert blur["a"].to_list() == [0, 0]  # nothing typed through Input events


@needs_fixtures
def test_demo_scrolls(demo: pl.DataFrame) -> None:
    scrolls = kind(demo, EventKind.SCROLL)
    assert scrolls["y"].to_list()[:5] == [120, 0, 9, 163, 212]
    assert scrolls["a"].to_list() == [0] * 12  # page height unknown
    # Every scroll in the demo is of an element (CodeMirror), not of the page.
    assert scrolls["b"].to_list() == [0] * 12


@needs_fixtures
def test_demo_never_holds_typed_text(demo: pl.DataFrame) -> None:
    """The visitor typed code into the editor; rrweb recorded it as DOM text. None of it
    may reach the table."""
    raw = json.loads(DEMO.read_text())
    typed: set[str] = set()
    for e in raw:
        if e["type"] == 3 and e["data"]["source"] == 0:
            typed.update(t["value"] for t in e["data"]["texts"] if t["value"])
            typed.update(
                a["node"]["textContent"] for a in e["data"]["adds"] if a["node"].get("textContent")
            )
    long_ones = {t for t in typed if len(t.strip()) >= 8}  # short ones ("div") are also tags
    assert len(long_ones) > 10
    url = raw[0]["data"]["href"]
    others = [v for v in strings(demo) if v != url]
    assert others
    for value in others:
        assert value not in typed
        assert not any(t in value for t in long_ones), value
    # Beyond ids and the page URL, the table holds selectors and nothing else.
    part = r"[a-z0-9]+([#.][\w-]+)*"
    selector = re.compile(rf"{part}(>{part}){{0,2}}")
    ids = {raw[0]["sessionId"]}
    assert all(selector.fullmatch(v) for v in others if v not in ids)


@needs_fixtures
def test_posthog_windows_are_sessions(posthog: pl.DataFrame) -> None:
    assert_canonical(posthog)
    assert sorted(posthog["session_id"].cast(pl.String).unique().to_list()) == [WINDOW_1, WINDOW_2]
    assert count(posthog, EventKind.MUTATION) == 0  # PostHog's export strips them
    assert count(posthog, EventKind.PAGE_VIEW) == 2
    # the focused nodes are unknown (no snapshot) and never took input: not form fields
    assert count(posthog, EventKind.FOCUS) + count(posthog, EventKind.BLUR) == 0
    resize = kind(posthog, EventKind.RESIZE).select("session_id", "x", "y").rows()
    assert [(str(s), x, y) for s, x, y in resize] == [(WINDOW_1, 2560, 476)]


@needs_fixtures
@pytest.mark.parametrize(
    ("window", "node", "n", "span_ms", "xy"),
    [(WINDOW_1, 27, 4, 498, (729, 124)), (WINDOW_2, 33, 3, 446, (852, 133))],
)
def test_posthog_rage_bursts(
    posthog: pl.DataFrame, window: str, node: int, n: int, span_ms: int, xy: tuple[int, int]
) -> None:
    clicks = kind(posthog, EventKind.CLICK).filter(pl.col("session_id").cast(pl.String) == window)
    burst = clicks.filter(pl.col("target").cast(pl.String) == f"node:{node}")
    assert burst.height == n
    # The dblclick in each burst is not an extra click: detail already says it.
    assert clicks.height == n + (1 if window == WINDOW_1 else 0)
    assert burst["t"].max() - burst["t"].min() == span_ms  # type: ignore[operator]
    assert set(burst.select("x", "y").rows()) == {xy}
    assert burst["b"].to_list() == list(range(1, n + 1))
    # no snapshot: nothing is known about the element, and the flags say so
    assert burst["a"].to_list() == [int(ClickFlag.UNKNOWN_ELEMENT)] * n


@needs_fixtures
def test_sources_agree(tmp_path: Path) -> None:
    """Path, gzip file, bytes and parsed list give the same table."""
    from_path = read_rrweb(DEMO, session_id="s")
    gz = tmp_path / "demo.json.gz"
    gz.write_bytes(gzip.compress(DEMO.read_bytes()))
    assert read_rrweb(gz, session_id="s").equals(from_path)
    assert read_rrweb(str(DEMO), session_id="s").equals(from_path)
    assert read_rrweb(DEMO.read_bytes(), session_id="s").equals(from_path)
    assert read_rrweb(json.loads(DEMO.read_text()), session_id="s").equals(from_path)
    ph_gz = gzip.compress(POSTHOG.read_bytes())
    assert read_rrweb(ph_gz).equals(read_rrweb(POSTHOG))
    windows = [json.loads(line) for line in POSTHOG.read_text().splitlines()]
    assert read_rrweb(windows).equals(read_rrweb(POSTHOG))


@needs_fixtures
def test_session_and_visitor_arguments() -> None:
    merged = read_rrweb(POSTHOG, session_id="call-123", visitor_id="v9")
    assert merged["session_id"].cast(pl.String).unique().to_list() == ["call-123"]
    assert merged["visitor_id"].cast(pl.String).unique().to_list() == ["v9"]
    assert merged.height == read_rrweb(POSTHOG).height
    assert_canonical(merged)


# --------------------------------------------------------------------------- built recordings


def ev(t: int, etype: int, **data: Any) -> dict[str, Any]:
    return {"type": etype, "timestamp": t, "data": data}


def el(nid: int, tag: str, children: list[dict[str, Any]] | None = None, **attrs: str) -> Any:
    return {
        "type": 2,
        "tagName": tag,
        "attributes": {k.replace("_", "-").rstrip("-"): v for k, v in attrs.items()},
        "childNodes": children or [],
        "id": nid,
    }


def snapshot(t: int, *body: dict[str, Any]) -> dict[str, Any]:
    html = el(2, "html", [el(3, "body", list(body))])
    return ev(t, 2, node={"type": 0, "childNodes": [html], "id": 1}, initialOffset={})


def click(t: int, nid: int, x: int = 10, y: int = 20) -> dict[str, Any]:
    return ev(t, 3, source=2, type=2, id=nid, x=x, y=y)


def typed(t: int, nid: int, text: str, **extra: Any) -> dict[str, Any]:
    return ev(t, 3, source=5, id=nid, text=text, isChecked=False, **extra)


FORM = snapshot(
    1,
    el(10, "input", id="email", type="email", value="jane.Doe@example.com"),  # prefilled
    el(11, "input", name="pw", type="password"),
    el(12, "input", id="terms", type="checkbox"),
    el(13, "input", name="card_number"),
    el(14, "textarea", class_="note big"),
)


def test_typed_values_become_shapes_only() -> None:
    events = [
        ev(0, 4, href="https://shop.test/checkout", width=800, height=600),
        FORM,
        ev(5, 3, source=2, type=5, id=10),
        typed(10, 10, "j"),
        typed(11, 10, "jane.Doe@example.com"),
        ev(12, 3, source=2, type=6, id=10),
        typed(20, 11, "hunter2secret"),
        ev(30, 3, source=5, id=12, text="on", isChecked=True),
        typed(31, 12, "on", userTriggered=False),
        typed(40, 13, "4111 1111 1111 1111"),
        typed(50, 14, "Call me at +47 912 34 567"),
    ]
    table = read_rrweb(events, session_id="s")
    assert_canonical(table)
    changes = kind(table, EventKind.CHANGE)
    assert changes.select(pl.col("target").cast(pl.String), "a", pl.col("text").cast(pl.String))\
        .rows() == [
        ("input#email", 20, "aaaa.Aaa@aaaaaaa.aaa"),  # one CHANGE for the run of Inputs
        ('input[name="pw"]', 0, None),  # password: neither length nor shape
        ("input#terms", 1, None),  # checkbox: the checked state (as the snippet), no text
        ('input[name="card_number"]', 0, None),  # card-like
        ("body>textarea.note.big", 25, "Aaaa aa aa +99 999 99 999"),
    ]  # fmt: skip
    # the CHANGE sits where the run ended, before the blur; the blur has the last shape
    fields = table.filter(pl.col("kind").is_in([6, 7, 8]))
    assert fields["kind"].to_list()[:3] == [EventKind.FOCUS, EventKind.CHANGE, EventKind.BLUR]
    assert fields.row(2, named=True)["a"] == 20
    assert fields.row(2, named=True)["text"] == "aaaa.Aaa@aaaaaaa.aaa"
    secrets = ["jane", "Doe", "example", "hunter2", "4111", "912 34", "Call me"]
    for value in strings(table):
        assert not any(s in value for s in secrets), value


def test_shape_is_capped() -> None:
    table = read_rrweb([FORM, typed(2, 14, "x" * 200)], session_id="s")
    change = kind(table, EventKind.CHANGE).row(0, named=True)
    assert change["a"] == 200
    assert change["text"] == "a" * 64


def test_shape_and_length_follow_the_snippet() -> None:
    """util.js: \\p{N} as 9, \\p{L} as a/A; length in UTF-16 units, like value.length."""
    table = read_rrweb([FORM, typed(2, 14, "Åsa-9½ 😀")], session_id="s")
    change = kind(table, EventKind.CHANGE).row(0, named=True)
    assert (change["a"], change["text"]) == (9, "Aaa-99 😀")


def test_click_flags_and_selectors() -> None:
    rec = [
        snapshot(
            1,
            el(20, "button", [el(21, "span")], id="buy"),
            el(22, "a", [el(23, "b")], href="/terms", target="_blank"),
            el(24, "a", download="", href="/invoice.pdf", class_="dl"),
            el(25, "input", type="text", name="q"),
            el(26, "div", [el(27, "p")], contenteditable="true"),
            el(28, "section", [el(29, "div", role="button")], data_cem_no_rage=""),
            el(30, "div", class_="  card  wide"),
            el(31, "span"),
        ),
        *(click(10 + 1000 * k, nid) for k, nid in enumerate([21, 23, 24, 25, 27, 29, 30, 31, 99])),
    ]
    clicks = kind(read_rrweb(rec, session_id="s"), EventKind.CLICK)
    F = ClickFlag
    got = list(zip(clicks["target"].cast(pl.String).to_list(), clicks["a"].to_list(), strict=True))
    assert got == [
        ("button#buy", F.INTERACTIVE),  # the span inside the button: a click on the button
        ("body>a", F.INTERACTIVE | F.LINK | F.NEW_CONTEXT),
        ("body>a.dl", F.INTERACTIVE | F.LINK | F.NEW_CONTEXT),
        ('input[name="q"]', F.INTERACTIVE | F.TEXT_INPUT),
        ("body>div", F.INTERACTIVE | F.TEXT_INPUT),  # contenteditable: the p is editable
        ("body>section>div", F.INTERACTIVE | F.NO_RAGE),
        ("body>div.card.wide", 0),
        ("body>span", 0),
        ("node:99", F.UNKNOWN_ELEMENT),  # not in the snapshot: its element bits say nothing
    ]


def test_nodes_added_by_mutations_get_selectors() -> None:
    add = {"parentId": 3, "nextId": None, "node": el(40, "button", id="late")}
    change = {"id": 40, "attributes": {"id": None, "class": "x"}}
    rec = [
        snapshot(1),
        ev(2, 3, source=0, adds=[add], removes=[], texts=[], attributes=[]),
        ev(3, 3, source=0, adds=[], removes=[], texts=[], attributes=[change]),
        click(4, 40),
    ]  # fmt: skip
    table = read_rrweb(rec, session_id="s")
    assert kind(table, EventKind.MUTATION)["a"].to_list() == [1, 1]
    assert kind(table, EventKind.CLICK)["target"].cast(pl.String).to_list() == ["body>button.x"]


def test_click_detail_counts_consecutive_clicks_on_one_node() -> None:
    rec = [
        snapshot(1, el(50, "button", id="a"), el(51, "button", id="b")),
        *(click(t, 50) for t in (100, 400, 900)),  # gaps 300, 500: 1, 2, 3
        click(1401, 50),  # gap 501: starts over
        click(1500, 51),  # another node: starts over
        click(1600, 50),  # back, but not consecutive
        ev(1650, 3, source=2, type=4, id=50, x=1, y=1),  # dblclick: no event of its own
        click(1700, 50),
    ]
    clicks = kind(read_rrweb(rec, session_id="s"), EventKind.CLICK)
    assert clicks["b"].to_list() == [1, 2, 3, 1, 1, 1, 2]


def test_page_views_from_meta_and_custom_events() -> None:
    rec = [
        ev(0, 4, href="https://x.test/a?email=me@x.test&utm_source=news", width=1024, height=700),
        snapshot(1),
        ev(5, 4, href="https://x.test/a?email=me@x.test&utm_source=news", width=1024, height=700),
        ev(10, 5, tag="$pageview", payload={"href": "https://x.test/b"}),
        ev(20, 5, tag="$pageview", payload={"href": "https://x.test/b#reviews"}),
        ev(30, 5, tag="$identify", payload={"href": "https://x.test/c"}),
        ev(40, 3, source=4, width=500, height=400),
        ev(50, 5, tag="navigation", payload={"href": "https://x.test/d#token=abc123"}),
    ]
    table = read_rrweb(rec, session_id="s")
    pv = kind(table, EventKind.PAGE_VIEW)
    assert pv.select(pl.col("target").cast(pl.String), "x", "y", "b").rows() == [
        ("https://x.test/a?email=&utm_source=news", 1024, 700, NavigationType.LOAD),
        ("https://x.test/b", 1024, 700, NavigationType.PUSH),
        ("https://x.test/b#reviews", 1024, 700, NavigationType.HASH),
        ("https://x.test/d#token", 500, 400, NavigationType.PUSH),
    ]
    assert not any("me@x.test" in s or "abc123" in s for s in strings(table))


def test_order_is_rrweb_order_sorted_stably_by_time() -> None:
    rec = [
        snapshot(1, el(60, "button")),
        click(1000, 60, x=1),
        # a mouse-move batch is emitted late; its positions carry negative offsets
        ev(1500, 3, source=1, positions=[{"x": 5, "y": 5, "id": 60, "timeOffset": -600},
                                         {"x": 6, "y": 6, "id": 60, "timeOffset": -500}]),
        click(1000, 60, x=2),  # same time as the first click: stays after it
        ev(900, 3, source=3, id=1, x=0, y=50),  # out of order in the file
    ]  # fmt: skip
    table = read_rrweb(rec, session_id="s")
    assert_canonical(table)
    assert table.select("t", "kind", "x").rows() == [
        (900, EventKind.MOUSE_MOVE, 5),
        (900, EventKind.SCROLL, 0),
        (1000, EventKind.CLICK, 1),  # ties keep rrweb order: click, then the move batch, ...
        (1000, EventKind.MOUSE_MOVE, 6),
        (1000, EventKind.CLICK, 2),
    ]


def test_session_id_fallbacks(tmp_path: Path) -> None:
    rec = [click(5, 1)]
    a = tmp_path / "one" / "rec.json"
    b = tmp_path / "two" / "rec.json"
    for p in (a, b):
        p.parent.mkdir()
        p.write_text(json.dumps(rec))
    sid = read_rrweb(a)["session_id"].cast(pl.String).to_list()
    assert sid == read_rrweb(b)["session_id"].cast(pl.String).to_list()  # from the file name
    assert sid[0].startswith("rrweb-")
    from_list = read_rrweb(rec)["session_id"].cast(pl.String).to_list()
    assert from_list == read_rrweb(list(rec))["session_id"].cast(pl.String).to_list()  # stable
    assert from_list[0].startswith("rrweb-")
    two = [{**click(5, 1), "sessionId": "s1"}, {**click(6, 1), "sessionId": "s2"}]
    assert read_rrweb(two)["session_id"].cast(pl.String).to_list() == ["s1", "s2"]
    assert read_rrweb(two)["visitor_id"].cast(pl.String).to_list() == ["s1", "s2"]


def test_empty_array_gives_an_empty_table() -> None:
    table = read_rrweb(b"[]")
    assert table.height == 0
    assert table.schema == EVENT_SCHEMA


# --------------------------------------------------------------------------- bad input


def _events_with(bad: dict[str, Any], at: int = 17) -> list[dict[str, Any]]:
    good = [click(t, 1) for t in range(30)]
    good[at] = bad
    return good


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (b'[{"type": 4, "timestamp": 1,\n "data": {]', "line 2, column 11: not JSON"),
        (b'{"window_id": "w", "data": []}\n{"window_id": "w2", "data": [}\n', "line 2: not JSON"),
        (b'{"window_id": "w", "data": []}\n42\n', "line 2: expected a PostHog window"),
        (b'{"window_id": 7, "data": []}\n', "window_id must be a non-empty string"),
        (b'\n{"window_id": "w", "data": [{"type": 3}]}\n', "line 2, event 0: missing timestamp"),
        (b'{"a": 1}', "line 1: expected a PostHog window"),
        (b'{\n"a": 1}', "expected a JSON array of rrweb events"),
        (b"   \n", "empty input"),
        (b"\x1f\x8b\x08\x00broken", "not a valid gzip stream"),
        (b"\xff\xfe[]", "not UTF-8"),
        (_events_with({"type": 3, "data": {"source": 2}}), "event 17: missing timestamp"),
        (_events_with({"timestamp": 5, "data": {}}), "event 17: missing type"),
        (_events_with({"type": "3", "timestamp": 5}), "event 17: type must be a number"),
        (_events_with({"type": 3, "timestamp": 5, "data": []}), "event 17: data must be an object"),
        (_events_with(ev(5, 3, x=1)), "event 17: incremental snapshot without a source"),
        (_events_with(ev(5, 3, source=2, type=2, x=1)), "event 17: missing node id"),
        (_events_with(ev(5, 3, source=1, positions=[{"x": 1}])), "event 17, position 0: missing y"),
        (_events_with(ev(5, 3, source=5, id=3)), "event 17: input without text or isChecked"),
        (_events_with(ev(5, 3, source=3, id=1, x=1e300, y=0)), "event 17: x "),
        (_events_with(ev(5, 2, node=None)), "event 17: full snapshot without a node tree"),
        ([1, 2], "event 0: expected an rrweb event object"),
    ],
)  # fmt: skip
def test_bad_input_names_where(source: Any, message: str) -> None:
    with pytest.raises(DecodeError, match=message.replace("[", r"\[").replace("?", r"\?")):
        read_rrweb(source)


def test_decode_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="event 0"):
        read_rrweb([{"type": 4}])


def test_focus_without_snapshot_needs_input_to_count_as_field() -> None:
    rec = [
        ev(1, 3, source=2, type=5, id=7),
        typed(2, 7, "Ab1"),
        ev(3, 3, source=2, type=6, id=7),
        ev(4, 3, source=2, type=5, id=8),  # a button, say: never took input
        ev(5, 3, source=2, type=6, id=8),
    ]
    table = read_rrweb(rec, session_id="s")
    rows = table.select("kind", pl.col("target").cast(pl.String), "a").rows()
    assert rows == [
        (EventKind.FOCUS, "node:7", 0),
        (EventKind.CHANGE, "node:7", 3),
        (EventKind.BLUR, "node:7", 3),
    ]
