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

from cemreplay.detectors import _kernels as K
from cemreplay.detectors import _parallel as P
from cemreplay.detectors._base import Context, empty_raw, raw, register, secs
from cemreplay.detectors._forms import by_parts, form_events
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
    if ev.height < 2:
        return empty_raw()
    fs = ctx.cache.get("cfg:failed_submit", FailedSubmitConfig())
    failed_rows = failures(ctx, fs).filter(pl.col("failed"))["row"].to_numpy()
    row = ev["row"].to_numpy()
    cuts, got = by_parts(
        ctx,
        ev,
        K.refills,
        int(EventKind.CHANGE),
        int(EventKind.BLUR),
        extra=(np.isin(row, failed_rows),),
    )
    k, prev = (
        np.concatenate([a + r[i] for (a, _), r in zip(cuts, got, strict=True)]) for i in (0, 1)
    )
    resub, nth = (P.cat(got, i) for i in (2, 3))
    if len(k) == 0:
        return empty_raw()
    df = pl.DataFrame(
        {
            "row": row[k],
            "t": ctx.t[row[k]],
            "t_prev": ctx.t[row[prev]],
            "prev": row[prev],
            "n": nth,
            "why": np.where(resub == 1, "after a failed submit", "after leaving it"),
        }
    )
    rows = df["row"].to_numpy()
    df = df.with_columns(
        field=ctx.strings("target", rows),
        shape=ctx.strings("text", rows),
        before=ctx.strings("text", df["prev"].to_numpy()),
        dt=pl.col("t") - pl.col("t_prev"),
    )
    df = df.with_columns(
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
