"""Points: the page views and milestones of a journey, ordered per unit (private)."""

from __future__ import annotations

import polars as pl

from cemreplay.journeys._urls import normalise
from cemreplay.journeys._work import split_id
from cemreplay.journeys.rules import Unit, UrlRules
from cemreplay.schema import EventKind

_PV, _MS = int(EventKind.PAGE_VIEW), int(EventKind.MILESTONE)


def unit_key(by: Unit) -> pl.Expr:
    """The counting unit of a working-frame row: its split session id or its visitor id."""
    if by == "visitor":
        return pl.col("visitor_id").cast(pl.String)
    return split_id(pl.col("session_id"), pl.col("_piece"))


def order_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows (with ``unit``) sorted by unit, time, session, recording order; ``o`` = position."""
    return frame.sort(
        "unit", "_tm", pl.col("session_id").cast(pl.String), "batch", "i"
    ).with_columns(o=pl.int_range(pl.len(), dtype=pl.Int64))


def points(work: pl.DataFrame, by: Unit, urls: UrlRules) -> pl.DataFrame:
    """Page views and milestones: ``unit, o, t, kind, name, page, session_id, _piece``."""
    p = work.filter(pl.col("kind").is_in([_PV, _MS])).with_columns(unit=unit_key(by))
    p = order_rows(p)
    page = normalise(p["target"], urls)
    return p.select(
        "unit", "o", t="_tm", kind="kind",
        name=pl.when(pl.col("kind") == _MS).then(pl.col("target").cast(pl.String)),
        page=pl.when(pl.col("kind") == _PV).then(page),
        session_id=pl.col("session_id").cast(pl.String), _piece="_piece",
        visitor_id=pl.col("visitor_id").cast(pl.String),
    )  # fmt: skip
