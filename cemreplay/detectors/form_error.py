"""form_error: a field rejected what was typed.

Rule: every VALIDATION_ERROR event is a finding, on its field, with its message and the
shape (the masked form: letters ``a``/``A``, digits ``9``, the rest kept) and length of the
field's last CHANGE or BLUR before it in the same page view, so a support rep sees that
``+99 999 99 999`` was rejected without any digit being stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from cemreplay.detectors import _kernels as K
from cemreplay.detectors._base import Context, empty_raw, raw, register
from cemreplay.detectors._forms import by_parts, form_events, of_kind
from cemreplay.schema import ErrorSource, EventKind

__all__ = ["FormErrorConfig", "run"]


@dataclass(frozen=True)
class FormErrorConfig:
    """:mod:`cemreplay.detectors.form_error` has no threshold: every validation error counts."""


_SOURCE = {int(s): s.name.lower() for s in ErrorSource}


@register("form_error", FormErrorConfig, "every VALIDATION_ERROR, with the shape last typed")
def run(ctx: Context, cfg: FormErrorConfig) -> pl.DataFrame:
    ev = form_events(ctx)
    errors = of_kind(ev, EventKind.VALIDATION_ERROR)
    if errors.height == 0:
        return empty_raw()
    cuts, got = by_parts(
        ctx,
        ev,
        K.last_typed,
        int(EventKind.VALIDATION_ERROR),
        int(EventKind.CHANGE),
        int(EventKind.BLUR),
    )
    typed = np.concatenate(
        [np.where(r >= 0, r + a, -1) for (a, _), r in zip(cuts, got, strict=True)]
    )
    df = errors
    rows = df["row"].to_numpy()
    has = typed >= 0
    safe = np.where(has, ev["row"].to_numpy()[np.maximum(typed, 0)], rows)
    df = df.with_columns(
        field=ctx.strings("target", rows),
        message=ctx.strings("text", rows),
        shape=pl.when(pl.Series(has)).then(ctx.strings("text", safe)),
        length=pl.when(pl.Series(has)).then(pl.Series(ctx.a[safe])),
        source=pl.Series(ctx.a[rows]).replace_strict(
            _SOURCE, default="other", return_dtype=pl.String
        ),
    )
    message = pl.col("message").fill_null("(no message)")
    df = df.with_columns(
        explanation=pl.when(pl.col("shape").is_not_null())
        .then(
            pl.format(
                'field {} rejected "{}" ({} characters typed): "{}" ({} validation)',
                pl.col("field").fill_null("(unnamed)"),
                pl.col("shape"),
                pl.col("length"),
                message,
                pl.col("source"),
            )
        )
        .otherwise(
            pl.format(
                'field {} showed "{}" ({} validation) with nothing typed in it before',
                pl.col("field").fill_null("(unnamed)"),
                message,
                pl.col("source"),
            )
        ),
        detail=pl.when(pl.col("shape").is_not_null())
        .then(pl.format("{} | {}", message, pl.col("shape")))
        .otherwise(message),
    )
    return raw(
        row=df["row"],
        t=df["t"],
        severity=np.full(df.height, 0.5),
        count=np.ones(df.height, dtype=np.uint32),
        duration_ms=np.zeros(df.height, dtype=np.int64),
        field=df["field"],
        detail=df["detail"],
        explanation=df["explanation"],
    )
