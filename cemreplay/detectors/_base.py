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
from cemreplay.errors import ConfigError
from cemreplay.events import check
from cemreplay.schema import RESPONSE_KINDS, EventKind

I64 = npt.NDArray[np.int64]

#: The findings table: one row per finding, sorted by session_id, t, kind.
FINDINGS_SCHEMA: Final = pl.Schema(
    {
        "session_id": pl.String(),
        "visitor_id": pl.String(),
        "page_view": pl.UInt32(),
        "kind": pl.String(),
        "t": pl.Int64(),
        "page_url": pl.String(),
        "target": pl.String(),
        "field": pl.String(),
        "severity": pl.Float64(),
        "count": pl.UInt32(),
        "duration_ms": pl.Int64(),
        "detail": pl.String(),
        "explanation": pl.String(),
    }
)

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


@dataclass
class Context:
    """The event table prepared once for all detectors.

    ``events`` holds the input rows grouped by session and, within a session, ordered by
    ``t`` (ties keep recording order). ``pv`` is each row's page view ordinal (from 0 within
    the session, as :func:`cemreplay.journeys.with_page_views` counts) and ``pv_row`` the row
    of its PAGE_VIEW event. The numpy arrays are its columns.
    """

    events: pl.DataFrame
    starts: I64  # session boundaries: rows starts[s]..starts[s+1]
    t: I64
    kind: npt.NDArray[np.uint8]
    x: npt.NDArray[np.int32]
    y: npt.NDArray[np.int32]
    a: npt.NDArray[np.int32]
    b: npt.NDArray[np.int32]
    target: I64  # physical code of target, -1 when null
    text: I64  # physical code of text, -1 when null
    pv: I64  # page view ordinal
    pv_row: I64  # row of the page view's PAGE_VIEW event, -1 before the first one
    prev_resp: I64  # t of the latest response event at or before each row (session), min
    next_resp: I64  # t of the earliest response event at or after each row (session), max
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.t)

    def url_codes(self) -> I64:
        """Per row: the physical code of its page view's URL, -1 when unknown."""
        if "url" not in self.cache:
            self.cache["url"] = K.gather_or(self.target, self.pv_row, -1)
        out: I64 = self.cache["url"]
        return out

    def strings(self, column: str, rows: I64) -> pl.Series:
        """The values of a string column at ``rows`` (as String)."""
        return self.events[column].gather(rows).cast(pl.String)

    def target_mask(self, patterns: tuple[str, ...]) -> npt.NDArray[np.bool_]:
        """A lookup table over target codes: True where the target matches any pattern."""
        key = f"mask:{patterns}"
        if key not in self.cache:
            uniq = self.events["target"].unique().drop_nulls()
            codes = pl.DataFrame(
                {"c": uniq.to_physical().cast(pl.Int64), "s": uniq.cast(pl.String)}
            )
            top = codes["c"].max() if codes.height else None
            size = int(top) + 1 if isinstance(top, int) else 1
            mask = np.zeros(size + 1, dtype=np.bool_)
            if patterns and codes.height:
                rx = "|".join(f"(?:{p})" for p in patterns)
                hit = codes.filter(pl.col("s").str.contains(rx))["c"].to_numpy()
                mask[hit.astype(np.int64)] = True
            self.cache[key] = mask
        out: npt.NDArray[np.bool_] = self.cache[key]
        return out


def _int_array(s: pl.Series, dtype: type[np.generic]) -> Any:
    return np.ascontiguousarray(s.to_numpy(), dtype=dtype)


def _codes(s: pl.Series) -> I64:
    return np.ascontiguousarray(s.to_physical().cast(pl.Int64).fill_null(-1).to_numpy())


def prepare(events: pl.DataFrame) -> Context:
    """Check the event table, tag page views in recording order (as
    :func:`cemreplay.journeys.with_page_views` does), then order each session by ``t``."""
    check(events)
    events = events.select(_EVENT_COLS)
    sid = _codes(events["session_id"])
    t = _int_array(events["t"], np.int64)
    canonical, t_sorted = K.order_checks(
        sid, _int_array(events["batch"], np.int64), _int_array(events["i"], np.int64), t
    )
    if not canonical:
        from cemreplay.journeys import canonical as to_canonical

        events = to_canonical(events)
        sid = _codes(events["session_id"])
        t = _int_array(events["t"], np.int64)
        t_sorted = bool(K.order_checks(sid, sid, np.arange(len(sid)), t)[1])
    starts = K.run_starts(sid)
    kind = _int_array(events["kind"], np.uint8)
    pv, pv_row = K.page_views(starts, kind, int(EventKind.PAGE_VIEW))
    if not t_sorted:
        # Early-stamped events: order each session by t, ties in recording order.
        seg = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
        order = np.lexsort((np.arange(len(t)), t, seg))
        events = events[order]
        t = t[order]
        kind = kind[order]
        pv = pv[order]
        pv_row = K.page_view_rows(starts, kind, pv, int(EventKind.PAGE_VIEW))
    target = _codes(events["target"])
    resp_lut = np.zeros(256, dtype=np.bool_)
    for k in RESPONSE_KINDS:
        resp_lut[int(k)] = True
    prev_resp, next_resp = K.response_times(starts, t, kind, resp_lut)
    url = K.gather_or(target, pv_row, -1)
    return Context(
        events=events,
        starts=starts,
        t=t,
        kind=kind,
        x=_int_array(events["x"], np.int32),
        y=_int_array(events["y"], np.int32),
        a=_int_array(events["a"], np.int32),
        b=_int_array(events["b"], np.int32),
        target=target,
        text=_codes(events["text"]),
        pv=pv,
        pv_row=pv_row,
        prev_resp=prev_resp,
        next_resp=next_resp,
        cache={"url": url},
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
    if found.height == 0:
        return empty_findings()
    rows = found["row"].to_numpy()
    ev = ctx.events.select("session_id", "visitor_id")[rows]
    pv_row = ctx.pv_row[rows]
    url = ctx.events["target"].gather(np.maximum(pv_row, 0)).cast(pl.String)
    return pl.DataFrame(
        {
            "session_id": ev["session_id"].cast(pl.String),
            "visitor_id": ev["visitor_id"].cast(pl.String),
            "page_view": pl.Series(ctx.pv[rows], dtype=pl.UInt32),
            "kind": pl.Series([kind] * found.height, dtype=pl.String),
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
