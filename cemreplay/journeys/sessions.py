"""Sessions: snippet sessions split by the rules, one row each, with segments and conversion."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import polars as pl

from cemreplay.events import check
from cemreplay.journeys._scan import session_aggregates
from cemreplay.journeys._work import Work, prepare, rows
from cemreplay.journeys.rules import Goal, SessionRules, UrlRules
from cemreplay.schema import DeviceClass, EventKind

__all__ = ["DEVICE", "goal_codes", "session_table", "sessions"]

K = EventKind
#: Device class names, in DeviceClass order.
DEVICE = pl.Enum([d.name.lower() for d in DeviceClass])
#: The count columns, in the order of ``session_aggregates``' counts.
_COUNTS = ("page_views", "events", "clicks", "errors", "validation_errors", "milestones")
#: Output column <- ATTRIBUTE key.
_SEGMENTS = {
    "locale": "locale",
    "timezone": "timezone",
    "campaign": "utm_campaign",
    "source": "utm_source",
    "medium": "utm_medium",
    "_country_attr": "country",
}


def goal_codes(work: Work, goal: Goal, urls: UrlRules) -> tuple[int, npt.NDArray[np.bool_]]:
    """The kind of a goal row and, per target code, whether a row of that kind reaches
    ``goal`` (a milestone name or a page pattern matched against normalised URLs)."""
    if goal.milestone is not None:
        code = int(work.code("target", goal.milestone))
        table = np.zeros(code + 1, dtype=np.bool_)
        table[code] = True
        return int(K.MILESTONE), table
    return int(K.PAGE_VIEW), work.pages(urls).matching(goal)


def session_table(
    work: Work,
    rules: SessionRules,
    country_lookup: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """Sessions of a prepared working state, in working order (one scan, then per-session
    gathers)."""
    ev = work.ev
    goal_kind, goal_table = goal_codes(work, rules.goal, rules.urls)
    seg_codes = np.array([work.code("target", key) for key in _SEGMENTS.values()], np.uint32)
    t0, t1, entry, exit_, counts, conv, seg = session_aggregates(
        work.sid, work.starts, work.t, work.kind, work.tcode, work.xcode,
        goal_kind, goal_table, seg_codes,
    )  # fmt: skip
    ends = np.concatenate([entry, exit_])
    pages = work.pages_at(ends[ends >= 0], rules.urls)
    entry_code = work.tcode[np.where(entry >= 0, entry, 0)]
    exit_code = work.tcode[np.where(exit_ >= 0, exit_, 0)]
    device = ev["a"].gather(rows(entry)).clip(0, len(DeviceClass) - 1).cast(pl.UInt32)
    names = work.names()
    cols: dict[str, pl.Series | npt.NDArray[np.generic]] = {
        "session_id": names["session_id"],
        "visitor_id": names["visitor_id"],
        "split_session_id": names["split_session_id"],
        "start": t0,
        "end": t1,
        "entry_page": pages.strings(np.where(entry >= 0, pages.of(entry_code), -1)),
        "exit_page": pages.strings(np.where(exit_ >= 0, pages.of(exit_code), -1)),
    }
    for j, name in enumerate(_COUNTS):
        cols[name] = counts[:, j]
    cols["device"] = device.replace_strict(
        list(range(len(DeviceClass))), DEVICE.categories, return_dtype=DEVICE
    )
    cols["converted_at"] = work.t[np.where(conv >= 0, conv, 0)]
    text = ev["text"]
    for j, col in enumerate(_SEGMENTS):
        cols[col] = text.gather(rows(seg[:, j])).cast(pl.String)
    out = pl.DataFrame(cols).with_columns(
        piece=pl.Series(work.piece + 1),
        duration_ms=pl.col("end") - pl.col("start"),
        converted=pl.Series(conv >= 0),
        converted_at=pl.when(pl.Series(conv >= 0)).then(pl.col("converted_at")),
    )
    country = pl.col("_country_attr")
    if country_lookup:
        looked = pl.col("session_id").cast(pl.String).replace_strict(
            dict(country_lookup), default=None, return_dtype=pl.String
        )
        country = looked.fill_null(country)
    region = pl.col("locale").str.extract(r"^[A-Za-z]{2,3}[-_](?:[A-Za-z]{4}[-_])?([A-Za-z]{2})\b")
    out = out.with_columns(country=country.fill_null(region.str.to_uppercase()))
    return out.drop("_country_attr")


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
    return table.select(COLUMNS).sort("visitor_id", "start", "split_session_id")
