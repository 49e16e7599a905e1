"""failed_submit: a form sent that did not go through.

Rule: a SUBMIT is failed when a VALIDATION_ERROR follows it in the same session within
``error_window_ms`` (or precedes it by at most ``tolerance_ms``: native validation fires
before the submit), or when no success (a page view, or a MILESTONE, by default any) follows
within ``success_window_ms`` although the session went on past that window. A submit whose
session ends inside the window has an unknown outcome and is not reported.
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
    secs,
)
from cemreplay.detectors._forms import form_events, of_kind, session_end
from cemreplay.schema import EventKind

__all__ = ["FailedSubmitConfig", "failures", "run"]


@dataclass(frozen=True)
class FailedSubmitConfig:
    """Thresholds of :mod:`cemreplay.detectors.failed_submit`."""

    #: A validation error this soon after a submit marks it failed, ms (inline and API
    #: validation answer within a round trip or two).
    error_window_ms: int = 5_000
    #: A validation error stamped this much before the submit still counts, ms.
    tolerance_ms: int = 50
    #: Time a success (navigation or milestone) may take, ms (a slow server round trip plus
    #: a page load; Google's "poor" LCP bar is 4 s, doubled and rounded up).
    success_window_ms: int = 10_000
    #: Milestone names that mean success; empty: any milestone.
    success_milestones: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_int(self, "error_window_ms", 1, 3_600_000)
        check_int(self, "tolerance_ms", 0, 60_000)
        check_int(self, "success_window_ms", 1, 3_600_000)
        check_strings(self, "success_milestones", non_empty=False)


def failures(ctx: Context, cfg: FailedSubmitConfig) -> pl.DataFrame:
    """Every SUBMIT with its outcome: row, seg, pv, url, t, failed, error_row, reason."""
    key = f"submits:{cfg}"
    if key in ctx.cache:
        out: pl.DataFrame = ctx.cache[key]
        return out
    ev = form_events(ctx)
    kind = ev["kind"].to_numpy()
    ok = (kind == int(EventKind.PAGE_VIEW)) | (kind == int(EventKind.MILESTONE))
    if cfg.success_milestones:
        names = ctx.strings("target", ev["row"].to_numpy()[ok])
        ok[ok] = (kind[ok] == int(EventKind.PAGE_VIEW)) | names.is_in(
            list(cfg.success_milestones)
        ).fill_null(False).to_numpy()
    # The next validation error, the previous one and the next success of each submit in
    # its session, in one kernel over the form events (sorted by row within sessions).
    after, before, success_at = K.submit_neighbours(
        ev["seg"].to_numpy(),
        kind,
        ok,
        int(EventKind.SUBMIT),
        int(EventKind.VALIDATION_ERROR),
    )
    row, t = ev["row"].to_numpy(), ev["t"].to_numpy()

    def at(col: np.ndarray, index: np.ndarray) -> pl.Series:
        return pl.Series(col[np.maximum(index, 0)]).set(pl.Series(index < 0), None)

    df = of_kind(ev, EventKind.SUBMIT).select("row", "seg", "pv", "url", "t")
    df = df.with_columns(
        err=at(row, after),
        t_err=at(t, after),
        err_b=at(row, before),
        t_err_b=at(t, before),
        ok=at(row, success_at),
        t_ok=at(t, success_at),
    )
    end = session_end(ctx, df["seg"])
    df = df.with_columns(end=pl.Series(end))
    after = pl.col("t_err").is_not_null() & (pl.col("t_err") - pl.col("t") <= cfg.error_window_ms)
    before = pl.col("t_err_b").is_not_null() & (pl.col("t") - pl.col("t_err_b") <= cfg.tolerance_ms)
    success = pl.col("t_ok").is_not_null() & (pl.col("t_ok") - pl.col("t") <= cfg.success_window_ms)
    silent = ~success & (pl.col("end") - pl.col("t") > cfg.success_window_ms)
    df = (
        df.with_columns(
            error_row=pl.when(before & ~after)
            .then(pl.col("err_b"))
            .when(after)
            .then(pl.col("err")),
        )
        .with_columns(
            failed=pl.col("error_row").is_not_null() | silent,
            outcome=pl.when(pl.col("error_row").is_not_null())
            .then(pl.lit("error"))
            .when(success)
            .then(pl.lit("success"))
            .when(silent)
            .then(pl.lit("silent"))
            .otherwise(pl.lit("unknown")),
        )
        .select("row", "seg", "pv", "url", "t", "failed", "error_row", "outcome")
    )
    ctx.cache[key] = df
    return df


@register(
    "failed_submit",
    FailedSubmitConfig,
    "a SUBMIT followed by a validation error within 5 s or by no success within 10 s",
)
def run(ctx: Context, cfg: FailedSubmitConfig) -> pl.DataFrame:
    df = failures(ctx, cfg).filter(pl.col("failed"))
    if df.height == 0:
        return empty_raw()
    rows = df["row"].to_numpy()
    err = df["error_row"].fill_null(-1).to_numpy()
    has = err >= 0
    safe = np.where(has, err, rows)
    df = df.with_columns(
        form=ctx.strings("target", rows),
        field=pl.when(pl.Series(has)).then(ctx.strings("target", safe)),
        message=pl.when(pl.Series(has)).then(ctx.strings("text", safe)),
        delay=pl.when(pl.Series(has)).then(pl.Series(ctx.t[safe] - ctx.t[rows])),
    )
    df = df.with_columns(
        explanation=pl.when(pl.col("outcome") == "error")
        .then(
            pl.format(
                'submitting {} was rejected {} s later: field {} showed "{}"',
                pl.col("form").fill_null("the form"),
                secs(pl.col("delay")),
                pl.col("field").fill_null("(unnamed)"),
                pl.col("message").fill_null("(no message)"),
            )
        )
        .otherwise(
            pl.format(
                "submitting {} led to no navigation and no success milestone within {} s",
                pl.col("form").fill_null("the form"),
                secs(pl.lit(cfg.success_window_ms)),
            )
        ),
        detail=pl.when(pl.col("outcome") == "error")
        .then(pl.format("validation error: {}", pl.col("message").fill_null("(no message)")))
        .otherwise(pl.lit("no success")),
        severity=pl.when(pl.col("outcome") == "error").then(0.7).otherwise(0.8),
    )
    return raw(
        row=df["row"],
        t=df["t"],
        severity=df["severity"],
        count=np.ones(df.height, dtype=np.uint32),
        duration_ms=df["delay"].fill_null(cfg.success_window_ms),
        target=df["form"],
        field=df["field"],
        detail=df["detail"],
        explanation=df["explanation"],
    )
