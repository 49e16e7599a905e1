"""Counting units (sessions or visitors) and the order of rows inside one (private).

A unit's rows are ordered by ``(tm, session_id, batch, i)``: running time first, then the
snippet session's id (lexical) and recording order. For sessions that is simply the
canonical row order (``tm`` never falls within a snippet session); a visitor's rows merge
its snippet sessions, so :meth:`Units.order` sorts the few rows that need it and the
kernels compare rows with :func:`cemreplay.journeys._scan.before`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from cemreplay.journeys._scan import codes, dense_ids
from cemreplay.journeys._work import Work
from cemreplay.journeys.rules import Unit

__all__ = ["Units", "units"]


@dataclass(frozen=True)
class Units:
    """The counting units of a working state.

    ``vis``: unit number per row when units are visitors (empty for sessions, whose unit
    number is the session number); ``names``: each unit's name (String); ``rank[g]``:
    lexical rank of session ``g``'s snippet session id (ties in time between a visitor's
    snippet sessions); ``of_session``: the unit of each session's first row.
    """

    vis: npt.NDArray[np.uint32]
    names: pl.Series
    rank: npt.NDArray[np.int64]

    @property
    def n(self) -> int:
        return self.names.len()

    @property
    def by_rows(self) -> bool:
        """Units are sessions: contiguous in row order, already in unit order."""
        return bool(self.vis.shape[0] == 0)

    def of(self, row: npt.NDArray[np.int64], ses: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
        """Unit of rows ``row`` in sessions ``ses``."""
        return ses if self.by_rows else self.vis[row]

    def order(
        self, row: npt.NDArray[np.int64], ses: npt.NDArray[np.uint32], tm: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int64]:
        """Positions that sort rows ``row`` (ascending) by unit, then unit order."""
        if self.by_rows:
            return np.arange(row.shape[0])
        return np.lexsort((row, self.rank[ses], tm, self.vis[row]))


def units(work: Work, by: Unit) -> Units:
    """The counting units of ``work``'s rows."""
    if by == "session":
        empty = np.zeros(0, dtype=np.uint32)
        names = work.names()["split_session_id"]
        return Units(empty, names, np.zeros(work.n_sessions, dtype=np.int64))
    ids, first = dense_ids(codes(work.ev["visitor_id"]))
    names = work.ev["visitor_id"].gather(pl.Series(first)).cast(pl.String)
    return Units(ids, names, work.rank())
