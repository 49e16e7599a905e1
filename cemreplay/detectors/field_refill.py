"""field_refill: a field filled, left and filled again (Matomo's "amendments").

Rule: a CHANGE of a field is a refill when the same field had an earlier CHANGE in the same
page view and, between the two, the field was left (a BLUR of it) or a submit of the page
view failed (see :mod:`cemreplay.detectors.failed_submit`). So every return to a field counts
once, however many keystrokes follow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from cemreplay.detectors._base import Context, empty_raw, raw, register, secs
from cemreplay.detectors._forms import form_events, of_kind
from cemreplay.detectors.failed_submit import FailedSubmitConfig, failures
from cemreplay.schema import EventKind

__all__ = ["FieldRefillConfig", "run"]


@dataclass(frozen=True)
class FieldRefillConfig:
    """:mod:`cemreplay.detectors.field_refill` has no threshold (failed submits follow the
    failed_submit config)."""


@register("field_refill", FieldRefillConfig, "a field changed, left, and changed again")
def run(ctx: Context, cfg: FieldRefillConfig) -> pl.DataFrame:
    ev = form_events(ctx)
    changes = of_kind(ev, EventKind.CHANGE).select("row", "seg", "pv", "f", "t")
    if changes.height < 2:
        return empty_raw()
    changes = changes.with_columns(
        prev=pl.col("row").shift().over("seg", "pv", "f"),
        t_prev=pl.col("t").shift().over("seg", "pv", "f"),
        nth=pl.int_range(pl.len()).over("seg", "pv", "f"),
    )
    blurs = of_kind(ev, EventKind.BLUR).select("seg", "pv", "f", pl.col("row").alias("blur"))
    fs = ctx.cache.get("cfg:failed_submit", FailedSubmitConfig())
    failed = (
        failures(ctx, fs).filter(pl.col("failed")).select("seg", "pv", pl.col("row").alias("fail"))
    )
    df = changes.join_asof(
        blurs,
        left_on="row",
        right_on="blur",
        by=["seg", "pv", "f"],
        strategy="backward",
        check_sortedness=False,
    ).join_asof(
        failed,
        left_on="row",
        right_on="fail",
        by=["seg", "pv"],
        strategy="backward",
        check_sortedness=False,
    )
    left = pl.col("blur").is_not_null() & (pl.col("blur") > pl.col("prev"))
    resubmit = pl.col("fail").is_not_null() & (pl.col("fail") > pl.col("prev"))
    df = df.filter(pl.col("prev").is_not_null() & (left | resubmit)).with_columns(
        why=pl.when(resubmit)
        .then(pl.lit("after a failed submit"))
        .otherwise(pl.lit("after leaving it"))
    )
    if df.height == 0:
        return empty_raw()
    rows = df["row"].to_numpy()
    df = df.with_columns(
        field=ctx.strings("target", rows),
        shape=ctx.strings("text", rows),
        before=ctx.strings("text", df["prev"].to_numpy()),
        dt=pl.col("t") - pl.col("t_prev"),
    )
    df = df.with_columns(
        n=pl.col("why").cum_count().over(pl.col("seg"), pl.col("pv"), pl.col("f")),
    ).with_columns(
        explanation=pl.format(
            'field {} changed again {} s later {} ("{}" -> "{}"), return {} to it',
            pl.col("field").fill_null("(unnamed)"),
            secs(pl.col("dt")),
            pl.col("why"),
            pl.col("before").fill_null(""),
            pl.col("shape").fill_null(""),
            pl.col("n"),
        ),
        severity=(0.2 * pl.col("n")).clip(0.2, 1.0),
    )
    return raw(
        row=df["row"],
        t=df["t"],
        severity=df["severity"],
        count=df["n"],
        duration_ms=df["dt"],
        field=df["field"],
        detail=df["why"],
        explanation=df["explanation"],
    )


_ = np  # numpy is used through polars conversions above
