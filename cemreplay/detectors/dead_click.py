"""dead_click: a click on an interactive element that nothing answered.

Rule: a left click without modifier keys on an interactive element (``ClickFlag.INTERACTIVE``)
that is neither a text input nor a link opening a new context (``NEW_CONTEXT``: a new tab or
a download answers elsewhere), followed by no response event (``RESPONSE_KINDS``: DOM
mutation, request, page view, scroll, focus, page leave) in the same session within
``timeout_ms``. A response stamped up to ``tolerance_ms`` before the click still counts.

Precedence: a click inside a rage burst is reported as ``rage_click`` only, and a click that
an error followed is reported as ``error_click`` only; neither is also a dead click.

When a session captured no response signal at all (no mutation and no request: e.g. an rrweb
import without DOM mutations) a dead click cannot be told from a live one. Such clicks are
reported as kind ``unknown`` (severity 0) when ``report_unknown`` is set, never as dead.
So are unanswered clicks on an element nobody knows (``ClickFlag.UNKNOWN_ELEMENT``: an import
without a DOM snapshot): it may or may not have been interactive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from cemreplay.detectors import _kernels as K
from cemreplay.detectors import _parallel as P
from cemreplay.detectors import error_click, rage_click
from cemreplay.detectors._base import (
    Context,
    check_bool,
    check_int,
    empty_raw,
    raw,
    register,
    secs,
)
from cemreplay.detectors.error_click import ErrorClickConfig
from cemreplay.detectors.rage_click import RageClickConfig
from cemreplay.schema import ClickFlag, EventKind

__all__ = ["DeadClickConfig", "candidates", "run"]


@dataclass(frozen=True)
class DeadClickConfig:
    """Thresholds of :mod:`cemreplay.detectors.dead_click`."""

    #: Time a response may take, ms. Amplitude: 3 s; PostHog: 2.5 s; Sentry calls a click
    #: "slow" after 7 s (and dead after 2 s without a mutation in its newer SDKs).
    timeout_ms: int = 3_000
    #: A response stamped up to this many ms before the click still counts.
    tolerance_ms: int = 50
    #: Report clicks of sessions without any response signal as kind ``unknown``.
    report_unknown: bool = True

    def __post_init__(self) -> None:
        check_int(self, "timeout_ms", 1, 600_000)
        check_int(self, "tolerance_ms", 0, 10_000)
        check_bool(self, "report_unknown")


#: The kinds that show a session captured responses at all.
_SIGNAL: Final = np.zeros(256, dtype=np.bool_)
_SIGNAL[[int(EventKind.MUTATION), int(EventKind.REQUEST)]] = True

_NEVER = int(
    ClickFlag.TEXT_INPUT | ClickFlag.NEW_CONTEXT | ClickFlag.MODIFIERS | ClickFlag.BUTTON_MASK
)


def candidates(
    ctx: Context, cfg: DeadClickConfig, rage: RageClickConfig, err: ErrorClickConfig
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Rows of unanswered eligible clicks, and whether each can be called dead: its session
    has response signals and its element is known (else it is ``unknown``)."""
    c = rage_click.responses(ctx)
    rows = c["rows"]
    a = ctx.a[rows]
    interactive = (a & int(ClickFlag.INTERACTIVE)) != 0
    unknown_element = (a & int(ClickFlag.UNKNOWN_ELEMENT)) != 0
    ok = (interactive | unknown_element) & ((a & _NEVER) == 0)
    t = ctx.t[rows]
    answered = (c["prev_resp"] >= t - cfg.tolerance_ms) | (c["next_resp"] <= t + cfg.timeout_ms)
    keep = ok & ~answered
    burst = rage_click.bursts(ctx, rage)
    if burst.height:
        first = np.searchsorted(rows, burst["first"].to_numpy())
        last = np.searchsorted(rows, burst["last"].to_numpy())
        keep &= ~K.mark_ranges(len(rows), first, last)
    click = rows[keep]
    tied, _, _ = error_click.ties(ctx, err)
    click = click[~np.isin(click, tied)]
    signal = P.run(K.sessions_with, P.session_parts(ctx.starts), ctx.starts, ctx.kind, _SIGNAL)
    has = np.concatenate(signal)[ctx.seg(click)]
    known = (ctx.a[click] & int(ClickFlag.UNKNOWN_ELEMENT)) == 0
    return click, has & known


@register(
    "dead_click",
    DeadClickConfig,
    "a click on an interactive element with no response within 3 s",
)
def run(ctx: Context, cfg: DeadClickConfig) -> pl.DataFrame:
    rage = ctx.cache.get("cfg:rage_click", RageClickConfig())
    err = ctx.cache.get("cfg:error_click", ErrorClickConfig())
    rows, has = candidates(ctx, cfg, rage, err)
    if len(rows) == 0:
        return empty_raw()
    df = pl.DataFrame({"row": rows, "t": ctx.t[rows], "target": ctx.strings("target", rows)})
    df = df.with_columns(
        explanation=pl.format(
            "click on {} got no response (no DOM change, request, navigation, scroll or focus) "
            "within {} s",
            pl.col("target").fill_null("an unnamed element"),
            secs(pl.lit(cfg.timeout_ms)),
        )
    )
    out = raw(
        row=df["row"],
        t=df["t"],
        severity=np.full(len(rows), 0.6),
        count=np.ones(len(rows), dtype=np.uint32),
        duration_ms=np.full(len(rows), cfg.timeout_ms),
        target=df["target"],
        explanation=df["explanation"],
    )
    ctx.cache["dead_click:unknown"] = (rows[~has], out.filter(pl.Series(~has)))
    return out.filter(pl.Series(has))


def unknown(ctx: Context, cfg: DeadClickConfig) -> pl.DataFrame:
    """Kind ``unknown``: unanswered clicks in sessions without response signals."""
    if not cfg.report_unknown:
        return empty_raw()
    if "dead_click:unknown" not in ctx.cache:
        run(ctx, cfg)
    got = ctx.cache.get("dead_click:unknown")
    if got is None:
        return empty_raw()
    rows = got[0]
    found: pl.DataFrame = got[1]
    unknown_element = pl.Series((ctx.a[rows] & int(ClickFlag.UNKNOWN_ELEMENT)) != 0)
    target = pl.col("target").fill_null("an unnamed element")
    return found.with_columns(
        severity=pl.lit(0.0),
        explanation=pl.when(unknown_element)
        .then(
            pl.format(
                "click on {} may be dead: no response followed within {} s, but what was "
                "clicked is unknown (not in the recording's DOM snapshot), so it may not have "
                "been meant to respond",
                target,
                secs(pl.lit(cfg.timeout_ms)),
            )
        )
        .otherwise(
            pl.format(
                "click on {} may be dead: no response followed, but this session captured no "
                "DOM mutations or requests, so a response could not have been seen",
                target,
            )
        ),
    )
