"""Page views: one row per page view with dwell (visible/hidden), scroll depth, clicks, errors."""

from __future__ import annotations

import numpy as np
import polars as pl

from cemreplay.events import check
from cemreplay.journeys._scan import ints, page_aggregates
from cemreplay.journeys._work import Work, prepare, rows
from cemreplay.journeys.rules import SessionRules, UrlRules
from cemreplay.schema import EventKind

__all__ = ["page_table", "page_views"]

K = EventKind

#: Column order of :func:`page_views`.
COLUMNS = [
    "session_id", "page_view", "split_session_id", "visitor_id", "url", "page", "referrer",
    "navigation", "start", "end", "dwell_ms", "visible_ms", "hidden_ms", "max_scroll_depth",
    "events", "clicks", "errors", "validation_errors",
]  # fmt: skip


def page_table(work: Work, urls: UrlRules) -> pl.DataFrame:
    """Page views of a prepared working state, in working order, with the private ``_gs``
    (session of the first event) and ``_page`` (page number: equal pages, equal numbers)."""
    ev = work.ev
    first, ref, ordinal, gs, start, dwell, hidden, counts, depth = page_aggregates(
        work.sid, work.starts, work.t, work.kind, ints(ev["y"], np.int32),
        ints(ev["a"], np.int32), ints(ev["b"], np.int32), work.n_pages,
    )  # fmt: skip
    pages = work.pages_at(ref[ref >= 0], urls)
    ref_code = work.tcode[np.where(ref >= 0, ref, 0)]
    page = np.where(ref >= 0, pages.of(ref_code), -1)
    ref_s = rows(ref)
    names = work.names()
    gs_s = pl.Series(gs)
    return pl.DataFrame(
        {
            "session_id": names["session_id"].gather(gs_s),
            "page_view": ordinal,
            "split_session_id": names["split_session_id"].gather(gs_s),
            "visitor_id": ev["visitor_id"].gather(pl.Series(first)).cast(pl.String),
            "url": pages.urls(ref_code, ref >= 0),
            "page": pages.strings(page),
            "referrer": ev["text"].gather(ref_s).cast(pl.String),
            "navigation": ev["b"].gather(ref_s),
            "start": start,
            "end": start + dwell,
            "dwell_ms": dwell,
            "visible_ms": dwell - hidden,
            "hidden_ms": hidden,
            "max_scroll_depth": pl.Series(depth, nan_to_null=True),
            "events": counts[:, 0],
            "clicks": counts[:, 1],
            "errors": counts[:, 2],
            "validation_errors": counts[:, 3],
            "_gs": gs,
            "_page": page,
        }
    )


def page_views(events: pl.DataFrame, rules: SessionRules | None = None) -> pl.DataFrame:
    """One row per page view, referenced by ``(session_id, page_view)``.

    A page view runs from its ``PAGE_VIEW`` event to the next one in the snippet session (the
    last one to the session's last event). Events before a session's first ``PAGE_VIEW``
    belong to page view 0, as in :func:`with_page_views`.

    Parameters
    ----------
    events : pl.DataFrame
        An event table in any row order; repeated events count once.
    rules : SessionRules, optional
        Session rules (for ``split_session_id``) and ``rules.urls`` for the ``page`` column.

    Returns
    -------
    pl.DataFrame
        Sorted by ``session_id`` then ``page_view``. Columns: ``session_id`` (snippet's),
        ``page_view`` (0-based ordinal), ``split_session_id`` (session of its first event),
        ``visitor_id``, ``url`` (raw), ``page`` (normalised), ``referrer``, ``navigation``
        (NavigationType), ``start``/``end`` (ms), ``dwell_ms`` = ``visible_ms`` +
        ``hidden_ms`` (time between ``VISIBILITY_HIDDEN`` and the next
        ``VISIBILITY_VISIBLE``), ``max_scroll_depth`` (max of ``(scroll_y + viewport) /
        page_height``, 0..1, null without scrolls), ``events``, ``clicks``, ``errors`` (JS +
        network), ``validation_errors``.

    Examples
    --------
    >>> import cemreplay.events as ev
    >>> from cemreplay.journeys import page_views
    >>> page_views(ev.empty()).columns[:2]
    ['session_id', 'page_view']
    """
    check(events)
    rules = rules or SessionRules()
    work = prepare(events, rules)
    table = page_table(work, rules.urls)
    if work.in_lexical_order():  # already sorted by session_id, then page_view
        return table.select(COLUMNS)
    rank = pl.Series(work.rank()).gather(table["_gs"])
    return table.select(COLUMNS).sort(rank, "page_view")
