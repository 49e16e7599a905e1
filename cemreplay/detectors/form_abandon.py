"""form_abandon: a form started and never sent successfully.

Rule: a session touched a form field on a page URL (a FOCUS or a CHANGE of a named field)
and no SUBMIT on that URL after the last touch went through (a submit counts unless
:mod:`cemreplay.detectors.failed_submit` calls it failed) before the session ended. One
finding per session and URL, at the last touch; the drop-off field is the last field
touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from cemreplay.detectors._base import Context, check_bool, empty_raw, raw, register
from cemreplay.detectors._forms import form_events, of_kind
from cemreplay.detectors.failed_submit import FailedSubmitConfig, failures
from cemreplay.schema import EventKind

__all__ = ["FormAbandonConfig", "run"]


@dataclass(frozen=True)
class FormAbandonConfig:
    """Options of :mod:`cemreplay.detectors.form_abandon`."""

    #: A FOCUS alone starts a form (as the issue and Hotjar's form analysis do); when False,
    #: only a CHANGE (something typed or picked) does.
    start_on_focus: bool = True

    def __post_init__(self) -> None:
        check_bool(self, "start_on_focus")


@register(
    "form_abandon",
    FormAbandonConfig,
    "a field focused or changed and no successful submit on that page before the end",
)
def run(ctx: Context, cfg: FormAbandonConfig) -> pl.DataFrame:
    ev = form_events(ctx)
    kinds = (EventKind.FOCUS, EventKind.CHANGE) if cfg.start_on_focus else (EventKind.CHANGE,)
    touches = of_kind(ev, *kinds).filter(pl.col("f") >= 0)
    if touches.height == 0:
        return empty_raw()
    fs = ctx.cache.get("cfg:failed_submit", FailedSubmitConfig())
    sub = failures(ctx, fs)
    sent = sub.filter(~pl.col("failed")).group_by("seg", "url").agg(pl.col("row").max().alias("ok"))
    nfail = sub.filter(pl.col("failed")).group_by("seg", "url").agg(pl.len().alias("fails"))
    per = touches.group_by("seg", "url").agg(
        pl.col("row").max().alias("last"),
        pl.col("row").min().alias("first"),
        pl.col("f").n_unique().alias("fields"),
    )
    per = (
        per.join(sent, on=["seg", "url"], how="left")
        .join(nfail, on=["seg", "url"], how="left")
        .filter(pl.col("ok").is_null() | (pl.col("ok") < pl.col("last")))
        .sort("last")
    )
    if per.height == 0:
        return empty_raw()
    rows = per["last"].to_numpy()
    per = per.with_columns(
        t=pl.Series(ctx.t[rows]),
        dur=pl.Series(ctx.t[rows] - ctx.t[per["first"].to_numpy()]),
        field=ctx.strings("target", rows),
        fails=pl.col("fails").fill_null(0),
    )
    per = per.with_columns(
        explanation=pl.format(
            "filled in {} field(s) of this page's form over {} s{} and never sent it "
            "successfully; last field touched: {}",
            pl.col("fields"),
            (pl.col("dur") / 1000).round(1),
            pl.when(pl.col("fails") > 0)
            .then(pl.format(" (after {} failed submit(s))", pl.col("fails")))
            .otherwise(pl.lit("")),
            pl.col("field"),
        ),
        severity=pl.when(pl.col("fails") > 0).then(1.0).otherwise(0.6),
    )
    return raw(
        row=per["last"],
        t=per["t"],
        severity=per["severity"],
        count=per["fields"],
        duration_ms=per["dur"],
        field=per["field"],
        explanation=per["explanation"],
    )


_ = np
