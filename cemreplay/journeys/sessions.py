"""Sessions: snippet sessions split by the rules, one row each, with segments and conversion."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from cemreplay.events import check
from cemreplay.journeys._urls import goal_mask, normalise
from cemreplay.journeys._work import prepare, run_aggregate, split_id
from cemreplay.journeys.rules import Goal, SessionRules, UrlRules
from cemreplay.schema import DeviceClass, EventKind

__all__ = ["DEVICE", "goal_flag", "session_table", "sessions"]

K = EventKind
#: Device class names, in DeviceClass order.
DEVICE = pl.Enum([d.name.lower() for d in DeviceClass])
_ERRORS = (int(K.JS_ERROR), int(K.NETWORK_FAILURE))
#: Output column <- ATTRIBUTE key.
_SEGMENTS = {
    "locale": "locale",
    "timezone": "timezone",
    "campaign": "utm_campaign",
    "source": "utm_source",
    "medium": "utm_medium",
    "_country_attr": "country",
}


def goal_flag(work: pl.DataFrame, goal: Goal, urls: UrlRules) -> pl.Expr:
    """Expression: True on rows of ``work`` that reach ``goal`` (milestone or page view)."""
    if goal.milestone is not None:
        return goal_mask(goal, pl.col("kind"), pl.col("target"), pl.col("target"))
    raw = work.filter(pl.col("kind") == int(K.PAGE_VIEW))["target"].unique().drop_nulls()
    frame = pl.DataFrame({"raw": raw.cast(pl.String)}).with_columns(
        n=normalise(raw, urls)
    )
    hit = frame.filter(goal_mask(goal, pl.lit(int(K.PAGE_VIEW)), pl.lit(None), pl.col("n")))
    return (pl.col("kind") == int(K.PAGE_VIEW)) & pl.col("target").cast(pl.String).is_in(
        hit["raw"].implode()
    ).fill_null(False)


def session_table(
    work: pl.DataFrame,
    rules: SessionRules,
    country_lookup: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """Sessions from a prepared working frame, ordered by ``_gs`` (private columns kept)."""
    kind = pl.col("kind")
    work = work.with_columns(_goal=goal_flag(work, rules.goal, rules.urls))
    agg = run_aggregate(
        work,
        "_gs",
        first={
            "session_id": pl.col("session_id"),
            "visitor_id": pl.col("visitor_id"),
            "_sid": pl.col("_sid"),
            "_piece": pl.col("_piece"),
            "start": pl.col("_tm"),
            "_entry": pl.col("_ref"),
        },
        last={"end": pl.col("_tm"), "_exit": pl.col("_ref")},
        sums={
            "page_views": kind == int(K.PAGE_VIEW),
            "events": pl.col("kind").is_not_null(),
            "clicks": kind == int(K.CLICK),
            "errors": kind.is_in(_ERRORS),
            "validation_errors": kind == int(K.VALIDATION_ERROR),
            "milestones": kind == int(K.MILESTONE),
        },
    ).with_columns(
        pl.col("page_views", "events", "clicks", "errors", "validation_errors", "milestones")
        .cast(pl.UInt32)
    )
    goals = (
        work.filter(pl.col("_goal"))
        .group_by("_gs")
        .agg(converted_at=pl.col("t").first())
    )
    agg = agg.join(goals, on="_gs", how="left", maintain_order="left")
    target, device = work["target"], work["a"]
    entry = target.gather(agg["_entry"])
    out = agg.with_columns(
        split_session_id=split_id(pl.col("session_id"), pl.col("_piece")),
        piece=(pl.col("_piece") + 1).cast(pl.UInt32),
        duration_ms=pl.col("end") - pl.col("start"),
        entry_page=normalise(entry, rules.urls),
        exit_page=normalise(target.gather(agg["_exit"]), rules.urls),
        device=pl.Series(device.gather(agg["_entry"])).clip(0, len(DeviceClass) - 1)
        .cast(pl.UInt32)
        .replace_strict(list(range(len(DeviceClass))), DEVICE.categories, return_dtype=DEVICE),
        converted=pl.col("converted_at").is_not_null(),
    )
    out = _segments(work, out)
    country = pl.col("_country_attr")
    if country_lookup:
        looked = pl.col("session_id").cast(pl.String).replace_strict(
            dict(country_lookup), default=None, return_dtype=pl.String
        )
        country = looked.fill_null(country)
    region = pl.col("locale").str.extract(r"^[A-Za-z]{2,3}[-_](?:[A-Za-z]{4}[-_])?([A-Za-z]{2})\b")
    out = out.with_columns(country=country.fill_null(region.str.to_uppercase()))
    return out.drop("_country_attr")


def _segments(work: pl.DataFrame, table: pl.DataFrame) -> pl.DataFrame:
    """Per session: the first value set in it, else the last one set earlier in its snippet
    session (the snippet only re-sends an attribute when it changes)."""
    attrs = work.filter(
        (pl.col("kind") == int(K.ATTRIBUTE))
        & pl.col("target").cast(pl.String).is_in(list(_SEGMENTS.values()))
    ).select("_gs", key=pl.col("target").cast(pl.String), v=pl.col("text").cast(pl.String))
    for col, key in _SEGMENTS.items():
        per = (
            attrs.filter(pl.col("key") == key)
            .group_by("_gs")
            .agg(_f=pl.col("v").drop_nulls().first(), _l=pl.col("v").drop_nulls().last())
        )
        table = table.join(per, on="_gs", how="left", maintain_order="left").with_columns(
            pl.coalesce(
                pl.col("_f"), pl.col("_l").shift(1).forward_fill().over("_sid")
            ).alias(col)
        ).drop("_f", "_l")
    return table


#: Column order of :func:`sessions`.
COLUMNS = [
    "split_session_id", "session_id", "visitor_id", "piece", "start", "end", "duration_ms",
    "entry_page", "exit_page", "page_views", "events", "clicks", "errors", "validation_errors",
    "milestones", "device", "locale", "timezone", "country", "campaign", "source", "medium",
    "converted", "converted_at",
]  # fmt: skip


def sessions(
    events: pl.DataFrame,
    rules: SessionRules | None = None,
    *,
    country_lookup: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """One row per session: snippet sessions split by inactivity, length, campaign, midnight.

    Parameters
    ----------
    events : pl.DataFrame
        An event table in any row order; repeated events (same ``session_id, batch, i``)
        count once.
    rules : SessionRules, optional
        Splitting and conversion rules; default :class:`SessionRules` (30 min inactivity,
        24 h maximum, goal ``order_placed``). Presets: ``GA4``, ``POSTHOG``, ``MATOMO``.
    country_lookup : mapping of str to str, optional
        Snippet ``session_id`` -> country code (e.g. from geo-IP at the collector). Wins over
        a ``country`` attribute, which wins over the region of ``locale`` (``en-GB`` -> GB).

    Returns
    -------
    pl.DataFrame
        Sorted by visitor, start time and id, so one visitor's sessions are in order. Columns:
        ``split_session_id`` (``<sid>`` for the first piece, ``<sid>~2`` for the next...),
        ``session_id`` (the snippet's, for findings and support look-ups), ``visitor_id``,
        ``piece`` (1-based), ``start``/``end`` (ms, running maximum of ``t``),
        ``duration_ms``, ``entry_page``/``exit_page`` (normalised by ``rules.urls``),
        ``page_views``, ``events``, ``clicks``, ``errors`` (JS errors + network failures),
        ``validation_errors``, ``milestones``, ``device``, ``locale``, ``timezone``,
        ``country``, ``campaign``/``source``/``medium`` (``utm_*``), ``converted``,
        ``converted_at`` (time of the first goal event).

    Examples
    --------
    >>> import cemreplay.events as ev
    >>> from cemreplay.journeys import sessions, POSTHOG
    >>> sessions(ev.empty(), POSTHOG).height
    0
    """
    check(events)
    rules = rules or SessionRules()
    table = session_table(prepare(events, rules), rules, country_lookup)
    return (
        table.select(COLUMNS)
        .with_columns(pl.col("session_id", "visitor_id").cast(pl.String))
        .sort("visitor_id", "start", "split_session_id")
    )
