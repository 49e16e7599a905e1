"""The form events of a context as a small polars frame, shared by the form detectors."""

from __future__ import annotations

import numpy as np
import polars as pl

from cemreplay.detectors._base import Context
from cemreplay.schema import EventKind

FORM_KINDS = (
    EventKind.PAGE_VIEW,
    EventKind.FOCUS,
    EventKind.BLUR,
    EventKind.CHANGE,
    EventKind.SUBMIT,
    EventKind.VALIDATION_ERROR,
    EventKind.MILESTONE,
)


def form_events(ctx: Context) -> pl.DataFrame:
    """Rows of the form-related kinds: row, seg (session index), pv, kind, t, f (target
    code, -1 null), url (page URL code), a; in row order."""
    if "forms" not in ctx.cache:
        lut = np.zeros(256, dtype=np.bool_)
        for k in FORM_KINDS:
            lut[int(k)] = True
        rows = np.flatnonzero(lut[ctx.kind])
        ctx.cache["forms"] = pl.DataFrame(
            {
                "row": rows,
                "seg": np.searchsorted(ctx.starts, rows, side="right") - 1,
                "pv": ctx.pv[rows],
                "kind": ctx.kind[rows].astype(np.int64),
                "t": ctx.t[rows],
                "f": ctx.target[rows],
                "url": ctx.url_codes()[rows],
                "a": ctx.a[rows],
            }
        )
    out: pl.DataFrame = ctx.cache["forms"]
    return out


def of_kind(df: pl.DataFrame, *kinds: EventKind) -> pl.DataFrame:
    return df.filter(pl.col("kind").is_in([int(k) for k in kinds]))


def session_end(ctx: Context, seg: pl.Series) -> np.ndarray:
    """t of the last event of each session index in ``seg``."""
    last = ctx.t[ctx.starts[1:] - 1]
    out: np.ndarray = last[seg.to_numpy()]
    return out
