"""excessive_scroll: scrolling up and down a page far more than others do on that page.

Rule (after Clarity, which compares against the page's expected average): count the page
view's scroll direction reversals (vertical, zero moves skipped). The baseline of a URL is
the mean reversals over all its page views in the input (or in all the data, when
``detect`` is given :class:`~cemreplay.detectors.baselines.Baselines`). A page view is
flagged when its reversals reach ``min_reversals`` and ``multiplier`` times the baseline.
With fewer than ``min_baseline_views`` page views of a URL there is no baseline and the bar
is ``fallback_reversals``. One finding per page view, at the scroll that reached the bar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from cemreplay.detectors import _kernels as K
from cemreplay.detectors import _parallel as P
from cemreplay.detectors._base import (
    Context,
    check_float,
    check_int,
    empty_raw,
    raw,
    register,
)
from cemreplay.detectors.baselines import SCROLL_SCHEMA, Baselines, url_keys
from cemreplay.schema import EventKind

__all__ = ["ExcessiveScrollConfig", "kept_rows", "partial", "run"]


@dataclass(frozen=True)
class ExcessiveScrollConfig:
    """Thresholds of :mod:`cemreplay.detectors.excessive_scroll`."""

    #: Reversals a page view needs at the least (Clarity does not publish its bar; 4 is two
    #: full up-and-down passes, rare when reading).
    min_reversals: int = 4
    #: Times the page's mean reversals a page view must reach ("far above" the baseline).
    multiplier: float = 3.0
    #: Page views of a URL needed for a baseline.
    min_baseline_views: int = 20
    #: Reversals needed when the URL has no baseline.
    fallback_reversals: int = 8

    def __post_init__(self) -> None:
        check_int(self, "min_reversals", 1, 100_000)
        check_float(self, "multiplier", 1.0, 1_000.0)
        check_int(self, "min_baseline_views", 1, 10**9)
        check_int(self, "fallback_reversals", 1, 100_000)


def _scrolled(
    ctx: Context,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per scrolled page view: its first scroll's row and its reversals, and where each
    session-disjoint part's page views start in them (cached)."""
    if "scroll:first,total" not in ctx.cache:
        scroll = ctx.rows(EventKind.SCROLL)
        pv = ctx.pv_or_empty()
        none = np.zeros(0, dtype=np.float64)
        got = P.over_rows(
            lambda rows, _: K.scroll_pages(ctx.starts, rows, ctx.y, pv, ctx.views, none),
            ctx.starts,
            scroll,
        )
        first = np.concatenate([r[0] for _, _, r in got])
        total = np.concatenate([r[1] for _, _, r in got])
        groups = np.cumsum([0] + [len(r[0]) for _, _, r in got])  # page views of each part
        ctx.cache["scroll:first,total"] = (first, total, groups)
    out: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]] = ctx.cache[
        "scroll:first,total"
    ]
    return out


def _first_pages(ctx: Context) -> npt.NDArray[np.int64]:
    """Per scrolled page view: the row of its PAGE_VIEW (cached; the baseline and the run
    both need it)."""
    if "scroll:pages" not in ctx.cache:
        ctx.cache["scroll:pages"] = ctx.pv_row_at(_scrolled(ctx)[0])
    out: npt.NDArray[np.int64] = ctx.cache["scroll:pages"]
    return out


def partial(ctx: Context) -> pl.DataFrame:
    """This table's part of the baseline (:data:`~cemreplay.detectors.baselines.SCROLL_SCHEMA`):
    per URL, every page view (scrolled or not) and the reversals summed over them."""
    first, total, _ = _scrolled(ctx)
    views = ctx.rows(EventKind.PAGE_VIEW)
    keys, names = url_keys(ctx, np.concatenate([_first_pages(ctx), ctx.pv_row_at(views)]))
    n_views = np.bincount(keys[len(first) :], minlength=len(names))
    sums = np.bincount(keys[: len(first)], weights=total, minlength=len(names))
    return pl.DataFrame(
        {"url": names, "views": n_views, "reversals": sums.astype(np.int64)},
        schema=SCROLL_SCHEMA,
    )


def kept_rows(ctx: Context, cfg: ExcessiveScrollConfig) -> npt.NDArray[np.int64]:
    """The rows besides the PAGE_VIEW events that :func:`run` reads once the baselines are
    known: the scrolls of the sessions holding a page view that any baseline could flag
    (``detect_split`` keeps them). A page view is flagged at or above its bar, and the bar
    is at least ``min_reversals`` with a baseline and ``fallback_reversals`` without."""
    scroll = ctx.rows(EventKind.SCROLL)
    if len(scroll) == 0:
        return scroll
    first, total, _ = _scrolled(ctx)
    lo = min(cfg.min_reversals, cfg.fallback_reversals)
    want = np.zeros(len(ctx.starts) - 1, dtype=np.bool_)
    want[ctx.seg(first[total >= lo])] = True
    out: npt.NDArray[np.int64] = scroll[want[ctx.seg(scroll)]]
    return out


