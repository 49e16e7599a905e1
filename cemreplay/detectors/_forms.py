"""The form events of a context as a small polars frame, shared by the form detectors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from cemreplay.detectors import _parallel as P
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


def by_parts(
    ctx: Context,
    ev: pl.DataFrame,
    kernel: Callable[..., Any],
    *tail: Any,
    extra: tuple[Any, ...] = (),
) -> tuple[list[tuple[int, int]], list[Any]]:
    """``kernel(seg, pv, kind, f, *extra, *tail)`` over session-disjoint slices of the form
    events ``ev`` (and of the arrays ``extra`` over them), on threads: the slices' (start,
    end) and the kernel's results, in order."""
    seg, pv, kind, f = (ev[c].to_numpy() for c in ("seg", "pv", "kind", "f"))
    cuts = P.row_cuts(ctx.starts, ev["row"].to_numpy())
    got = P.run(
        lambda a, b: kernel(seg[a:b], pv[a:b], kind[a:b], f[a:b], *(e[a:b] for e in extra), *tail),
        cuts,
    )
    return cuts, got
