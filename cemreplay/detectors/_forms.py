"""The form events of a context as a small polars frame, shared by the form detectors."""

from __future__ import annotations

import numpy as np
import polars as pl

from cemreplay.detectors._base import NULL, Context
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


def signed(codes: np.ndarray) -> np.ndarray:
    """Target codes as Int64 with -1 for null."""
    out = codes.astype(np.int64)
    out[codes == NULL] = -1
    return out


def form_events(ctx: Context) -> pl.DataFrame:
    """Rows of the form-related kinds: row, seg (session index), pv, kind, t, f (target
    code, -1 null), url (page URL code, -1 unknown), a; in row order."""
    if "forms" not in ctx.cache:
        rows = ctx.rows(*FORM_KINDS)
        pv, url = ctx.page_at(rows)
        ctx.cache["forms"] = pl.DataFrame(
            {
                "row": rows,
                "seg": ctx.seg(rows),
                "pv": pv,
                "kind": ctx.kind[rows].astype(np.int64),
                "t": ctx.t[rows],
                "f": signed(ctx.target_at(rows)),
                "url": signed(url),
                "a": ctx.a[rows].astype(np.int64),
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