def _reached(
    ctx: Context,
    scroll: npt.NDArray[np.int64],
    first: npt.NDArray[np.int64],
    flagged: npt.NDArray[np.bool_],
    bar: npt.NDArray[np.float64],
) -> npt.NDArray[np.int64]:
    """Per scrolled page view: the row of the scroll whose running count of reversals
    reached ``bar`` (-1 when not ``flagged``). A second pass of the kernel, over the scrolls of
    the sessions that hold a flagged page view only (page views never span sessions, and
    the kernel numbers them in order of their first scroll within the rows it is given)."""
    session = ctx.seg(first)
    want = np.zeros(len(ctx.starts) - 1, dtype=np.bool_)
    want[session[flagged]] = True
    chosen = np.flatnonzero(want)
    lo = np.searchsorted(scroll, ctx.starts[chosen])
    hi = np.searchsorted(scroll, ctx.starts[chosen + 1])
    size = hi - lo
    ends = np.cumsum(size)
    rows = scroll[np.arange(ends[-1]) + np.repeat(lo - ends + size, size)]
    mine = want[session]  # the page views of those sessions, in the kernel's order
    bars = np.where(flagged, bar, np.inf)[mine]
    got = K.scroll_pages(ctx.starts, rows, ctx.y, ctx.pv_or_empty(), ctx.views, bars)
    out = np.full(len(first), -1, dtype=np.int64)
    out[mine] = got[2]
    return out


@register(
    "excessive_scroll",
    ExcessiveScrollConfig,
    ">= 4 scroll reversals and >= 3x the page's mean reversals",
)
def run(ctx: Context, cfg: ExcessiveScrollConfig) -> pl.DataFrame:
    scroll = ctx.rows(EventKind.SCROLL)
    if len(scroll) == 0:
        return empty_raw()
    first, total, _ = _scrolled(ctx)
    # Baseline over every page view of the URL, scrolled or not, in all the data (given) or
    # in this table.
    given: Baselines | None = ctx.cache.get("baselines")
    table = given.scroll if given is not None else partial(ctx)
    keys, names = url_keys(ctx, _first_pages(ctx))
    stats = pl.DataFrame({"url": names}).join(
        table, on="url", how="left", nulls_equal=True, maintain_order="left"
    )
    v = stats["views"].fill_null(0).to_numpy()[keys]
    sums = stats["reversals"].fill_null(0).to_numpy()[keys]
    mu = np.divide(sums, v, out=np.zeros(len(v)), where=v > 0)
    has_base = v >= cfg.min_baseline_views
    bar = np.where(
        has_base,
        np.maximum(float(cfg.min_reversals), mu * cfg.multiplier),
        float(cfg.fallback_reversals),
    )
    flagged = total >= bar
    if not flagged.any():
        return empty_raw()
    reached = _reached(ctx, scroll, first, flagged, bar)
    hit = pl.DataFrame(
        {
            "r0": first[flagged],
            "row": reached[flagged],
            "bar": bar[flagged],
            "total": total[flagged],
            "mean": mu[flagged],
            "views": v[flagged].astype(np.uint32),
        }
    )
    rows = hit["row"].to_numpy()
    hit = hit.with_columns(t=pl.Series(ctx.t[rows]))
    hit = hit.with_columns(
        dur=pl.col("t") - pl.Series(ctx.t[hit["r0"].to_numpy()]),
        explanation=pl.format(
            "scroll direction reversed {} times on this page view; {}",
            pl.col("total"),
            pl.when(pl.col("views") >= cfg.min_baseline_views)
            .then(
                pl.format(
                    "the page's mean over {} page views is {}",
                    pl.col("views"),
                    pl.col("mean").round(2),
                )
            )
            .otherwise(
                pl.format(
                    "too few page views of this URL ({}) for a baseline, bar {}",
                    pl.col("views"),
                    pl.lit(cfg.fallback_reversals),
                )
            ),
        ),
        severity=(pl.col("total") / (2.0 * pl.col("bar"))).clip(0.3, 1.0),
    )
    return raw(
        row=hit["row"],
        t=hit["t"],
        severity=hit["severity"],
        count=hit["total"],
        duration_ms=hit["dur"],
        explanation=hit["explanation"],
    )
