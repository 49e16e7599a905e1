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
from cemreplay.journeys._work import Work, split_id
from cemreplay.journeys.rules import Unit

__all__ = ["Units", "units"]


@dataclass(frozen=True)
class Units:
    """The counting units of a working state.

    ``vis``: unit number per row when units are visitors (empty for sessions, whose unit
    number is the session number); ``rank[g]``: lexical rank of session ``g``'s snippet
    session id (ties in time between a visitor's snippet sessions).
    """

    work: Work
    vis: npt.NDArray[np.uint32]
    rank: npt.NDArray[np.int64]
    visitors: pl.Series | None

    @property
    def n(self) -> int:
        return self.work.n_sessions if self.visitors is None else self.visitors.len()

    @property
    def by_rows(self) -> bool:
        """Units are sessions: contiguous in row order, already in unit order."""
        return self.visitors is None

    def names(self, idx: npt.NDArray[np.int64] | None = None) -> pl.Series:
        """The names (String) of units ``idx`` (all units when None): split session ids are
        built for those only."""
        if self.visitors is not None:
            return self.visitors if idx is None else self.visitors.gather(pl.Series(idx))
        if idx is None:
            return self.work.names()["split_session_id"]
        heads = pl.Series(self.work.starts[idx])
        return (
            pl.DataFrame(
                {"s": self.work.ev["session_id"].gather(heads), "p": self.work.piece[idx]}
            )
            .select(split_id(pl.col("s"), pl.col("p")))
            .to_series()
        )

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
        return Units(work, empty, np.zeros(work.n_sessions, dtype=np.int64), None)
    ids, first = dense_ids(codes(work.ev["visitor_id"]))
    names = work.ev["visitor_id"].gather(pl.Series(first)).cast(pl.String)
    return Units(work, ids, work.rank(), names)
