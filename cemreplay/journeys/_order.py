"""Canonical order and page-view tagging: the part of journeys every other stage shares.

Journeys read events in **recording order**: grouped by the snippet's ``session_id``, then by
``(batch, i)`` as the snippet recorded them (the order :mod:`cemreplay.schema` defines for the
event table). Time ``t`` is the client clock and may step back a few milliseconds (a response
stamped early), so gaps and durations use its running maximum within the session instead of
re-sorting by it. Rows that repeat a ``(session_id, batch, i)`` are one event sent twice; the
first copy is kept.

Grouping uses the Categorical's physical codes (UInt32), which is fast; the order of sessions
inside the working frame is therefore by code, and public outputs are sorted by the string
value at the end so that results never depend on it.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from cemreplay.events import check
from cemreplay.journeys._scan import NULL, canonical_runs, codes, ints, tag_rows

__all__ = ["canonical", "is_canonical", "with_page_views"]

_SID = pl.col("session_id").to_physical()


def is_canonical(events: pl.DataFrame) -> bool:
    """True when each session's rows are contiguous and strictly ascending by ``(batch, i)``.

    Strictly: a repeated ``(session_id, batch, i)`` makes the table not canonical. One numba
    pass over the codes (the polars version below when a session id is null).
    """
    if events.height <= 1:
        return True
    sid = events["session_id"].to_physical()
    if sid.null_count() or events["batch"].null_count() or events["i"].null_count():
        return _is_canonical_polars(events)
    codes = sid.to_numpy()
    seen = np.zeros(int(codes.max()) + 1, dtype=np.bool_)
    return bool(
        canonical_runs(codes, events["batch"].to_numpy(), events["i"].to_numpy(), seen)
    )


def _is_canonical_polars(events: pl.DataFrame) -> bool:
    sid = _SID
    same = sid == sid.shift(1)
    ahead = (pl.col("batch") > pl.col("batch").shift(1)) | (
        (pl.col("batch") == pl.col("batch").shift(1)) & (pl.col("i") > pl.col("i").shift(1))
    )
    row = events.select(
        runs=(~same.fill_null(False)).sum(),
        sessions=sid.n_unique(),
        bad=(same & ~ahead).fill_null(False).sum(),
    ).row(0)
    return bool(row[0] == row[1] and row[2] == 0)


def canonical(events: pl.DataFrame) -> pl.DataFrame:
    """``events`` deduplicated on ``(session_id, batch, i)`` and in recording order.

    Sessions come in physical-code order (contiguous, not lexical). A table that is already
    canonical is returned as is, without copying.
    """
    check(events)
    if is_canonical(events):
        return events
    out = events.sort(_SID, "batch", "i", maintain_order=True)
    sid = _SID
    dup = (sid == sid.shift(1)) & (pl.col("batch") == pl.col("batch").shift(1)) & (
        pl.col("i") == pl.col("i").shift(1)
    )
    return out.filter(~dup.fill_null(False))


def _tag(events: pl.DataFrame) -> pl.DataFrame:
    """Add ``page_view`` and ``page_url`` to a canonical table (one scan, one gather)."""
    if events.height == 0:
        return events.with_columns(
            page_view=pl.Series([], dtype=pl.UInt32), page_url=events["target"]
        )
    ordinal, ref, missing = tag_rows(codes(events["session_id"]), ints(events["kind"], np.uint8))
    idx = pl.Series(ref)
    if missing:
        idx = idx.to_frame("r").select(pl.when(pl.col("r") != int(NULL)).then("r")).to_series()
    return events.with_columns(
        page_view=pl.Series(ordinal), page_url=events["target"].gather(idx)
    )


def with_page_views(events: pl.DataFrame) -> pl.DataFrame:
    """Tag every event with the page view it happened in.

    Adds two columns and keeps every row, in the input's order:

    - ``page_view`` (UInt32): the ordinal of the page view within the snippet session, 0-based:
      the number of ``PAGE_VIEW`` events before this row in recording order, counting the row
      itself when it is a ``PAGE_VIEW``, minus one. Events before the session's first
      ``PAGE_VIEW`` belong to page view 0.
    - ``page_url`` (Categorical): the raw URL of that page view (``target`` of its
      ``PAGE_VIEW``), null when the session has no page view.

    ``(session_id, page_view)`` is the stable reference of a page view used by
    :func:`cemreplay.journeys.page_views` and by findings. Input rows that repeat an event
    (same ``session_id, batch, i``) are tagged like the first copy.

    Parameters
    ----------
    events : pl.DataFrame
        An event table (:data:`cemreplay.schema.EVENT_SCHEMA`), in any row order.

    Returns
    -------
    pl.DataFrame
        ``events`` with ``page_view`` and ``page_url`` appended.

    Examples
    --------
    >>> import cemreplay.events as ev
    >>> from cemreplay.journeys import with_page_views
    >>> with_page_views(ev.empty()).columns[-2:]
    ['page_view', 'page_url']
    """
    check(events)
    if is_canonical(events):
        return _tag(events)
    # Sort a copy into recording order (duplicates stay adjacent and count once), tag it,
    # and put the rows back where they were.
    sid = _SID
    work = events.with_row_index("_row").sort(sid, "batch", "i", "_row")
    dup = (
        (sid == sid.shift(1))
        & (pl.col("batch") == pl.col("batch").shift(1))
        & (pl.col("i") == pl.col("i").shift(1))
    ).fill_null(False)
    work = work.with_columns(_dup=dup)
    first = _tag(work.filter(~pl.col("_dup")))
    # Each duplicate takes the tags of the copy right before it in the sorted frame.
    tags = work.select("_row", "_dup").with_columns(
        _k=(~pl.col("_dup")).cast(pl.UInt32).cum_sum() - 1
    )
    pv = first["page_view"].gather(tags["_k"])
    url = first["page_url"].gather(tags["_k"])
    restored = pl.DataFrame({"_row": tags["_row"], "page_view": pv, "page_url": url}).sort("_row")
    return events.with_columns(
        page_view=restored["page_view"], page_url=restored["page_url"]
    )
