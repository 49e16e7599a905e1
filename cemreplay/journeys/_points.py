"""Counting units (sessions or visitors) and the order of rows inside one (private).

A unit's rows are ordered by ``(tm, session_id, batch, i)``: running time first, then the
snippet session's id (lexical) and recording order. For sessions that is simply the
canonical row order (``tm`` never falls within a snippet session); a visitor's rows merge
its snippet sessions, so :func:`visitor_order` sorts the few rows that need it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from cemreplay.journeys._scan import codes, dense_ids, run_starts
from cemreplay.journeys._work import Work, split_id
from cemreplay.journeys.rules import Unit

__all__ = ["Units", "session_names", "units"]


def session_names(work: Work) -> tuple[npt.NDArray[np.int64], pl.Series]:
    """First row of each session and its ``split_session_id`` (String)."""
    first = run_starts(work.gs, work.n_sessions)
    names = (
        pl.DataFrame({"s": work.ev["session_id"].gather(pl.Series(first)), "p": work.piece})
        .select(split_id(pl.col("s"), pl.col("p")))
        .to_series()
    )
    return first, names


@dataclass(frozen=True)
class Units:
    """``of_row[k]``: unit number of row ``k``; ``names``: each unit's name (String);
    ``rank[g]``: lexical rank of session ``g``'s snippet session id (ties in ``tm`` between
    snippet sessions of one visitor); ``by_rows``: units are contiguous in row order."""

    of_row: npt.NDArray[np.uint32]
    names: pl.Series
    rank: npt.NDArray[np.int64]
    by_rows: bool

    @property
    def n(self) -> int:
        return self.names.len()

    def order(self, work: Work, idx: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Rows ``idx`` (ascending) sorted by unit, then unit order."""
        if self.by_rows:
            return idx
        keys = (idx, self.rank[work.gs[idx]], work.tm[idx], self.of_row[idx])
        return idx[np.lexsort(keys)]


def units(work: Work, by: Unit) -> Units:
    """The counting units of ``work``'s rows."""
    if by == "session":
        _, names = session_names(work)
        return Units(work.gs, names, np.zeros(work.n_sessions, dtype=np.int64), True)
    ids, first = dense_ids(codes(work.ev["visitor_id"]))
    names = work.ev["visitor_id"].gather(pl.Series(first)).cast(pl.String)
    heads = run_starts(work.gs, work.n_sessions)
    sid = work.ev["session_id"].gather(pl.Series(heads)).cast(pl.String)
    rank = sid.rank("dense").cast(pl.Int64).to_numpy() if sid.len() else np.zeros(0, np.int64)
    return Units(ids, names, rank, False)
