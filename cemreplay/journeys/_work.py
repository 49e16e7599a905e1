"""The working frame every journeys function starts from (private).

:func:`prepare` puts events in canonical order and adds, per row:

``_sid``    UInt32 physical code of ``session_id`` (the snippet session)
``_new``    first row of its snippet session
``_cnt``    PAGE_VIEW rows so far in the snippet session, this one included
``_ref``    row index of the PAGE_VIEW of this row's page view (null: session has none)
``_piece``  piece of the snippet session (0-based) after splitting by the rules
``_tm``     running maximum of ``t`` within the snippet session
``_gs``     global session number (contiguous, ascending)
"""

from __future__ import annotations

import numpy as np
import polars as pl

from cemreplay.journeys._kernels import split
from cemreplay.journeys._order import _SID, _page_view_count, canonical
from cemreplay.journeys.rules import SessionRules
from cemreplay.schema import EventKind

_PV = int(EventKind.PAGE_VIEW)
_ATTR = int(EventKind.ATTRIBUTE)


def _campaign_breaks(work: pl.DataFrame) -> np.ndarray:
    """True at a PAGE_VIEW (not the session's first) whose utm_campaign differs from the last."""
    n = work.height
    brk = np.zeros(n, dtype=np.bool_)
    camp = work.filter(
        (pl.col("kind") == _ATTR) & (pl.col("target") == "utm_campaign")
    ).select("_sid", "_cnt", v=pl.col("text").cast(pl.String))
    if camp.height == 0:
        return brk
    per_pv = (
        camp.group_by("_sid", "_cnt")
        .agg(first=pl.col("v").drop_nulls().first(), last=pl.col("v").drop_nulls().last())
        .sort("_sid", "_cnt")
        .with_columns(prev=pl.col("last").shift(1).over("_sid"))
        .filter(
            (pl.col("_cnt") >= 2)
            & pl.col("first").is_not_null()
            & pl.col("first").ne_missing(pl.col("prev"))
        )
    )
    rows = (
        work.select("_sid", "_cnt", "kind", r=pl.int_range(pl.len(), dtype=pl.UInt32))
        .filter(pl.col("kind") == _PV)
        .join(per_pv.select("_sid", "_cnt"), on=["_sid", "_cnt"])
    )["r"].to_numpy()
    brk[rows] = True
    return brk


def prepare(events: pl.DataFrame, rules: SessionRules) -> pl.DataFrame:
    """Canonical events with the private columns listed in the module docstring."""
    ev = canonical(events)
    is_pv = pl.col("kind") == _PV
    row = pl.int_range(pl.len(), dtype=pl.UInt32)
    work = ev.with_columns(
        _sid=_SID, _new=_SID.ne_missing(_SID.shift(1)), _cnt=_page_view_count()
    ).with_columns(
        _ref=pl.when(pl.col("_cnt") > 0)
        .then(pl.when(is_pv).then(row).forward_fill())
        .when(pl.when(is_pv).then(pl.col("_sid")).backward_fill() == pl.col("_sid"))
        .then(pl.when(is_pv).then(row).backward_fill())
    )
    n = work.height
    brk = _campaign_breaks(work) if rules.split_on_campaign else np.zeros(n, dtype=np.bool_)
    if rules.midnight_tz is not None and n:
        day = work.select(
            pl.from_epoch("t", time_unit="ms")
            .dt.replace_time_zone("UTC")
            .dt.convert_time_zone(rules.midnight_tz)
            .dt.date()
            .cast(pl.Int64)
        ).to_series().to_numpy()
    else:
        day = np.zeros(n, dtype=np.int64)
    piece, tm = split(
        work["_new"].to_numpy(),
        work["t"].to_numpy(),
        brk,
        day,
        rules.inactivity_ms or 0,
        rules.max_length_ms or 0,
    )
    work = work.with_columns(_piece=pl.Series(piece), _tm=pl.Series(tm))
    start = pl.col("_new") | (pl.col("_piece") != pl.col("_piece").shift(1)).fill_null(True)
    return work.with_columns(_gs=(start.cast(pl.UInt32).cum_sum() - 1).set_sorted())


def split_id(sid: pl.Expr, piece: pl.Expr) -> pl.Expr:
    """``<sid>`` for a snippet session's first piece, ``<sid>~<k>`` for the k-th (1-based)."""
    s = sid.cast(pl.String)
    return (
        pl.when(piece == 0)
        .then(s)
        .otherwise(pl.concat_str(s, pl.lit("~"), (piece + 1).cast(pl.String)))
    )


def run_aggregate(
    frame: pl.DataFrame,
    key: str,
    *,
    first: dict[str, pl.Expr],
    last: dict[str, pl.Expr],
    sums: dict[str, pl.Expr],
) -> pl.DataFrame:
    """Aggregate contiguous runs of ``key`` without hashing: one row per run, in order.

    ``first``/``last`` take an expression's value on a run's first/last row; ``sums`` add an
    integer expression over the run (as differences of a running sum at the run ends).
    """
    k = pl.col(key)
    is_first = k.ne_missing(k.shift(1))
    is_last = k.ne_missing(k.shift(-1))
    cum = {name: e.cast(pl.Int64).cum_sum() for name, e in sums.items()}
    heads = frame.lazy().filter(is_first).select(k, **first)
    tails = (
        frame.lazy()
        .with_columns(**cum)
        .filter(is_last)
        .select(
            **last,
            **{n: (pl.col(n) - pl.col(n).shift(1, fill_value=0)) for n in sums},
        )
    )
    return pl.concat([heads, tails], how="horizontal").collect()
