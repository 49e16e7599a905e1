"""thrashed_cursor: the mouse shaken back and forth.

OpenReplay flags more than 4 direction reversals within 225 ms at high acceleration; KDE's
"shake to find the cursor" compares the path length with the diagonal of its bounding box.
The snippet samples mouse moves at most every 50 ms and only after 20 px, so 225 ms holds at
most 4 samples (2 reversals): the window is widened to ``window_ms`` = 1 s (20 samples at
most), the reversal count kept (> 4, i.e. ``min_reversals`` = 5, counting x and y flips), and
the acceleration test replaced by what the samples can show: a mean speed of at least
``min_speed_px_s`` and a path at least ``min_ratio`` times the box diagonal (going back and
forth over the same ground). Moves of one trajectory stay in one page view with no pause
over ``max_gap_ms``. Overlapping shaking windows form one finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    secs,
)
from cemreplay.schema import EventKind

__all__ = ["ThrashedCursorConfig", "run"]


@dataclass(frozen=True)
class ThrashedCursorConfig:
    """Thresholds of :mod:`cemreplay.detectors.thrashed_cursor`."""

    #: Window over which reversals are counted, ms (OpenReplay 225 ms, widened for 50 ms sampling).
    window_ms: int = 1_000
    #: Direction reversals (x and y flips) within the window. OpenReplay: more than 4.
    min_reversals: int = 5
    #: Path length over bounding-box diagonal (KDE shake detection compares the two).
    min_ratio: float = 3.0
    #: Mean speed over the window, px/s (stands in for OpenReplay's acceleration test).
    min_speed_px_s: float = 300.0
    #: A pause longer than this starts a new trajectory, ms.
    max_gap_ms: int = 300

    def __post_init__(self) -> None:
        check_int(self, "window_ms", 50, 60_000)
        check_int(self, "min_reversals", 1, 1_000)
        check_float(self, "min_ratio", 1.0, 1_000.0)
        check_float(self, "min_speed_px_s", 0.0, 1e6)
        check_int(self, "max_gap_ms", 1, 60_000)


@register(
    "thrashed_cursor",
    ThrashedCursorConfig,
    ">= 5 direction reversals within 1 s, path >= 3x the box diagonal, >= 300 px/s",
)
def run(ctx: Context, cfg: ThrashedCursorConfig) -> pl.DataFrame:
    moves = ctx.rows(EventKind.MOUSE_MOVE)
    if len(moves) < 3:
        return empty_raw()
    pv = ctx.pv_or_empty()

    def episodes(rows: npt.NDArray[np.int64], _: int) -> Any:
        return K.thrash_episodes(
            ctx.starts,
            rows,
            ctx.t,
            ctx.x,
            ctx.y,
            pv,
            ctx.views,
            cfg.max_gap_ms,
            cfg.window_ms,
            cfg.min_reversals,
            float(cfg.min_ratio),
            float(cfg.min_speed_px_s),
        )

    got = P.over_rows(episodes, ctx.starts, moves)
    first, last = (np.concatenate([a + r[i] for a, _, r in got]) for i in (0, 1))
    rev, ratio = (np.concatenate([r[i] for _, _, r in got]) for i in (2, 3))
    if len(first) == 0:
        return empty_raw()
    rows = moves[first]
    df = pl.DataFrame(
        {
            "row": rows,
            "t": ctx.t[rows],
            "dur": ctx.t[moves[last]] - ctx.t[rows],
            "n": last - first + 1,
            "rev": rev,
            "ratio": ratio,
        }
    )
    df = df.with_columns(
        explanation=pl.format(
            "mouse reversed direction {} times within {} s ({} moves over {} s, path {}x its "
            "bounding box diagonal)",
            pl.col("rev"),
            secs(pl.lit(cfg.window_ms)),
            pl.col("n"),
            secs(pl.col("dur")),
            pl.col("ratio").round(1),
        ),
        severity=(pl.col("rev") / (2.0 * cfg.min_reversals)).clip(0.3, 1.0),
    )
    return raw(
        row=df["row"],
        t=df["t"],
        severity=df["severity"],
        count=df["rev"],
        duration_ms=df["dur"],
        explanation=df["explanation"],
    )
