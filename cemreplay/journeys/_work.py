"""The working state every journeys function starts from (private).

:func:`prepare` puts events in canonical order (a no-op for the decoder's output) and runs
the session splitter once, giving numpy arrays over the canonical rows:

``sid``    physical code of ``session_id`` (the snippet session; :data:`NULL` for null)
``kind``   event kind
``t``      event time
``tcode``  physical code of ``target``
``tm``     running maximum of ``t`` within the snippet session
``gs``     global session number (contiguous, ascending in row order)

and per session ``piece`` (0-based within its snippet session). Nothing here is a polars
expression over the whole table: those cost a pass (and often a copy) each, where the
kernels in :mod:`cemreplay.journeys._scan` do all the work in one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import polars as pl

from cemreplay.journeys._order import canonical
from cemreplay.journeys._scan import NULL, codes, ints, split_rows
from cemreplay.journeys._urls import PageLookup, page_lookup
from cemreplay.journeys.rules import SessionRules, UrlRules

__all__ = ["Work", "code_of", "codes", "prepare", "split_id"]


def code_of(dtype: pl.DataType, value: str) -> np.uint32:
    """The physical code ``value`` has (or gets) in the Categorical ``dtype``."""
    return np.uint32(pl.Series([value], dtype=dtype).to_physical()[0])


@dataclass
class Work:
    """Canonical events, their code arrays and the session split (see the module docstring)."""

    ev: pl.DataFrame
    rules: SessionRules
    sid: npt.NDArray[np.uint32]
    kind: npt.NDArray[np.uint8]
    t: npt.NDArray[np.int64]
    tcode: npt.NDArray[np.uint32]
    tm: npt.NDArray[np.int64]
    gs: npt.NDArray[np.uint32]
    piece: npt.NDArray[np.uint32]
    n_sessions: int
    n_pages: int
    _xcode: npt.NDArray[np.uint32] | None = field(default=None, repr=False)
    _pages: dict[UrlRules, PageLookup] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return self.ev.height

    @property
    def xcode(self) -> npt.NDArray[np.uint32]:
        """Physical codes of ``text`` (computed on first use)."""
        if self._xcode is None:
            self._xcode = codes(self.ev["text"])
        return self._xcode

    def pages(self, urls: UrlRules) -> PageLookup:
        """Normalised pages of this table's PAGE_VIEW targets (computed once per rules)."""
        if urls not in self._pages:
            self._pages[urls] = page_lookup(self.ev["target"], self.tcode, self.kind, urls)
        return self._pages[urls]

    def code(self, column: str, value: str) -> np.uint32:
        """The code of ``value`` in ``column``'s Categorical."""
        return code_of(self.ev.schema[column], value)


def _days(ev: pl.DataFrame, tz: str) -> npt.NDArray[np.int64]:
    return (
        ev.select(
            pl.from_epoch("t", time_unit="ms")
            .dt.replace_time_zone("UTC")
            .dt.convert_time_zone(tz)
            .dt.date()
            .cast(pl.Int64)
        )
        .to_series()
        .to_numpy()
    )


def prepare(events: pl.DataFrame, rules: SessionRules) -> Work:
    """Canonical events, split into sessions by ``rules``."""
    ev = canonical(events)
    sid = codes(ev["session_id"])
    kind = ints(ev["kind"], np.uint8)
    t = ints(ev["t"], np.int64)
    tcode = codes(ev["target"])
    xcode = None
    campaign = NULL
    if rules.split_on_campaign and ev.height:
        campaign = code_of(ev.schema["target"], "utm_campaign")
        xcode = codes(ev["text"])
    if rules.midnight_tz is not None and ev.height:
        day = _days(ev, rules.midnight_tz)
    else:
        day = np.zeros(0, dtype=np.int64)
    tm, gs, piece, n_sessions, n_pages = split_rows(
        sid,
        t,
        kind,
        tcode,
        xcode if xcode is not None else np.zeros(0, dtype=np.uint32),
        campaign,
        day,
        rules.inactivity_ms or 0,
        rules.max_length_ms or 0,
    )
    return Work(
        ev, rules, sid, kind, t, tcode, tm, gs, piece, int(n_sessions), int(n_pages), xcode
    )


def split_id(sid: pl.Expr, piece: pl.Expr) -> pl.Expr:
    """``<sid>`` for a snippet session's first piece (``piece`` 0), ``<sid>~<k>`` for the
    k-th (1-based)."""
    s = sid.cast(pl.String)
    return (
        pl.when(piece == 0)
        .then(s)
        .otherwise(pl.concat_str(s, pl.lit("~"), (piece + 1).cast(pl.String)))
    )


def rows(index: npt.NDArray[np.int64]) -> pl.Series:
    """Row indices for ``gather``: -1 becomes null."""
    s = pl.Series(index)
    if (index < 0).any():
        s = s.to_frame("r").select(pl.when(pl.col("r") >= 0).then(pl.col("r"))).to_series()
    return s
