"""Reports: hand-computable cases, agreement between streamed and in-memory facts, segments."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from cemreplay import reports, synth, wire
from cemreplay.errors import ConfigError
from cemreplay.reports import _stats
from cemreplay.schema import EventKind
from cemreplay.store import open_store
from tests.detector_tables import e, pv, table

K = EventKind
T0 = 1_767_225_600_000  # 2026-01-01T00:00Z, a Thursday


def _field(t: int, name: str, length: int, shape: str) -> list[dict[str, object]]:
    """Focus, change and blur of one field, 1 s in it."""
    return [
        e(t, K.FOCUS, target=name),
        e(t + 900, K.CHANGE, target=name, a=length, text=shape),
        e(t + 1000, K.BLUR, target=name, a=length, text=shape),
    ]


def _three_sessions() -> pl.DataFrame:
    """A: fills email and phone, submits, next page (completes).
    B: fills email and phone, submit rejected on phone, leaves (abandons at phone).
    C: fills email and phone, rejected, fixes phone, submits again, next page (completes,
       resubmits, one refill and one return on phone).
    D: views the checkout and leaves (a view, not a starter)."""
    nb = "+99 999 99 999"
    a = [pv(T0, "/checkout"), *_field(T0 + 2_000, "email", 12, "aaaa@aaaa.aa"),
         *_field(T0 + 5_000, "phone", 10, "9999999999"),
         e(T0 + 8_000, K.SUBMIT, target="form#shipping"), pv(T0 + 8_500, "/checkout/payment")]
    b = [pv(T0, "/checkout"), *_field(T0 + 1_000, "email", 12, "aaaa@aaaa.aa"),
         *_field(T0 + 4_000, "phone", 14, nb),
         e(T0 + 7_000, K.SUBMIT, target="form#shipping"),
         e(T0 + 7_020, K.VALIDATION_ERROR, target="phone", text="Enter a valid US phone number"),
         e(T0 + 40_000, K.PAGE_LEAVE)]
    c = [pv(T0, "/checkout"), *_field(T0 + 3_000, "email", 12, "aaaa@aaaa.aa"),
         *_field(T0 + 6_000, "phone", 14, nb),
         e(T0 + 9_000, K.SUBMIT, target="form#shipping"),
         e(T0 + 9_010, K.VALIDATION_ERROR, target="phone", text="Enter a valid US phone number"),
         *_field(T0 + 12_000, "phone", 10, "9999999999"),
         e(T0 + 15_000, K.SUBMIT, target="form#shipping"), pv(T0 + 15_400, "/checkout/payment")]
    d = [pv(T0, "/checkout"), e(T0 + 20_000, K.PAGE_LEAVE)]
    return table({"A": a, "B": b, "C": c, "D": d})  # fmt: skip


@pytest.fixture(scope="module")
def small() -> reports.Facts:
    return reports.facts_from_events(_three_sessions())


def test_form_counts_by_hand(small: reports.Facts) -> None:
    f = reports.forms(small).row(0, named=True)
    assert f["form"] == "form#shipping"
    assert (f["views"], f["starters"], f["submitters"], f["resubmitters"]) == (4, 3, 3, 1)
    assert (f["completions"], f["abandons"]) == (2, 1)
    assert f["drop_off_field"] == "phone" and f["drop_off_share"] == 1.0
    assert f["start_rate"] == pytest.approx(0.75)
    assert f["completion_rate"] == pytest.approx(2 / 3)
    # A: first touch 2 s after the page view, last submit at 8 s
    # C: first touch at 3 s, last submit at 15 s -> median of 6 s and 12 s
    assert f["median_complete_ms"] == pytest.approx(9_000)


def test_field_metrics_by_hand(small: reports.Facts) -> None:
    ff = reports.form_fields(small, "form#shipping")
    phone = ff.filter(pl.col("field") == "phone").row(0, named=True)
    email = ff.filter(pl.col("field") == "email").row(0, named=True)
    assert phone["starters"] == 3 and email["starters"] == 3
    assert phone["errors"] == 2 and phone["sessions_with_errors"] == 2
    assert phone["refills"] == 1  # C changed it twice
    assert phone["returns"] == 1 and phone["sessions_returning"] == 1  # C came back, filled
    assert phone["drop_offs"] == 1 and phone["drop_off_share"] == 1.0
    assert email["drop_offs"] == 0
    assert phone["blank_on_submit"] == 0
    # 1 s in the field per visit: A 1 s, B 1 s, C 2 s
    assert phone["median_time_ms"] == pytest.approx(1_000)
    # the pause before the first focus: A 2 s after email's blur at 3 s (5 s - 3 s = 2 s),
    # B 4 s - 2 s = 2 s, C 6 s - 4 s = 2 s
    assert phone["median_hesitation_ms"] == pytest.approx(2_000)
    # email: A 2 s after the page view, B 1 s, C 3 s
    assert email["median_hesitation_ms"] == pytest.approx(2_000)


def test_validation_errors_by_hand(small: reports.Facts) -> None:
    v = reports.validation_errors(small).row(0, named=True)
    assert (v["form"], v["field"], v["errors"], v["sessions"]) == ("form#shipping", "phone", 2, 2)
    assert v["top_shapes"] == "+99 999 99 999 (2)"
    assert v["top_messages"] == "Enter a valid US phone number (2)"


def test_blank_on_submit_counts_untouched_fields() -> None:
    s = [pv(T0, "/checkout"), *_field(T0 + 1_000, "email", 12, "aaaa@aaaa.aa"),
         *_field(T0 + 3_000, "phone", 0, ""),
         e(T0 + 5_000, K.SUBMIT, target="form#shipping"), pv(T0 + 5_500, "/next")]
    full = [pv(T0, "/checkout"), *_field(T0 + 1_000, "email", 12, "aaaa@aaaa.aa"),
            *_field(T0 + 3_000, "phone", 8, "99999999"), *_field(T0 + 5_000, "city", 4, "Aaaa"),
            e(T0 + 7_000, K.SUBMIT, target="form#shipping"), pv(T0 + 7_500, "/next")]  # fmt: skip
    facts = reports.facts_from_events(table({"S": s, "F": full}))
    ff = reports.form_fields(facts, "form#shipping")
    blank = dict(ff.select("field", "blank_on_submit").iter_rows())
    # S left phone empty and never touched city; F filled all three
    assert blank == {"email": 0, "phone": 1, "city": 1}


def test_abandoners_vs_completers_small(small: reports.Facts) -> None:
    t = reports.abandoners_vs_completers(small, "form#shipping")
    phone = t.filter(pl.col("field") == "phone").row(0, named=True)
    assert (phone["abandoners"], phone["completers"]) == (1, 2)
    assert phone["error_rate_abandoners"] == 1.0
    assert phone["error_rate_completers"] == 0.5


def test_wilson_and_tests_match_known_values() -> None:
    lo, hi = _stats.wilson(81, 263)  # Wilson (1927) / Newcombe (1998) worked example range
    assert lo == pytest.approx(0.2553, abs=1e-4) and hi == pytest.approx(0.3662, abs=1e-4)
    assert _stats.wilson(0, 0) == (None, None)
    lo, hi = _stats.wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    df = pl.DataFrame({"x": [81, 0], "n": [263, 0]}).with_columns(
        *_stats.wilson_exprs("x", "n", "s")
    )
    assert df["s_lo"][0] == pytest.approx(0.2553, abs=1e-4) and df["s"][1] is None
    assert _stats.two_proportion_p(5, 5, 5, 5) is None
    assert _stats.two_proportion_p(50, 100, 50, 100) == pytest.approx(1.0)
    assert _stats.mann_whitney_p([1, 1], [1, 1]) is None


# -- generated traffic ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def traffic() -> synth.Traffic:
    return synth.generate(1_500, seed=5)


@pytest.fixture(scope="module")
def facts(traffic: synth.Traffic) -> reports.Facts:
    return reports.facts_from_events(traffic.events)


def test_streamed_store_facts_equal_in_memory(
    traffic: synth.Traffic, facts: reports.Facts, tmp_path: Path
) -> None:
    with open_store(tmp_path / "s.db") as st:
        st.put_batches(wire.encode(traffic.events), scrub=False)
        st.analyze()
        streamed = reports.from_store(st, chunk_visitors=150)  # several chunks
        parallel = reports.from_store(st, chunk_visitors=400, workers=2)
        with pytest.raises(ConfigError, match="workers"):
            reports.from_store(st, workers=0)
    assert reports.forms(parallel).equals(reports.forms(facts))
    assert reports.funnel_drops(parallel).equals(reports.funnel_drops(facts))
    for name in ("forms", "form_fields", "funnel_steps", "goal_summary", "validation_errors"):
        a = getattr(reports, name)(facts)
        b = getattr(reports, name)(streamed)
        assert a.height > 0, name
        assert a.equals(b), name
    a, b = reports.struggle_by_page(facts), reports.struggle_by_page(streamed)
    assert a.drop("watch").equals(b.drop("watch"))


def test_struggle_by_page_counts_what_the_findings_say(facts: reports.Facts) -> None:
    t = reports.struggle_by_page(facts)
    f = facts.findings.with_columns(pl.col("page").fill_null("(unknown)"))
    direct = f.group_by("page").agg(pl.col("session_id").n_unique().alias("n"))
    got = dict(t.select("page", "affected").iter_rows())
    assert got == dict(direct.iter_rows())
    # the share's interval holds it; visitors of the page bound the affected
    assert (t["share_lo"] <= t["share"]).all() and (t["share"] <= t["share_hi"]).all()
    assert (t["affected"] <= t["sessions"]).all()
    kinds = [k for k in t.columns if k in facts.findings["kind"].unique().to_list()]
    assert (t.select(pl.sum_horizontal(kinds)).to_series() == t["findings"]).all()


def test_segments_add_up(facts: reports.Facts) -> None:
    total = reports.cart_abandonment(facts).row(0, named=True)
    by = reports.cart_abandonment(facts, by="country")
    assert set(by["country"]) == {"NO", "US", "DE", "SE", "GB", "DK"}
    assert by["carts"].sum() == total["carts"] and by["abandoned"].sum() == total["abandoned"]
    steps = reports.segment(reports.funnel_steps, facts, ["device"])
    assert steps.columns[0] == "device"
    assert steps.filter(pl.col("step") == 1)["entered"].sum() == total["carts"]


def test_norwegian_promotion_is_one_call(facts: reports.Facts) -> None:
    got = reports.cart_abandonment(facts, where={"country": "NO", "campaign": "spring-promo"})
    s = facts.sessions.filter((pl.col("country") == "NO") & (pl.col("campaign") == "spring-promo"))
    units = facts.funnel_units.join(s, on="session_id", how="semi")
    n = len(reports.CHECKOUT)
    assert got["carts"][0] == units.height > 0
    assert got["abandoned"][0] == int((units["level"] < n).sum())


def test_where_filters_by_time_and_rejects_unknown(facts: reports.Facts) -> None:
    lo, hi = facts.span()  # type: ignore[misc]
    mid = (lo + hi) // 2
    late = facts.where(since=mid)
    assert late.sessions.height == int((facts.sessions["first_ts"] >= mid).sum())
    assert late.findings["session_id"].is_in(late.sessions["session_id"].implode()).all()
    with pytest.raises(ConfigError, match="cannot filter on 'colour'"):
        facts.where(colour="red")
    with pytest.raises(ConfigError, match="cannot break down by 'colour'"):
        reports.forms(facts, by="colour")


def test_time_and_goal_tables_add_up(facts: reports.Facts) -> None:
    tr = reports.traffic_by_hour(facts, tz="Europe/Oslo")
    assert tr.height == 168 and tr["sessions"].sum() == facts.sessions.height
    utc = reports.traffic_by_hour(facts)
    # Oslo is UTC+1 in January: every cell moves one hour on
    assert tr.filter(pl.col("hour") == 1)["sessions"].sum() == utc.filter(
        pl.col("hour") == 0
    )["sessions"].sum()
    sh = reports.struggle_by_hour(facts)
    assert sh["sessions"].sum() == facts.sessions.height
    dist = reports.clicks_to_goal_distribution(facts)
    summary = reports.goal_summary(facts)
    for goal, reached in summary.select("goal", "reached").iter_rows():
        d = dist.filter(pl.col("goal") == goal)
        assert d["sessions"].sum() == reached
        assert d["cumulative"][-1] == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="time zone"):
        reports.traffic_by_hour(facts, tz="Mars/Olympus")


def test_phone_separates_abandoners_from_completers(facts: reports.Facts) -> None:
    # the generator rejects non-US phone numbers: the phone field is where abandoners and
    # completers differ most, and significantly
    t = reports.abandoners_vs_completers(facts, "form#shipping")
    top = t.row(0, named=True)
    assert top["field"] == "phone"
    assert top["p_errors"] < 0.001
    assert top["error_rate_abandoners"] > top["error_rate_completers"]


def test_worst_sessions_sorted_with_kinds(facts: reports.Facts) -> None:
    w = reports.worst_sessions(facts, 5)
    assert w.height == 5
    assert w["score"].to_list() == sorted(w["score"].to_list(), reverse=True)
    assert w["score"][0] == facts.sessions["score"].max()
    assert all(k for k in w["kinds"].to_list())
