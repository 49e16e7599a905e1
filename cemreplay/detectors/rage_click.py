"""rage_click: a burst of rapid clicks on the same element in a small area.

Rule (PostHog's, the loosest published one): at least ``min_clicks`` clicks, each at most
``max_interval_ms`` after and ``max_distance_px`` away from the previous one, on the same
target in the same page view. Any other click in between ends the burst. One finding per
burst, at its first click, with the number of clicks and the burst's duration.

Not rage (suppressed):

* clicks on text inputs (``ClickFlag.TEXT_INPUT``: they place a caret), on elements opted out
  with ``data-cem-no-rage`` (``ClickFlag.NO_RAGE``), with a modifier key held or with a
  button other than the left one: such clicks never join a burst;
* a triple click that selects text: exactly 3 clicks with ``detail`` 1, 2, 3 on an element
  known not to be interactive (neither ``INTERACTIVE`` nor ``UNKNOWN_ELEMENT``: when nobody
  knows what was clicked, nobody knows it was text);
* repeat controls that work: a burst on a target matching ``repeat_controls`` (steppers
  +/-, next/prev, carousel, slider arrows) where every click got a response within
  ``response_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from cemreplay.detectors import _kernels as K
from cemreplay.detectors._base import (
    RESPONSE_LUT,
    Context,
    check_bool,
    check_float,
    check_int,
    check_strings,
    empty_raw,
    raw,
    register,
    secs,
)
from cemreplay.schema import ClickFlag, EventKind

__all__ = ["RageClickConfig", "bursts", "run"]

#: Selector patterns of controls people click repeatedly on purpose.
REPEAT_CONTROLS = (
    r"(?i)(^|[^a-z])(step|stepper|spin|increment|decrement|incr|decr|plus|minus|qty|quantity)",
    r"(?i)(^|[^a-z])(next|prev|previous|back|forward|carousel|slide|slider|swiper|arrow)",
    r"(?i)(aria-label=\"?(increase|decrease|next|previous))",
    r"(\[\+\]|\[-\]|>\s*[+\-]\s*$)",
)


@dataclass(frozen=True)
class RageClickConfig:
    """Thresholds of :mod:`cemreplay.detectors.rage_click`."""

    #: Clicks in a burst. PostHog and Datadog use 3; Amplitude uses 4.
    min_clicks: int = 3
    #: Longest gap between consecutive clicks, ms. PostHog: each click < 1 s after the last;
    #: Datadog and Amplitude: the burst within 1 s.
    max_interval_ms: int = 1_000
    #: Farthest a click may be from the previous one, px. PostHog: 30 px (Amplitude: a 50 px box).
    max_distance_px: float = 30.0
    #: Time allowed for a repeat control to respond to each click, ms (a UI update within a
    #: frame or a fetch; half a second is generous and shorter than the burst gap).
    response_ms: int = 500
    #: A response stamped up to this many ms before the click still counts (clock skew
    #: between listeners; the snippet may stamp a mutation before the click handler runs).
    tolerance_ms: int = 50
    #: Selector regexes of repeat controls (steppers, next/prev, carousels).
    repeat_controls: tuple[str, ...] = REPEAT_CONTROLS
    #: Suppress 3-click bursts with detail 1, 2, 3 on elements known not to be interactive
    #: (text selection); a click on an unknown element (``UNKNOWN_ELEMENT``) is never one.
    suppress_triple_click: bool = True

    def __post_init__(self) -> None:
        check_int(self, "min_clicks", 2, 1_000)
        check_int(self, "max_interval_ms", 1, 60_000)
        check_float(self, "max_distance_px", 0.0, 10_000.0)
        check_int(self, "response_ms", 0, 60_000)
        check_int(self, "tolerance_ms", 0, 10_000)
        check_strings(self, "repeat_controls", non_empty=False, regex=True)
        check_bool(self, "suppress_triple_click")


_BAD = int(ClickFlag.TEXT_INPUT | ClickFlag.NO_RAGE | ClickFlag.MODIFIERS | ClickFlag.BUTTON_MASK)
#: Element bits that keep a 1-2-3 burst from being a text selection: an interactive element,
#: or one nobody knows (an imported recording without a DOM snapshot).
_NOT_PLAIN_TEXT = int(ClickFlag.INTERACTIVE | ClickFlag.UNKNOWN_ELEMENT)
#: The explanation says whether the page responded by this long after the last click, ms.
_AFTER_MS = 3_000


def clicks(ctx: Context) -> dict[str, Any]:
    """The clicks as arrays of their own: ``rows``, sessions at ``starts``, page view
    ordinals ``pv`` (the click rows by a vectorized comparison of the kinds, their page views
    by a merge with the PAGE_VIEW rows; no response times: see :func:`responses`)."""
    if "clicks" not in ctx.cache:
        rows = ctx.rows(EventKind.CLICK)
        pv = ctx.pv_at(rows)
        ctx.cache["clicks"] = {"rows": rows, "starts": np.searchsorted(rows, ctx.starts), "pv": pv}
    out: dict[str, Any] = ctx.cache["clicks"]
    return out


def responses(ctx: Context) -> dict[str, Any]:
    """:func:`clicks` with, at each click, t of the latest response at or before it
    (``prev_resp``) and of the earliest at or after it (``next_resp``) in its session."""
    c = clicks(ctx)
    if "prev_resp" not in c:
        _, prev, nxt, _ = ctx.responses(EventKind.CLICK)  # the same rows
        c["prev_resp"] = prev
        c["next_resp"] = nxt
    return c


def bursts(ctx: Context, cfg: RageClickConfig) -> pl.DataFrame:
    """The reported bursts: first and last row, clicks, spread, whether a response followed
    within 3 s of the last click (cached per config)."""
    key = f"rage:{cfg}"
    if key in ctx.cache:
        out: pl.DataFrame = ctx.cache[key]
        return out
    c = clicks(ctx)
    rows = c["rows"]
    first, last, count, spread = K.rage_bursts(
        c["starts"],
        rows,
        ctx.t,
        ctx.x,
        ctx.y,
        ctx.a,
        ctx.target_at(rows),
        c["pv"],
        _BAD,
        cfg.max_interval_ms,
        float(cfg.max_distance_px),
        cfg.min_clicks,
    )
    # Response checks read only the events around each burst (bursts are rare).
    all_resp, d123, after = K.burst_checks(
        first,
        last,
        rows,
        ctx.starts,
        ctx.t,
        ctx.kind,
        ctx.b,
        RESPONSE_LUT,
        cfg.tolerance_ms,
        cfg.response_ms,
        _AFTER_MS,
    )
    repeat = ctx.target_mask(cfg.repeat_controls, rows[first])
    plain_text = (ctx.a[rows[first]] & _NOT_PLAIN_TEXT) == 0
    drop = (repeat & all_resp) | (cfg.suppress_triple_click & d123 & plain_text)
    keep = ~drop
    out = pl.DataFrame(
        {
            "first": rows[first[keep]],
            "last": rows[last[keep]],
            "count": count[keep],
            "spread": spread[keep],
            "answered": after[keep],
        }
    )
    ctx.cache[key] = out
    return out


@register(
    "rage_click",
    RageClickConfig,
    ">= 3 clicks on one target, each <= 1 s and <= 30 px from the previous",
)
def run(ctx: Context, cfg: RageClickConfig) -> pl.DataFrame:
    found = bursts(ctx, cfg)
    if found.height == 0:
        return empty_raw()
    first = found["first"].to_numpy()
    last = found["last"].to_numpy()
    t0 = ctx.t[first]
    dur = ctx.t[last] - t0
    target = ctx.strings("target", first)
    df = pl.DataFrame(
        {
            "row": first,
            "t": t0,
            "count": found["count"],
            "duration_ms": dur,
            "spread": found["spread"],
            "target": target,
            "answered": found["answered"],
        }
    )
    n = cfg.min_clicks
    explanation = pl.format(
        "{} clicks in {} s within {} px on {}; {}",
        pl.col("count"),
        secs(pl.col("duration_ms")),
        pl.col("spread").round(0).cast(pl.Int64),
        pl.col("target").fill_null("an unnamed element"),
        pl.when(pl.col("answered"))
        .then(pl.lit("the page responded but the clicking went on"))
        .otherwise(pl.lit("no DOM change, navigation or request followed within 3 s")),
    )
    severity = ((pl.col("count") - n + 1) / (n + 1)).cast(pl.Float64) * 0.5 + 0.5
    df = df.with_columns(explanation=explanation, severity=severity)
    return raw(
        row=df["row"],
        t=df["t"],
        severity=df["severity"],
        count=df["count"],
        duration_ms=df["duration_ms"],
        target=df["target"],
        explanation=df["explanation"],
    )
