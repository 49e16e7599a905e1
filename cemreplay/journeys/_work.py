"""The working state every journeys function starts from (private).

:func:`prepare` puts events in canonical order (a no-op for the decoder's output) and runs
the session splitter once, giving numpy arrays over the canonical rows:

``sid``    physical code of ``session_id`` (the snippet session; :data:`NULL` for null)
``kind``   event kind
``t``      event time
``tcode``  physical code of ``target``

and per session (numbered in row order) ``starts`` (its first row) and ``piece`` (0-based
within its snippet session). Nothing is stored per row beyond the codes: the kernels in
:mod:`cemreplay.journeys._scan` recompute the running maximum of ``t`` and the session of a
row as they go, which is cheaper than the page faults of writing a new 10M-row array.
Nothing here is a polars expression over the whole table either: those cost a pass (and
often a copy) each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import polars as pl

from cemreplay.journeys._order import canonical
from cemreplay.journeys._scan import NULL, breaks, codes, ints, split_rows
from cemreplay.journeys._urls import PageLookup, page_lookup
from cemreplay.journeys.rules import SessionRules, UrlRules
from cemreplay.schema import EventKind

_PV = int(EventKind.PAGE_VIEW)

__all__ = ["Work", "code_of", "prepare", "rows", "split_id"]


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
    starts: npt.NDArray[np.int64]
    piece: npt.NDArray[np.uint32]
    n_pages: int
    _xcode: npt.NDArray[np.uint32] | None = field(default=None, repr=False)
    _pages: dict[UrlRules, PageLookup] = field(default_factory=dict, repr=False)
    _names: pl.DataFrame | None = field(default=None, repr=False)
    _rank: npt.NDArray[np.int64] | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return self.ev.height

    @property
    def n_sessions(self) -> int:
        return int(self.starts.shape[0])

    @property
    def xcode(self) -> npt.NDArray[np.uint32]:
        """Physical codes of ``text`` (computed on first use)."""
        if self._xcode is None:
            self._xcode = codes(self.ev["text"])
        return self._xcode

    def names(self) -> pl.DataFrame:
        """Per session: ``session_id``, ``visitor_id`` (of its first row) and
        ``split_session_id``, as String."""
        if self._names is None:
            heads = pl.Series(self.starts)
            self._names = pl.DataFrame(
                {
                    "session_id": self.ev["session_id"].gather(heads).cast(pl.String),
                    "visitor_id": self.ev["visitor_id"].gather(heads).cast(pl.String),
                    "_piece": self.piece,
                }
            ).select(
                "session_id", "visitor_id",
                split_session_id=split_id(pl.col("session_id"), pl.col("_piece")),
            )  # fmt: skip
        return self._names

    def rank(self) -> npt.NDArray[np.int64]:
        """Per session: the lexical rank of its snippet ``session_id`` (equal ids, equal
        ranks), for ordering outputs and breaking ties between snippet sessions."""
        if self._rank is None:
            sid = self.names()["session_id"]
            if sid.is_sorted():
                first = np.ones(sid.len(), dtype=np.int64)
                first[1:] = sid.ne_missing(sid.shift(1)).to_numpy()[1:]
                self._rank = np.cumsum(first)
            else:
                self._rank = sid.rank("dense").cast(pl.Int64).to_numpy()
        return self._rank

    def in_lexical_order(self) -> bool:
        """The sessions (and so every per-session or per-page table) come in lexical order
        of ``session_id``: true for the decoder's output, whose order is canonical."""
        return bool(self.names()["session_id"].is_sorted())

    def pages(self, urls: UrlRules) -> PageLookup:
        """Normalised pages of all PAGE_VIEW targets (computed once per rules)."""
        if urls not in self._pages:
            at = np.flatnonzero(self.kind == _PV)
            self._pages[urls] = page_lookup(self.ev["target"], self.tcode, at, urls)
        return self._pages[urls]

    def pages_at(self, at: npt.NDArray[np.int64], urls: UrlRules) -> PageLookup:
        """Normalised pages of the targets of rows ``at`` only."""
        return page_lookup(self.ev["target"], self.tcode, at, urls)

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
    brk = np.zeros(0, dtype=np.bool_)
    if (rules.split_on_campaign or rules.midnight_tz is not None) and ev.height:
        campaign = NULL
        if rules.split_on_campaign:
            campaign = code_of(ev.schema["target"], "utm_campaign")
            xcode = codes(ev["text"])
        day = _days(ev, rules.midnight_tz) if rules.midnight_tz else np.zeros(0, np.int64)
        brk = breaks(
            sid, kind, tcode, xcode if xcode is not None else np.zeros(0, np.uint32), campaign,
            day,
        )  # fmt: skip
    starts, piece, n_pages = split_rows(
        sid, t, kind, brk, rules.inactivity_ms or 0, rules.max_length_ms or 0
    )
    return Work(ev, rules, sid, kind, t, tcode, starts, piece, int(n_pages), xcode)


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
