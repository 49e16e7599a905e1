"""funnel_abandon: entered the funnel and left before its end.

Rule: a session enters at its first page view of the first step's path and advances when it
views the next step's path (other pages and repeats in between are fine). An attempt that
does not reach the last step within ``window_ms`` of entering, before the session ends, is
abandoned at the furthest step reached. The finding sits on that step's page view and names
the step and the last other finding of the session at or before the end of the attempt (the
last struggle before leaving). A path is a URL without scheme, host, query, fragment and
trailing slash.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from cemreplay.detectors import _kernels as K
from cemreplay.detectors._base import (
    Context,
    check_int,
    check_strings,
    empty_raw,
    raw,
    register,
)
from cemreplay.schema import FINDING_KINDS, EventKind

__all__ = ["FunnelAbandonConfig", "path_of", "run"]


@dataclass(frozen=True)
class FunnelAbandonConfig:
    """Options of :mod:`cemreplay.detectors.funnel_abandon`."""

    #: The funnel's step paths, in order.
    steps: tuple[str, ...] = ("/cart", "/checkout", "/checkout/payment", "/confirmation")
    #: Conversion window from entering, ms (Amplitude's and Mixpanel's funnels take a
    #: configurable window; one hour covers a checkout within one session).
    window_ms: int = 3_600_000

    def __post_init__(self) -> None:
        check_strings(self, "steps")
        if len(self.steps) < 2:
            from cemreplay.errors import ConfigError

            raise ConfigError(
                f"FunnelAbandonConfig.steps needs at least 2 steps, got {self.steps!r}; "
                "hint: a funnel is entered at the first step and completed at the last"
            )
        check_int(self, "window_ms", 1, 10**12)


def path_of(url: pl.Expr) -> pl.Expr:
    """The path of a URL: no scheme, host, query, fragment or trailing slash ('/' stays)."""
    p = (
        url.str.replace(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*", "")
        .str.replace(r"[?#].*$", "")
        .str.replace(r"(.)/+$", "$1")
    )
    return pl.when(p == "").then(pl.lit("/")).otherwise(p)


@register(
    "funnel_abandon",
    FunnelAbandonConfig,
    "entered /cart and did not reach /confirmation in order within 1 h",
)
def run(ctx: Context, cfg: FunnelAbandonConfig) -> pl.DataFrame:
    views = ctx.rows(EventKind.PAGE_VIEW)
    if len(views) == 0:
        return empty_raw()
    # Each distinct URL's path is matched once; the rows look their step up by code.
    codes, urls = ctx.code_strings(views)
    step_of = (
        pl.DataFrame({"u": urls})
        .select(
            path_of(pl.col("u")).replace_strict(
                {s: i for i, s in enumerate(cfg.steps)}, default=-1, return_dtype=pl.Int64
            )
        )
        .to_series()
        .to_numpy()
    )
    if not (step_of >= 0).any():
        return empty_raw()
    step = ctx.lookup(ctx.target_lut(codes, step_of, -1), ctx.target_at(views))
    seg = ctx.seg(views)
    entry, reach, stepk = K.funnel_walk(seg, ctx.t[views], step, len(cfg.steps), cfg.window_ms)
    if len(entry) == 0:
        return empty_raw()
    rows = views[reach]
    s = seg[reach]
    end = np.minimum(ctx.t[ctx.starts[s + 1] - 1], ctx.t[views[entry]] + cfg.window_ms)
    df = pl.DataFrame(
        {
            "row": rows,
            "t": ctx.t[rows],
            "t0": ctx.t[views[entry]],
            "end": end,
            "k": stepk,
            "session_id": ctx.strings("session_id", rows),
        }
    ).with_row_index("_i")
    others: pl.DataFrame | None = ctx.cache.get("findings")
    if others is not None and others.height:
        # The last finding by t; findings at the same t in the order the detectors run,
        # then by page view, target and field, so that the choice never depends on the
        # order the findings come in (a pipeline gathers them from two steps).
        rank = {k: i for i, k in enumerate(FINDING_KINDS)}
        last = (
            df.select("_i", "session_id", "t0", "end")
            .join(
                others.select(
                    "session_id",
                    "t",
                    pl.col("kind").replace_strict(rank, default=len(rank)).alias("_k"),
                    "kind",
                    "page_view",
                    "target",
                    "field",
                ),
                on="session_id",
            )
            .filter(pl.col("t") <= pl.col("end"))
            .sort("_i", "t", "_k", "page_view", "target", "field", nulls_last=False)
            .group_by("_i", maintain_order=True)
            .agg(pl.all().last())
            .select(
                "_i",
                pl.format(
                    "{} on {}",
                    pl.col("kind"),
                    pl.coalesce(pl.col("field"), pl.col("target"), pl.lit("the page")),
                ).alias("struggle"),
            )
        )
        df = df.join(last, on="_i", how="left")
    else:
        df = df.with_columns(struggle=pl.lit(None, dtype=pl.String))
    steps = pl.Series(list(cfg.steps))
    df = df.sort("_i").with_columns(
        step=steps.gather(df["k"].to_numpy()),
        next=steps.gather(np.minimum(df["k"].to_numpy() + 1, len(cfg.steps) - 1)),
    )
    n = len(cfg.steps)
    df = df.with_columns(
        explanation=pl.format(
            "entered the funnel at {} and left at step {} of {} ({}) without reaching {}; "
            "last struggle before: {}",
            pl.lit(cfg.steps[0]),
            pl.col("k") + 1,
            pl.lit(n),
            pl.col("step"),
            pl.col("next"),
            pl.col("struggle").fill_null("none found"),
        ),
        severity=((pl.col("k") + 1) / (n - 1)).clip(0.3, 1.0),
    )
    return raw(
        row=df["row"],
        t=df["t"],
        severity=df["severity"],
        count=(df["k"] + 1),
        duration_ms=df["end"] - df["t0"],
        detail=df["step"],
        explanation=df["explanation"],
    )
