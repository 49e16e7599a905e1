"""cemreplay.synth: deterministic, canonical, private, and its truth points at real events."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from collections import defaultdict
from functools import cache
from typing import Any

import numpy as np
import polars as pl
import pytest

from cemreplay import synth
from cemreplay.errors import ConfigError
from cemreplay.events import assign_batches, check
from cemreplay.schema import EVENT_SCHEMA, RESPONSE_KINDS, ClickFlag, EventKind

K = EventKind
RESP = {int(k) for k in RESPONSE_KINDS}


@cache
def traffic() -> synth.Traffic:
    return synth.generate(600, seed=11, struggle_rate=0.6)


def plain(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.col(pl.Categorical).cast(pl.String))


@cache
def by_session() -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in plain(traffic().events).iter_rows(named=True):
        out[row["session_id"]].append(row)
    return out


def test_schema_and_check() -> None:
    tr = traffic()
    assert tr.events.schema == EVENT_SCHEMA
    check(tr.events)
    assert tr.truth.schema == synth.TRUTH_SCHEMA
    assert tr.events.height > 50_000
    assert set(tr.truth["kind"].unique()) == set(synth.KINDS)


def test_deterministic_for_a_seed() -> None:
    a = synth.generate(150, seed=3)
    b = synth.generate(150, seed=3)
    assert plain(a.events).equals(plain(b.events))
    assert plain(a.truth).equals(plain(b.truth))


def test_seeds_differ() -> None:
    a = plain(synth.generate(100, seed=1).events)
    b = plain(synth.generate(100, seed=2).events)
    assert a.height != b.height or not a.equals(b)
    assert set(a["session_id"]).isdisjoint(set(b["session_id"]))


def test_canonical_order_and_batches() -> None:
    ev = traffic().events
    sid = ev["session_id"].cast(pl.String)
    assert sid.is_sorted()
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{10}", s) for s in sid.unique().to_list())
    keyed = (
        ev.select(sid.alias("s"), "batch", "i", "t")
        .with_columns(
            prev_b=pl.col("batch").shift().over("s"),
            prev_i=pl.col("i").shift().over("s"),
            prev_t=pl.col("t").shift().over("s"),
        )
        .drop_nulls()
    )
    ordered = (keyed["batch"] > keyed["prev_b"]) | (
        (keyed["batch"] == keyed["prev_b"]) & (keyed["i"] > keyed["prev_i"])
    )
    assert ordered.all()
    assert (keyed["t"] >= keyed["prev_t"]).all()
    # batch and i are exactly what the snippet's flushing rule gives.
    again = assign_batches(ev)
    assert again["batch"].equals(ev["batch"])
    assert again["i"].equals(ev["i"])
    assert ev.group_by("session_id", "batch").len()["len"].max() <= 300  # type: ignore[operator]


def test_every_session_starts_with_a_page_view_and_ends_with_a_leave() -> None:
    ev = traffic().events
    ends = ev.group_by("session_id", maintain_order=True).agg(
        pl.col("kind").first().alias("first"), pl.col("kind").last().alias("last")
    )
    assert (ends["first"] == int(K.PAGE_VIEW)).all()
    assert (ends["last"] == int(K.PAGE_LEAVE)).all()


def test_visitors_have_several_sessions_across_days() -> None:
    ev = traffic().events
    per = ev.group_by("visitor_id").agg(
        pl.col("session_id").n_unique().alias("n"), (pl.col("t") // 86_400_000).n_unique()
    )
    assert per["n"].max() >= 3  # type: ignore[operator]
    assert (per["t"] >= 2).sum() > 10
    assert per.height < ev["session_id"].n_unique()


def test_shapes_never_carry_a_value() -> None:
    ev = traffic().events
    typed = ev.filter(pl.col("kind").is_in([int(K.CHANGE), int(K.BLUR)]))
    shapes = typed["text"].cast(pl.String).unique().to_list()
    assert shapes and None not in shapes
    for s in shapes:
        assert not re.search(r"[0-8]|[b-zB-Z]", s), s
        assert len(s) == typed.filter(pl.col("text").cast(pl.String) == s)["a"][0]


def test_attributes_and_segments() -> None:
    ev = plain(traffic().events)
    attrs = ev.filter(pl.col("kind") == int(K.ATTRIBUTE))
    keys = set(attrs["target"].unique())
    assert {"locale", "timezone", "country", "utm_campaign", "utm_source", "utm_medium"} <= keys
    locales = set(attrs.filter(pl.col("target") == "locale")["text"].unique())
    assert {"nb-NO", "en-US", "de-DE", "sv-SE"} <= locales
    pv = ev.filter(pl.col("kind") == int(K.PAGE_VIEW))
    assert set(pv["a"].unique()) == {1, 2, 3}  # desktop, tablet, mobile
    urls = set(pv["target"].unique())
    assert {"/", "/search", "/cart", "/checkout", "/checkout/payment", "/confirmation"} <= urls
    assert any(u.startswith("/product/") for u in urls)
    assert any(u.startswith("/category/") for u in urls)
    # Mobile and tablet viewports are narrow, desktops wide.
    assert pv.filter(pl.col("a") == 3)["x"].max() < 500  # type: ignore[operator]
    assert pv.filter(pl.col("a") == 1)["x"].min() >= 1_300  # type: ignore[operator]
    names = set(ev.filter(pl.col("kind") == int(K.MILESTONE))["target"].unique())
    assert {"cart_add", "checkout_start", "order_placed"} <= names


def test_mouse_moves_are_sampled_like_the_snippet() -> None:
    ev = traffic().events.filter(pl.col("kind") == int(K.MOUSE_MOVE))
    d = ev.select(
        "session_id",
        dt=pl.col("t").diff().over("session_id"),
        dist=((pl.col("x").diff() ** 2 + pl.col("y").diff() ** 2).sqrt()).over("session_id"),
    ).drop_nulls()
    assert (d["dt"] >= 50).all()
    assert (d["dist"] >= 20).all()


def _resp_within(events: list[dict[str, Any]], k: int, ms: int) -> bool:
    t = events[k]["t"]
    for e in events[k + 1 :]:
        if e["t"] > t + ms:
            return False
        if e["kind"] in RESP:
            return True
    return False


def test_ordinary_clicks_are_answered() -> None:
    """Every interactive click not planted as a rage or dead click is answered in 800 ms."""
    truth = plain(traffic().truth)
    silent: set[tuple[str, int]] = set()
    for row in truth.filter(pl.col("kind").is_in(["rage_click", "dead_click"])).iter_rows(
        named=True
    ):
        silent.add((row["session_id"], row["t"]))
    checked = 0
    for sid, events in by_session().items():
        burst_until = -1
        for k, e in enumerate(events):
            if e["kind"] != int(K.CLICK) or not e["a"] & int(ClickFlag.INTERACTIVE):
                continue
            if (sid, e["t"]) in silent:
                burst_until = e["t"] + 2_000
                continue
            if e["t"] <= burst_until:
                continue
            assert _resp_within(events, k, 800), (sid, e)
            checked += 1
    assert checked > 1_000


def _at(sid: str, t: int, kind: EventKind) -> tuple[list[dict[str, Any]], int]:
    events = by_session()[sid]
    for k, e in enumerate(events):
        if e["t"] == t and e["kind"] == int(kind):
            return events, k
    raise AssertionError(f"no {kind.name} at {t} in {sid}")


def _page_of(events: list[dict[str, Any]], k: int) -> int:
    while events[k]["kind"] != int(K.PAGE_VIEW):
        k -= 1
    return k


def test_truth_points_at_real_events() -> None:
    truth = plain(traffic().truth)
    seen: dict[str, int] = defaultdict(int)
    for row in truth.iter_rows(named=True):
        kind, sid, t = row["kind"], row["session_id"], row["t"]
        seen[kind] += 1
        if kind in (
            "rage_click",
            "negative:stepper",
            "negative:carousel",
            "negative:double_click",
            "negative:triple_click",
        ):
            events, k = _at(sid, t, K.CLICK)
            n = int(row["detail"].split()[0])
            clicks = [e for e in events[k:] if e["kind"] == int(K.CLICK)][:n]
            assert all(c["target"] == row["target"] for c in clicks)
            for a, b in itertools.pairwise(clicks):
                assert b["t"] - a["t"] < 1_000
                assert np.hypot(b["x"] - a["x"], b["y"] - a["y"]) < 30
            last = clicks[-1]["t"]
            answered = [e for e in events[k:] if e["kind"] in RESP and t <= e["t"] <= last + 100]
            if kind == "rage_click":
                assert n >= 3 and not answered
                assert not [e for e in events[k:] if e["kind"] in RESP and e["t"] <= last + 3_000]
            elif kind == "negative:triple_click":
                assert [c["b"] for c in clicks] == [1, 2, 3] and clicks[0]["a"] == 0
            else:
                assert len(answered) >= n  # each click answered
        elif kind == "dead_click":
            events, k = _at(sid, t, K.CLICK)
            assert events[k]["a"] & int(ClickFlag.INTERACTIVE)
            assert events[k]["target"] == row["target"]
            assert not _resp_within(events, k, 4_000)
        elif kind == "error_click":
            events, k = _at(sid, t, K.CLICK)
            errs = [
                e
                for e in events[k:]
                if e["kind"] in (int(K.JS_ERROR), int(K.NETWORK_FAILURE)) and e["t"] <= t + 2_000
            ]
            assert errs
            assert not [
                e for e in events[k + 1 :] if e["kind"] == int(K.CLICK) and e["t"] <= errs[0]["t"]
            ]
        elif kind == "thrashed_cursor":
            events, k = _at(sid, t, K.MOUSE_MOVE)
            xs = [
                e["x"] for e in events[k:] if e["kind"] == int(K.MOUSE_MOVE) and e["t"] <= t + 1_100
            ]
            dx = np.sign(np.diff(xs))
            assert int((dx[1:] != dx[:-1]).sum()) >= 6
        elif kind == "excessive_scroll":
            events, k = _at(sid, t, K.SCROLL)
            pv = _page_of(events, k)
            ys = [e["y"] for e in events[pv + 1 :] if e["kind"] == int(K.SCROLL)]
            end = next(
                (j for j in range(pv + 1, len(events)) if events[j]["kind"] == int(K.PAGE_VIEW)),
                len(events),
            )
            ys = [e["y"] for e in events[pv + 1 : end] if e["kind"] == int(K.SCROLL)]
            d = np.sign(np.diff([0, *ys]))
            d = d[d != 0]
            assert int((d[1:] != d[:-1]).sum()) >= 12
        elif kind == "quick_back":
            events, k = _at(sid, t, K.PAGE_VIEW)
            b = _page_of(events, k - 1)
            a = _page_of(events, b - 1)
            assert events[k]["target"] == events[a]["target"] == row["target"]
            assert events[b]["target"] == row["page_url"] != row["target"]
            assert t - events[b]["t"] < 5_000
            assert not [
                e
                for e in events[b:k]
                if e["kind"]
                in (int(K.CLICK), int(K.FOCUS), int(K.CHANGE), int(K.SUBMIT), int(K.SCROLL))
            ]
        elif kind == "form_error":
            events, k = _at(sid, t, K.VALIDATION_ERROR)
            assert events[k]["target"] == row["field"]
            assert events[k]["text"] == row["detail"]
        elif kind == "failed_submit":
            events, k = _at(sid, t, K.SUBMIT)
            later = events[k + 1 :]
            errored = [
                e for e in later if e["kind"] == int(K.VALIDATION_ERROR) and e["t"] <= t + 5_000
            ]
            success = [
                e
                for e in later
                if e["kind"] in (int(K.PAGE_VIEW), int(K.MILESTONE)) and e["t"] <= t + 10_000
            ]
            assert errored or (not success and events[-1]["t"] > t + 10_000)
        elif kind == "field_refill":
            events, k = _at(sid, t, K.CHANGE)
            f = row["field"]
            pv = _page_of(events, k)
            before = [e["kind"] for e in events[pv:k] if e["target"] == f]
            assert int(K.CHANGE) in before
            first = max(
                j
                for j, e in enumerate(events[pv:k])
                if e["kind"] == int(K.CHANGE) and e["target"] == f
            )
            assert int(K.BLUR) in [
                e["kind"] for e in events[pv + first : k] if e["target"] == f
            ] or int(K.SUBMIT) in [e["kind"] for e in events[pv + first : k]]
        elif kind == "form_abandon":
            events = by_session()[sid]
            touches = [
                j
                for j, e in enumerate(events)
                if e["kind"] in (int(K.FOCUS), int(K.CHANGE))
                and events[_page_of(events, j)]["target"] == row["page_url"]
            ]
            last = touches[-1]
            assert events[last]["t"] == t and events[last]["target"] == row["field"]
            for j in range(last, len(events)):
                if events[j]["kind"] == int(K.SUBMIT):
                    assert events[_page_of(events, j)]["target"] != row["page_url"] or not [
                        e for e in events[j:] if e["kind"] in (int(K.PAGE_VIEW), int(K.MILESTONE))
                    ]
        elif kind == "funnel_abandon":
            events, k = _at(sid, t, K.PAGE_VIEW)
            steps = ["/cart", "/checkout", "/checkout/payment", "/confirmation"]
            assert events[k]["target"] == row["page_url"]
            urls = [e["target"] for e in events if e["kind"] == int(K.PAGE_VIEW)]
            assert "/confirmation" not in urls
            assert max(steps.index(u) for u in urls if u in steps) == steps.index(row["page_url"])
        else:
            raise AssertionError(kind)
    assert set(seen) == set(synth.KINDS)


def test_implied_struggles_are_in_the_truth() -> None:
    """A failed submit by a validation error is also a form error; giving up after it is a
    form abandon and a funnel abandon."""
    truth = plain(traffic().truth)
    per = truth.group_by("session_id").agg(pl.col("kind"))
    for kinds in per["kind"].to_list():
        if "failed_submit" in kinds:
            assert "form_error" in kinds or "form_abandon" in kinds
        if "form_abandon" in kinds and "failed_submit" in kinds:
            assert "funnel_abandon" in kinds
    # Every session that reached /cart and not /confirmation has a funnel_abandon row.
    ev = plain(traffic().events).filter(pl.col("kind") == int(K.PAGE_VIEW))
    reached = ev.group_by("session_id").agg(
        pl.col("target").is_in(["/cart"]).any().alias("cart"),
        pl.col("target").is_in(["/confirmation"]).any().alias("done"),
    )
    left = set(reached.filter(pl.col("cart") & ~pl.col("done"))["session_id"])
    assert left == set(truth.filter(pl.col("kind") == "funnel_abandon")["session_id"])


def test_events_target_count() -> None:
    for want in (20_000, 200_000):
        got = synth.generate(events=want, seed=4).events.height
        assert abs(got - want) <= want * 0.1, (got, want)


def test_smoke_one_million_events() -> None:
    tr = synth.generate(events=1_000_000, seed=7)
    check(tr.events)
    assert 900_000 <= tr.events.height <= 1_100_000
    assert tr.truth.height > 1_000


def test_struggle_rate_zero_plants_nothing_but_natural_drop_offs() -> None:
    truth = synth.generate(300, seed=5, struggle_rate=0.0).truth
    kinds = set(truth["kind"].unique())
    assert kinds <= {"funnel_abandon", *synth.NEGATIVE_KINDS}
    assert "funnel_abandon" in kinds


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sessions": -1},
        {"events": 0},
        {"days": 0},
        {"struggle_rate": 1.5},
        {"start_ms": -5},
        {"seed": -1},
        {"sessions": 2.5},
    ],
)
def test_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        synth.generate(**kwargs)


def test_kernel_matches_plain_python(tmp_path: Any) -> None:
    """The kernel run as plain Python (NUMBA_DISABLE_JIT=1, numpy's legacy RNG, which numba
    reproduces) gives the same frames: the compiled kernel has no overflow or cast surprises."""
    out = tmp_path / "py"
    code = (
        "import sys; from cemreplay import synth; "
        "tr = synth.generate(12, seed=21, struggle_rate=1.0); "
        "tr.events.write_ipc(sys.argv[1] + '.events'); tr.truth.write_ipc(sys.argv[1] + '.truth')"
    )
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    subprocess.run([sys.executable, "-c", code, str(out)], check=True, env=env, timeout=600)
    jit = synth.generate(12, seed=21, struggle_rate=1.0)
    assert plain(pl.read_ipc(f"{out}.events")).equals(plain(jit.events))
    assert plain(pl.read_ipc(f"{out}.truth")).equals(plain(jit.truth))


def test_zero_sessions() -> None:
    tr = synth.generate(0)
    assert tr.events.height == 0 and tr.events.schema == EVENT_SCHEMA
    assert tr.truth.height == 0 and tr.truth.schema == synth.TRUTH_SCHEMA


def test_a_missing_element_is_never_clicked() -> None:
    """Planting on a page without the element must click nothing: a row of -1 once indexed
    the element table's last row and produced clicks on a garbage target (seen once in 100k
    sessions: a carousel look-alike clicking "/")."""
    from cemreplay import _synth_kernel as k

    st = np.zeros(k._NST, np.int64)
    el = np.zeros((32, 6), np.int64)
    el[-1] = [7, 100, 100, 40, 40, 0]  # what a -1 row would pick
    ev = np.zeros((8, 64), np.int32)  # the event buffer, as the kernel makes it
    assert k._burst(ev, st, el, -1, 3, 250, 600, 3, True) == -1
    k._click(ev, st, el, -1)
    assert st[k._P] == 0  # no event written at all


def test_clicks_name_elements_and_negatives_match_their_clicks() -> None:
    """A look-alike planted on a page without its element must not click a garbage row (a
    negative row index once picked the element table's last row: a click on "/")."""
    tr = synth.generate(sessions=20_000, seed=7)
    clicks = tr.events.filter(pl.col("kind") == int(EventKind.CLICK)).select(
        pl.col("session_id").cast(pl.String), "t", pl.col("target").cast(pl.String)
    )
    assert clicks.filter(pl.col("target").str.starts_with("/")).height == 0
    neg = tr.truth.filter(pl.col("kind").str.starts_with("negative:")).select(
        pl.col("session_id").cast(pl.String), "t", pl.col("target").alias("planted")
    )
    first = neg.join(clicks, on=["session_id", "t"], how="left")
    assert first.filter(pl.col("target") != pl.col("planted")).height == 0
    assert first["target"].null_count() == 0
