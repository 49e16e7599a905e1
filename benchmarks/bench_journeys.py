"""Journeys benchmark: sessionize + page views throughput, peak memory, funnel over 1M sessions.

Prints one JSON object. Run: ``python benchmarks/bench_journeys.py [--events N] [--sessions M]``.
The event stream is built by a vectorized numpy generator (cemreplay.synth, when present, is not
used here so that figures stay comparable across its changes). Absolute figures depend on the
machine; the JSON names it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time

import numpy as np
import polars as pl

from cemreplay.journeys import Goal, funnel, page_views, sessions
from cemreplay.schema import EVENT_SCHEMA, EventKind

PAGES = ["https://shop.test/", "https://shop.test/product/{}", "https://shop.test/cart",
         "https://shop.test/checkout", "https://shop.test/thanks", "https://shop.test/help"]


def table(n_events: int, n_sessions: int, seed: int = 0) -> pl.DataFrame:
    """A canonical event table: n_sessions of ~equal length, ~1 page view in 12 events."""
    rng = np.random.default_rng(seed)
    sid = np.sort(rng.integers(0, n_sessions, n_events)).astype(np.uint32)
    start = np.r_[0, np.flatnonzero(np.diff(sid)) + 1]
    first = np.zeros(n_events, dtype=bool)
    first[start] = True
    pos = np.arange(n_events) - np.repeat(start, np.diff(np.r_[start, n_events]))
    kinds = np.array([3, 4, 4, 4, 5, 13, 13, 6, 8, 7, 14, 16], dtype=np.uint8)
    kind = kinds[rng.integers(0, len(kinds), n_events)]
    kind[rng.random(n_events) < 1 / 12] = EventKind.PAGE_VIEW
    kind[first] = EventKind.PAGE_VIEW
    kind[rng.random(n_events) < 0.002] = EventKind.MILESTONE
    gap = rng.exponential(2_000, n_events).astype(np.int64)
    gap[rng.random(n_events) < 0.0005] = 40 * 60_000  # some inactivity splits
    t = 1_700_000_000_000 + (sid.astype(np.int64) * 3_600_000) + np.cumsum(gap)
    t -= np.repeat(np.cumsum(gap)[start] - gap[start], np.diff(np.r_[start, n_events]))
    urls = [p.format(k) if "{}" in p else p for p in PAGES for k in range(50 if "{}" in p else 1)]
    url_code = rng.integers(0, len(urls), n_events).astype(np.uint32)
    targets = pl.Series([*urls, "#buy", "order_placed"], dtype=pl.Categorical())
    tgt = np.where(kind == EventKind.PAGE_VIEW, url_code, len(urls))
    tgt = np.where(kind == EventKind.MILESTONE, len(urls) + 1, tgt)
    sess_names = pl.Series([f"s{k:07d}" for k in range(n_sessions)], dtype=pl.Categorical())
    vis_names = pl.Series([f"v{k:07d}" for k in range(n_sessions // 2 + 1)],
                          dtype=pl.Categorical())
    z = np.zeros(n_events, dtype=np.int32)
    return pl.DataFrame({
        "session_id": sess_names.gather(pl.Series(sid)),
        "visitor_id": vis_names.gather(pl.Series(sid // 2)),
        "t": t, "batch": (pos // 300).astype(np.uint32), "i": (pos % 300).astype(np.uint16),
        "kind": kind, "x": z, "y": rng.integers(0, 3000, n_events).astype(np.int32),
        "a": np.where(kind == EventKind.SCROLL, 4000, 0).astype(np.int32),
        "b": np.where(kind == EventKind.SCROLL, 800, 0).astype(np.int32),
        "target": targets.gather(pl.Series(tgt)),
        "text": pl.Series([None] * n_events, dtype=pl.Categorical()),
    }, schema=EVENT_SCHEMA)  # fmt: skip


def _rss_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def best_of(fn: object, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--sessions", type=int, default=100_000)
    ap.add_argument("--funnel-sessions", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    ev = table(args.events, args.sessions)
    sessions(ev.head(10_000)), page_views(ev.head(10_000))  # warm up (numba compile, caches)
    base = _rss_peak()
    t_sess = best_of(lambda: sessions(ev), args.reps)
    t_pv = best_of(lambda: page_views(ev), args.reps)
    peak = _rss_peak()
    n = ev.height
    out: dict[str, object] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"polars {pl.__version__}, POLARS_MAX_THREADS={os.environ.get('POLARS_MAX_THREADS')}",
        "events": n,
        "snippet_sessions": args.sessions,
        "sessions_s": round(t_sess, 3),
        "page_views_s": round(t_pv, 3),
        "sessionize_plus_page_views_events_per_s": round(n / (t_sess + t_pv)),
        "sessionize_events_per_s": round(n / t_sess),
        "table_bytes_per_event": round(ev.estimated_size() / n, 1),
        "peak_extra_rss_bytes_per_event": round(max(peak - base, 0) / n, 1),
    }
    fe = table(args.funnel_sessions * 10, args.funnel_sessions, seed=1)
    steps = ["/", "/product/*", "/cart", "/checkout", Goal(milestone="order_placed")]
    t_f = best_of(lambda: funnel(fe, steps), max(1, args.reps - 1))
    res = funnel(fe, steps)
    out.update(
        funnel_sessions=int(res.steps["entered"][0]) if res.steps.height else 0,
        funnel_events=fe.height,
        funnel_s=round(t_f, 3),
    )
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
