"""quick_back: going to a page and coming straight back to the previous one.

Rule: page views A, B, A' in a row within a session (B's URL differs from A's, A' has A's
URL). The dwell on B is the time from B's page view to A''s. It is a quick back when the
dwell is under ``quick_ms`` with no interaction on B (no click, focus, change or submit), or
when it is under ``baseline_ratio`` times B's median dwell (over every page view of B's URL
followed by another page view in the input, or in all the data when ``detect`` is given
:class:`~cemreplay.detectors.baselines.Baselines`; with at least ``min_baseline_views`` of
them).
One finding per return, at the return, on page view B.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from cemreplay.detectors._base import (
    Context,
    check_float,
    check_int,
    empty_raw,
    raw,
    register,
    secs,
)
from cemreplay.detectors.baselines import (
    Baselines,
    medians,
    url_keys,
    url_value_counts,
)
from cemreplay.schema import EventKind

__all__ = ["QuickBackConfig", "candidates", "kept_rows", "partial", "run"]

_INTERACTION = (EventKind.CLICK, EventKind.FOCUS, EventKind.CHANGE, EventKind.SUBMIT)


@dataclass(frozen=True)
class QuickBackConfig:
    """Thresholds of :mod:`cemreplay.detectors.quick_back`."""

    #: Dwell under which a return without interaction is quick, ms (the issue's 5 s; Google's
    #: "pogo-sticking" and Clarity's quick backs are returns within seconds).
    quick_ms: int = 5_000
    #: A return is also quick under this fraction of the page's median dwell.
    baseline_ratio: float = 0.25
    #: Page views of a URL (with a next page view) needed for its dwell baseline.
    min_baseline_views: int = 20

    def __post_init__(self) -> None:
        check_int(self, "quick_ms", 1, 3_600_000)
        check_float(self, "baseline_ratio", 0.0, 1.0)
        check_int(self, "min_baseline_views", 1, 10**9)


def _dwells(ctx: Context) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """Per page view: is the next page view in the same session, and the dwell until it
    (-1 when there is none)."""
    views = ctx.views
    seg = ctx.seg(views)
    t = ctx.t[views]
    same_next = np.zeros(len(views), dtype=np.bool_)
    same_next[:-1] = seg[1:] == seg[:-1]
    dwell = np.full(len(views), -1, dtype=np.int64)
    dwell[:-1] = t[1:] - t[:-1]
    dwell[~same_next] = -1
    return same_next, dwell


def candidates(ctx: Context) -> npt.NDArray[np.int64]:
    """The returns that may be quick backs, whatever the baselines: indices into
    ``ctx.views`` of each page view B of an A, B, A' in a row within a session."""
    views = ctx.views
    if len(views) < 3:
        return np.zeros(0, dtype=np.int64)
    url = ctx.target_at(views)
    same_next, _ = _dwells(ctx)
    cand = np.zeros(len(views), dtype=np.bool_)
    cand[1:-1] = same_next[1:-1] & same_next[:-2] & (url[2:] == url[:-2]) & (url[1:-1] != url[:-2])
    return np.flatnonzero(cand)


def kept_rows(ctx: Context) -> npt.NDArray[np.int64]:
    """The rows besides the PAGE_VIEW events that :func:`run` reads: the interactions of
    the sessions that hold a :func:`candidates` return (``detect_split`` keeps them)."""
    k = candidates(ctx)
    want = np.zeros(len(ctx.starts) - 1, dtype=np.bool_)
    want[ctx.seg(ctx.views[k])] = True
    acts = ctx.rows(*_INTERACTION)
    out: npt.NDArray[np.int64] = acts[want[ctx.seg(acts)]]
    return out


def partial(ctx: Context) -> pl.DataFrame:
    """This table's part of the baseline (:data:`~cemreplay.detectors.baselines.DWELL_SCHEMA`):
    per URL and dwell, the page views followed by another page view after that dwell
    (grouped by URL, dwell ascending within a URL)."""
    _, dwell = _dwells(ctx)
    keep = dwell >= 0
    return url_value_counts(ctx, ctx.views[keep], dwell[keep])


@register(
    "quick_back",
    QuickBackConfig,
    "A -> B -> A with under 5 s on B and no interaction, or under 1/4 of B's median dwell",
)
def run(ctx: Context, cfg: QuickBackConfig) -> pl.DataFrame:
    views = ctx.views
    k = candidates(ctx)
    if len(k) == 0:
        return empty_raw()
    t = ctx.t[views]
    # Interactions per page view: each counts on the row of its page view's PAGE_VIEW.
    acts = ctx.per_view(*_INTERACTION)
    _, dwell = _dwells(ctx)
    # The median dwell per URL, over all the data (given) or this table.
    given: Baselines | None = ctx.cache.get("baselines")
    base = given.dwell_medians if given is not None else medians(partial(ctx), grouped=True)
    keys, names = url_keys(ctx, views[k])
    df = (
        pl.DataFrame({"k": k, "url": names.gather(keys), "dwell": dwell[k], "acts": acts[k]})
        .join(base, on="url", how="left", nulls_equal=True)
        .with_columns(
            fast=(pl.col("dwell") < cfg.quick_ms) & (pl.col("acts") == 0),
            under=(pl.col("views") >= cfg.min_baseline_views)
            & (pl.col("dwell") < cfg.baseline_ratio * pl.col("median")),
        )
        .filter(pl.col("fast") | pl.col("under"))
        .sort("k")
    )
    if df.height == 0:
        return empty_raw()
    kk = df["k"].to_numpy()
    rows = views[kk]
    df = df.with_columns(
        row=pl.Series(rows),
        t=pl.Series(t[kk + 1]),
        back=ctx.strings("target", views[kk - 1]),
    )
    why = (
        pl.when(pl.col("under"))
        .then(
            pl.format(
                "under {} of the page's median dwell of {} s",
                pl.lit(cfg.baseline_ratio),
                secs(pl.col("median")),
            )
        )
        .otherwise(pl.format("under {} s with no interaction", secs(pl.lit(cfg.quick_ms))))
    )
    df = df.with_columns(
        explanation=pl.format(
            "went back to {} after {} s on this page ({} interactions), {}",
            pl.col("back").fill_null("the previous page"),
            secs(pl.col("dwell")),
            pl.col("acts"),
            why,
        ),
        severity=(1.0 - pl.col("dwell") / (2.0 * cfg.quick_ms)).clip(0.3, 1.0),
    )
    return raw(
        row=df["row"],
        t=df["t"],
        severity=df["severity"],
        count=df["acts"],
        duration_ms=df["dwell"],
        target=df["back"],
        explanation=df["explanation"],
    )
