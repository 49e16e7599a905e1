"""Page views: one row per page view with dwell (visible/hidden), scroll depth, clicks, errors."""

from __future__ import annotations

import polars as pl

from cemreplay.events import check
from cemreplay.journeys._urls import normalise
from cemreplay.journeys._work import prepare, run_aggregate, split_id
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


def page_table(work: pl.DataFrame, urls: UrlRules) -> pl.DataFrame:
    """Page views from a prepared working frame, in working order (private ``_gs`` kept)."""
    kind = pl.col("kind")
    same_next = pl.col("_sid").shift(-1) == pl.col("_sid")
    starts = pl.col("_new") | ((kind == int(K.PAGE_VIEW)) & (pl.col("_cnt") >= 2))
    vis = (
        pl.when(kind == int(K.VISIBILITY_HIDDEN))
        .then(pl.lit(1, pl.Int64))
        .when((kind == int(K.VISIBILITY_VISIBLE)) | starts)
        .then(pl.lit(0, pl.Int64))
        .forward_fill()
    )
    depth = (
        pl.when((kind == int(K.SCROLL)) & (pl.col("a") > 0))
        .then(((pl.col("y") + pl.col("b")) / pl.col("a")).clip(0.0, 1.0))
    )
    w = work.with_columns(
        _pg=(starts.cast(pl.UInt32).cum_sum() - 1).set_sorted(),
        _dt=pl.when(same_next).then(pl.col("_tm").shift(-1) - pl.col("_tm")).otherwise(0),
        _vis=vis,
        _depth=depth,
    )
    agg = run_aggregate(
        w,
        "_pg",
        first={
            "session_id": pl.col("session_id"),
            "visitor_id": pl.col("visitor_id"),
            "_sid": pl.col("_sid"),
            "_gs": pl.col("_gs"),
            "_piece": pl.col("_piece"),
            "_ref": pl.col("_ref"),
            "start": pl.col("_tm"),
        },
        last={"page_view": pl.col("_cnt")},
        sums={
            "dwell_ms": pl.col("_dt"),
            "hidden_ms": pl.col("_dt") * pl.col("_vis"),
            "events": pl.col("kind").is_not_null(),
            "clicks": kind == int(K.CLICK),
            "errors": kind.is_in([int(K.JS_ERROR), int(K.NETWORK_FAILURE)]),
            "validation_errors": kind == int(K.VALIDATION_ERROR),
        },
    ).with_columns(pl.col("events", "clicks", "errors", "validation_errors").cast(pl.UInt32))
    scroll = (
        w.filter(pl.col("_depth").is_not_null())
        .group_by("_pg")
        .agg(max_scroll_depth=pl.col("_depth").max())
    )
    agg = agg.with_columns(_pg=pl.int_range(pl.len(), dtype=pl.UInt32)).join(
        scroll, on="_pg", how="left", maintain_order="left"
    )
    ref = agg["_ref"]
    url = work["target"].gather(ref)
    return agg.with_columns(
        page_view=pl.when(pl.col("page_view") > 0).then(pl.col("page_view") - 1).otherwise(0),
        split_session_id=split_id(pl.col("session_id"), pl.col("_piece")),
        url=url.cast(pl.String),
        page=normalise(url, urls),
        referrer=work["text"].gather(ref).cast(pl.String),
        navigation=work["b"].gather(ref),
        end=pl.col("start") + pl.col("dwell_ms"),
        visible_ms=pl.col("dwell_ms") - pl.col("hidden_ms"),
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
    table = page_table(prepare(events, rules), rules.urls)
    return (
        table.select(COLUMNS)
        .with_columns(pl.col("session_id", "visitor_id").cast(pl.String))
        .sort("session_id", "page_view")
    )
