"""What every detector shares: the prepared event arrays, the findings table, config checks.

A detector is a function ``run(ctx, cfg) -> raw`` where ``raw`` is a small polars frame with
one row per finding: ``row`` (the anchor event's position in ``ctx.events``), ``t``,
``severity``, ``count``, ``duration_ms``, ``target``, ``field``, ``detail`` and
``explanation``. :func:`assemble` adds the session, visitor and page view of the anchor
event and gives every detector's output the same columns (:data:`FINDINGS_SCHEMA`).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from cemreplay.detectors import _kernels as K
from cemreplay.detectors import _parallel as P
from cemreplay.errors import ConfigError
from cemreplay.events import check
from cemreplay.schema import FINDINGS_SCHEMA, RESPONSE_KINDS, EventKind

I64 = npt.NDArray[np.int64]

RAW_SCHEMA: Final = pl.Schema(
    {
        "row": pl.Int64(),
        "t": pl.Int64(),
        "severity": pl.Float64(),
        "count": pl.UInt32(),
        "duration_ms": pl.Int64(),
        "target": pl.String(),
        "field": pl.String(),
        "detail": pl.String(),
        "explanation": pl.String(),
    }
)

#: Kinds that count as interaction with a page (for quick_back's "no interaction").
INTERACTION_KINDS: Final = (
    EventKind.CLICK,
    EventKind.FOCUS,
    EventKind.CHANGE,
    EventKind.SUBMIT,
    EventKind.SCROLL,
)


# ----------------------------------------------------------------------------- config checks


def _fail(owner: object, name: str, value: object, want: str) -> ConfigError:
    return ConfigError(
        f"{type(owner).__name__}.{name} must be {want}, got {value!r}; "
        f"hint: see docs/detectors.md for what {name} means and its default"
    )


def check_int(owner: object, name: str, lo: int, hi: int | None = None) -> None:
    """Raise ConfigError unless ``owner.name`` is an int within lo..hi."""
    value = getattr(owner, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(owner, name, value, "an int")
    if value < lo or (hi is not None and value > hi):
        raise _fail(owner, name, value, f"within {lo}..{hi if hi is not None else 'inf'}")


def check_float(owner: object, name: str, lo: float, hi: float | None = None) -> None:
    """Raise ConfigError unless ``owner.name`` is a finite number within lo..hi."""
    value = getattr(owner, name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(owner, name, value, "a finite number")
    if value < lo or (hi is not None and value > hi):
        raise _fail(owner, name, value, f"within {lo}..{hi if hi is not None else 'inf'}")


def check_bool(owner: object, name: str) -> None:
    value = getattr(owner, name)
    if not isinstance(value, bool):
        raise _fail(owner, name, value, "True or False")


def check_strings(owner: object, name: str, *, non_empty: bool = True, regex: bool = False) -> None:
    """Raise ConfigError unless ``owner.name`` is a tuple of strings (regexes if asked)."""
    value = getattr(owner, name)
    if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
        raise _fail(owner, name, value, "a tuple of strings")
    if non_empty and not value:
        raise _fail(owner, name, value, "a non-empty tuple of strings")
    if regex:
        for v in value:
            try:
                re.compile(v)
            except re.error as exc:
                raise _fail(owner, name, value, f"valid regexes ({v!r}: {exc})") from None


# ----------------------------------------------------------------------------- the context


#: The code of a null string in the prepared ``target`` column (categorical codes are UInt32).
NULL: Final = np.uint32(2**32 - 1)


@dataclass
class Context:
    """The event table prepared once for all detectors.

    ``events`` holds the input rows grouped by session and, within a session, ordered by
    ``t`` (ties keep recording order). The numpy arrays are its columns, zero-copy where
    polars allows. What only some detectors need is computed on first use and kept in
    ``cache``: rows of a kind (:meth:`rows`), target codes (:meth:`target_at`: the
    categorical's physical codes, :data:`NULL` for null), page view ordinals (:meth:`pv_at`,
    from 0 within the session, as :func:`cemreplay.journeys.with_page_views` counts) and the
    rows of their PAGE_VIEW events (:meth:`pv_row_at`), response times at clicks.
    """

    events: pl.DataFrame
    starts: I64  # session boundaries: rows starts[s]..starts[s+1]
    t: I64
    kind: npt.NDArray[np.uint8]
    x: npt.NDArray[np.int32]
    y: npt.NDArray[np.int32]
    a: npt.NDArray[np.int32]
    b: npt.NDArray[np.int32]
    views: I64  # rows of the PAGE_VIEW events
    #: page view ordinal and PAGE_VIEW row of each row when sessions were reordered by t;
    #: None in the usual case, where they are found from ``views`` when asked for
    pv_full: npt.NDArray[Any] | None = None
    pv_rows: npt.NDArray[np.int64] | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.t)

    @property
    def target(self) -> npt.NDArray[np.uint32]:
        """Per row: the physical code of ``target``, NULL when null (computed on first use;
        detectors that need a few rows ask :meth:`target_at`)."""
        if "target" not in self.cache:
            self.cache["target"] = _codes(self.events["target"])
        out: npt.NDArray[np.uint32] = self.cache["target"]
        return out

    def target_at(self, rows: I64) -> npt.NDArray[np.uint32]:
        """The physical codes of ``target`` at ``rows``, NULL when null."""
        if "target" in self.cache:
            return self.target[rows]
        return _codes(self.events["target"].to_physical().gather(rows))

    @property
    def pv(self) -> npt.NDArray[Any]:
        """Per row: the page view ordinal (from 0 within the session, recording order;
        int16 unless a session has 32k page views). Computed on first use."""
        if self.pv_full is None:
            self.pv_full = _page_views(self.starts, self.kind, self.views)
        return self.pv_full

    def pv_or_empty(self) -> npt.NDArray[Any]:
        """The per-row ordinals when sessions were reordered by t, else an empty array: for
        kernels that count page views from ``views`` themselves."""
        return self.pv_full if self.pv_full is not None else np.zeros(0, dtype=np.int16)

    def pv_at(self, rows: I64) -> npt.NDArray[np.int64]:
        """The page view ordinals at ``rows``."""
        if self.pv_full is not None:
            out: npt.NDArray[np.int64] = self.pv_full[rows].astype(np.int64)
            return out
        ordinal, _ = _page_of(self.starts, self.views, rows)
        return ordinal

    def page_at(self, rows: I64) -> tuple[I64, npt.NDArray[np.uint32]]:
        """At ``rows``: the page view ordinal and the page's URL code (NULL when unknown),
        from one walk over the PAGE_VIEW rows."""
        if self.pv_full is not None or self.pv_rows is not None or len(self.views) == 0:
            return self.pv_at(rows), self.url_at(rows)
        ordinal, index = _page_of(self.starts, self.views, rows)
        url = np.full(len(rows), NULL, dtype=np.uint32)
        known = index >= 0
        url[known] = self.target_at(self.views[index[known]])
        return ordinal, url

    def view_index_at(self, rows: I64) -> I64:
        """At ``rows``: the index into ``views`` of its page view's PAGE_VIEW event, -1 when
        the session has none."""
        if self.pv_rows is not None:
            at = self.pv_rows[rows]
            return np.where(at >= 0, np.searchsorted(self.views, at), -1)
        _, index = _page_of(self.starts, self.views, rows)
        return index

    def pv_row_at(self, rows: I64) -> I64:
        """At ``rows``: the row of the PAGE_VIEW event of its page view (rows before the
        first one take the first one's), -1 when the session has none."""
        if self.pv_rows is not None:
            return self.pv_rows[rows]
        _, index = _page_of(self.starts, self.views, rows)
        out: I64 = (
            np.where(index >= 0, self.views[np.maximum(index, 0)], -1)
            if len(self.views)
            else np.full(len(rows), -1, dtype=np.int64)
        )
        return out

    def per_view(self, *kinds: EventKind) -> I64:
        """Per page view (index into ``views``): how many events of the given kinds it holds
        (events before a session's first PAGE_VIEW count for that one)."""
        lut = np.zeros(256, dtype=np.bool_)
        for k in kinds:
            lut[int(k)] = True
        if self.pv_rows is not None:  # reordered by t: page views come from recording order
            at = self.view_index_at(self.rows(*kinds))
            out: I64 = np.bincount(at[at >= 0], minlength=len(self.views))
            return out
        got = P.run(
            K.per_view,
            P.session_parts(self.starts),
            self.starts,
            self.kind,
            lut,
            self.views,
            int(EventKind.PAGE_VIEW),
        )
        return np.concatenate(got)

    @property
    def pv_row(self) -> I64:
        """Per row: the row of its page view's PAGE_VIEW event, -1 when none (a full array:
        for tests; detectors ask :meth:`pv_row_at` for the rows they need)."""
        return self.pv_row_at(np.arange(self.n))

    def url_codes(self) -> npt.NDArray[np.uint32]:
        """Per row: the physical code of its page view's URL, NULL when unknown."""
        if "url" not in self.cache:
            self.cache["url"] = K.gather_or(self.target, self.pv_row, NULL)
        out: npt.NDArray[np.uint32] = self.cache["url"]
        return out

    def url_at(self, rows: I64) -> npt.NDArray[np.uint32]:
        """At ``rows``: the physical code of the page view's URL, NULL when unknown."""
        if "url" in self.cache:
            return self.url_codes()[rows]
        at = self.pv_row_at(rows)
        out: npt.NDArray[np.uint32] = np.full(len(rows), NULL, dtype=np.uint32)
        known = at >= 0
        out[known] = self.target_at(at[known])
        return out

    def rows(self, *kinds: EventKind) -> I64:
        """Rows of the given kinds, ascending (cached)."""
        key = f"rows:{sorted(int(k) for k in kinds)}"
        if key not in self.cache:
            lut = np.zeros(256, dtype=np.bool_)
            for k in kinds:
                lut[int(k)] = True
            self.cache[key] = _rows_of(self.kind, lut)
        out: I64 = self.cache[key]
        return out

    def seg(self, rows: I64) -> I64:
        """The session index of each of ``rows`` (ascending)."""
        out: I64 = K.segments(self.starts, rows)
        return out

    def responses(self, kind: EventKind) -> tuple[I64, I64, I64, I64]:
        """The rows of ``kind`` (ascending) and at each: t of the latest response event
        (``RESPONSE_KINDS``) at or before it in its session (SMALL when none), of the
        earliest at or after it (BIG when none), and its page view ordinal. One pass."""
        got = P.run(
            K.response_times,
            P.session_parts(self.starts),
            self.starts,
            self.t,
            self.kind,
            RESPONSE_LUT,
            int(kind),
            int(EventKind.PAGE_VIEW),
        )
        rows, prev, nxt, pv = (P.cat(got, i) for i in range(4))
        if self.pv_full is not None:  # reordered by t: ordinals come from recording order
            pv = self.pv_at(rows)
        return rows, prev, nxt, pv

    def strings(self, column: str, rows: I64) -> pl.Series:
        """The values of a string column at ``rows`` (as String)."""
        return self.events[column].gather(rows).cast(pl.String)

    def code_strings(self, rows: I64) -> tuple[npt.NDArray[np.uint32], pl.Series]:
        """The distinct non-null target codes at ``rows`` and their strings (one look-up per
        distinct category, never one per row)."""
        codes = self.target_at(rows)
        uniq, first = np.unique(codes, return_index=True)
        keep = uniq != NULL
        return uniq[keep], self.strings("target", rows[first[keep]])

    def target_lut(self, codes: npt.NDArray[np.uint32], values: Any, default: Any) -> Any:
        """A lookup table over target codes (any code, NULL included): ``values`` at
        ``codes``, ``default`` elsewhere. Index it with :meth:`lookup`."""
        top = int(codes.max()) + 1 if len(codes) else 0
        lut = np.full(top + 1, default, dtype=np.asarray(values).dtype)
        lut[codes.astype(np.int64)] = values
        return lut

    @staticmethod
    def lookup(lut: Any, codes: npt.NDArray[np.uint32]) -> Any:
        """``lut`` at ``codes``; codes past its end (NULL among them) get its last entry."""
        return lut[np.minimum(codes, np.uint32(len(lut) - 1))]

    def target_mask(self, patterns: tuple[str, ...], rows: I64) -> npt.NDArray[np.bool_]:
        """Per row of ``rows``: does its target match any of the patterns? Each distinct
        target is matched once."""
        if not patterns or len(rows) == 0:
            return np.zeros(len(rows), dtype=np.bool_)
        codes, names = self.code_strings(rows)
        rx = "|".join(f"(?:{p})" for p in patterns)
        hit = names.str.contains(rx).fill_null(False).to_numpy()
        lut = self.target_lut(codes, hit, False)
        out: npt.NDArray[np.bool_] = self.lookup(lut, self.target_at(rows))
        return out


_PAGE_VIEW_LUT: Final = np.zeros(256, dtype=np.bool_)
_PAGE_VIEW_LUT[int(EventKind.PAGE_VIEW)] = True
#: Per event kind: is it a response (:data:`cemreplay.schema.RESPONSE_KINDS`)?
RESPONSE_LUT: Final = np.zeros(256, dtype=np.bool_)
for _k in RESPONSE_KINDS:
    RESPONSE_LUT[int(_k)] = True


def _rows_of(kind: npt.NDArray[np.uint8], lut: npt.NDArray[np.bool_]) -> I64:
    """Rows whose kind is set in ``lut``, ascending: a mask of the rows (on threads over
    parts of the rows), then numpy's vectorized search for its set entries."""
    mask = np.empty(len(kind), dtype=np.bool_)
    P.run(lambda a, b: K.kind_mask(kind[a:b], lut, mask[a:b]), P.row_parts(len(kind)))
    out: I64 = np.flatnonzero(mask).astype(np.int64, copy=False)
    return out


def _page_of(starts: I64, views: I64, rows: I64) -> tuple[I64, I64]:
    """:func:`K.page_of` on threads over parts of ``rows``."""
    got = P.run(lambda a, b: K.page_of(starts, views, rows[a:b]), P.row_parts(len(rows)))
    return P.cat(got, 0), P.cat(got, 1)


def _scan(sid: Any, batch: Any, idx: Any, t: I64, kind: npt.NDArray[np.uint8]) -> Any:
    """(in order, t_sorted, starts, views) of the whole table. ``in order``: inside each
    run of equal ``sid`` rows strictly ascend by (batch, i), and no session id starts two
    runs; ``t_sorted``: ``t`` never goes down inside a run; ``starts``: the rows that start
    a run, closed by the row count; ``views``: the PAGE_VIEW rows. The order checks run on
    threads over parts of the pairs of consecutive rows (:func:`K.order_faults`)."""
    n = len(sid)
    got = P.run(
        lambda a, b: K.order_faults(
            sid[a + 1 : b + 1],
            sid[a:b],
            batch[a + 1 : b + 1],
            batch[a:b],
            idx[a + 1 : b + 1],
            idx[a:b],
            t[a + 1 : b + 1],
            t[a:b],
        ),
        P.row_parts(max(n - 1, 0)),
    )
    in_order = all(g[0] == 0 for g in got)
    t_sorted = all(g[1] == 0 for g in got)
    starts = np.concatenate(
        [np.zeros(min(n, 1), dtype=np.int64), np.flatnonzero(sid[1:] != sid[:-1]) + 1, [n]]
    ).astype(np.int64)
    views = _rows_of(kind, _PAGE_VIEW_LUT)
    heads = sid[starts[:-1]]
    if len(heads) and int(heads.max()) > 8 * len(heads) + 2**20:  # codes spread out: sort
        grouped = len(np.unique(heads)) == len(heads)
    else:
        grouped = bool(K.distinct(heads))
    return in_order and grouped, t_sorted, starts, views


def _array(s: pl.Series) -> Any:
    """A numeric column as numpy, without a copy when it is one chunk without nulls."""
    return s.to_numpy()


def _codes(s: pl.Series) -> npt.NDArray[np.uint32]:
    phys = s.to_physical()
    if phys.null_count():
        phys = phys.fill_null(NULL)
    out: npt.NDArray[np.uint32] = phys.to_numpy()
    return out


def _page_views(starts: I64, kind: npt.NDArray[np.uint8], views: I64) -> npt.NDArray[Any]:
    """Per row: the page view ordinal, in recording order."""
    per_session = np.bincount(K.segments(starts, views), minlength=len(starts) - 1)
    # Page view ordinals are small: int16 unless some session has 32k page views.
    wide = len(per_session) > 0 and per_session.max() >= 2**15
    pv = np.empty(len(kind), dtype=np.int32 if wide else np.int16)
    K.page_views(starts, kind, int(EventKind.PAGE_VIEW), pv)
    return pv


def prepare(events: pl.DataFrame) -> Context:
    """Check the event table, tag page views in recording order (as
    :func:`cemreplay.journeys.with_page_views` does), then order each session by ``t``.

    The decoder's tables are canonical and nearly always in time order: then nothing is
    copied or sorted, and the arrays are views of the polars columns."""
    check(events)
    events = events.select(_EVENT_COLS)
    if events.n_chunks("all") != [1] * len(_EVENT_COLS):
        events = events.rechunk()
    sid = _codes(events["session_id"])
    t = _array(events["t"])
    kind = _array(events["kind"])
    canonical, t_sorted, starts, views = _scan(
        sid, _array(events["batch"]), _array(events["i"]), t, kind
    )
    if not canonical:
        from cemreplay.journeys import canonical as to_canonical

        events = to_canonical(events.select(_EVENT_COLS)).rechunk()
        sid = _codes(events["session_id"])
        t = _array(events["t"])
        kind = _array(events["kind"])
        _, t_sorted, starts, views = _scan(sid, sid, np.arange(len(sid)), t, kind)
    pv = None
    pv_rows = None
    if not t_sorted:
        # Early-stamped events: order each session by t, ties in recording order.
        seg = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
        order = np.lexsort((np.arange(len(t)), t, seg))
        pv = _page_views(starts, kind, views)[order]
        events = events[order]
        t = _array(events["t"])
        kind = _array(events["kind"])
        pv_rows = K.page_view_rows(starts, kind, pv, int(EventKind.PAGE_VIEW))
        views = _rows_of(kind, _PAGE_VIEW_LUT)
    return Context(
        events=events,
        starts=starts,
        t=t,
        kind=kind,
        x=_array(events["x"]),
        y=_array(events["y"]),
        a=_array(events["a"]),
        b=_array(events["b"]),
        views=views,
        pv_full=pv,
        pv_rows=pv_rows,
    )


_EVENT_COLS: Final = (
    "session_id",
    "visitor_id",
    "t",
    "batch",
    "i",
    "kind",
    "x",
    "y",
    "a",
    "b",
    "target",
    "text",
)


def raw(**columns: Any) -> pl.DataFrame:
    """A raw findings frame with :data:`RAW_SCHEMA` (missing columns are null)."""
    n = len(columns["row"])
    data = {}
    for name, dtype in RAW_SCHEMA.items():
        value = columns.get(name)
        if value is None:
            data[name] = pl.Series(name, [None] * n, dtype=dtype)
        elif isinstance(value, pl.Series):
            data[name] = value.alias(name).cast(dtype)
        else:
            data[name] = pl.Series(name, value).cast(dtype)
    return pl.DataFrame(data)


def empty_raw() -> pl.DataFrame:
    return pl.DataFrame(schema=RAW_SCHEMA)


def empty_findings() -> pl.DataFrame:
    return pl.DataFrame(schema=FINDINGS_SCHEMA)


def assemble(ctx: Context, kind: str, found: pl.DataFrame) -> pl.DataFrame:
    """Give a detector's raw rows the findings columns, from their anchor events."""
    return assemble_all(ctx, [(kind, found)])


def assemble_all(ctx: Context, raws: list[tuple[str, pl.DataFrame]]) -> pl.DataFrame:
    """:func:`assemble` of several detectors' raw rows at once, in the order given (one
    gather of the anchor events for all of them: each call costs a few ms however few
    its rows)."""
    kept = [(kind, f) for kind, f in raws if f.height]
    if not kept:
        return empty_findings()
    found = kept[0][1] if len(kept) == 1 else pl.concat([f for _, f in kept])
    heights = np.array([f.height for _, f in kept], dtype=np.int64)
    kinds = pl.Series([k for k, _ in kept], dtype=pl.String).gather(
        np.repeat(np.arange(len(kept)), heights)
    )
    rows = found["row"].to_numpy()
    ev = ctx.events.select("session_id", "visitor_id")[rows]
    pv_row = ctx.pv_row_at(rows)
    url = ctx.events["target"].gather(np.maximum(pv_row, 0)).cast(pl.String)
    return pl.DataFrame(
        {
            "session_id": ev["session_id"].cast(pl.String),
            "visitor_id": ev["visitor_id"].cast(pl.String),
            "page_view": pl.Series(ctx.pv_at(rows), dtype=pl.UInt32),
            "kind": kinds,
            "t": found["t"],
            "page_url": url.set(pl.Series(pv_row < 0), None),
            "target": found["target"],
            "field": found["field"],
            "severity": found["severity"].clip(0.0, 1.0),
            "count": found["count"],
            "duration_ms": found["duration_ms"],
            "detail": found["detail"],
            "explanation": found["explanation"],
        },
        schema=FINDINGS_SCHEMA,
    )


def secs(expr: pl.Expr) -> pl.Expr:
    """Milliseconds as seconds text with two decimals ("0.62")."""
    return (expr.cast(pl.Float64) / 1000.0).round(2).cast(pl.String)


def quoted(expr: pl.Expr, missing: str = "an unnamed element") -> pl.Expr:
    return expr.fill_null(missing)


# ----------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Detector:
    """A registered detector: its kind name, config class, runner and one-line rule."""

    kind: str
    config: type[Any]
    run: Callable[[Context, Any], pl.DataFrame]
    rule: str


REGISTRY: dict[str, Detector] = {}


def register(
    kind: str, config: type[Any], rule: str
) -> Callable[[Callable[[Context, Any], pl.DataFrame]], Callable[[Context, Any], pl.DataFrame]]:
    """Decorator: add a detector to :data:`REGISTRY` under ``kind``."""

    def deco(fn: Callable[[Context, Any], pl.DataFrame]) -> Callable[[Context, Any], pl.DataFrame]:
        if not dataclasses.is_dataclass(config):
            raise TypeError(f"{config!r} is not a dataclass")
        REGISTRY[kind] = Detector(kind=kind, config=config, run=fn, rule=rule)
        return fn

    return deco
