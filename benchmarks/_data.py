"""The benchmark streams: synthetic traffic, grown to size by repeating sessions under new ids.

Generating tens of millions of events with every planted struggle is the generator's own
benchmark; the codec and detector benchmarks need a realistic *mix* at scale, so they generate
a few thousand sessions once and repeat them under new session and visitor ids.
"""

from __future__ import annotations

import os
import platform

import polars as pl

from cemreplay.events import assign_batches
from cemreplay.synth import generate


def machine() -> dict[str, object]:
    """What the figures were measured on (always printed with them)."""
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "polars": pl.__version__,
        "polars_threads": pl.thread_pool_size(),
        "load_avg_1m": os.getloadavg()[0],
    }


def stream(events: int, *, seed: int = 11, base_sessions: int = 2_000) -> pl.DataFrame:
    """About ``events`` events of the generator's default mix, in canonical order."""
    base = generate(sessions=base_sessions, seed=seed).events
    reps = max(1, -(-events // max(base.height, 1)))
    parts = []
    for r in range(reps):
        suffix = f"-{r:04d}" if r else ""
        parts.append(
            base.with_columns(
                (pl.col(c).cast(pl.String) + suffix).cast(pl.Categorical)
                for c in ("session_id", "visitor_id")
            )
        )
    out = pl.concat(parts).head(events) if reps > 1 else base.head(events)
    # cutting may split the last session; fine for throughput, keeps the count exact
    return out.sort(pl.col("session_id").cast(pl.String), "batch", "i", maintain_order=True)


def ordinary_batches(events: pl.DataFrame) -> pl.DataFrame:
    """Re-batch into the issue's "ordinary batches" of 100-500 events: up to 300 events per
    batch, one batch per 10 minutes of a session."""
    return assign_batches(events, max_events=300, flush_ms=600_000)
