"""Journeys benchmark: sessions + page views throughput, funnel time, peak memory per event.

Prints one JSON object. Run: ``python benchmarks/bench_journeys.py [--events 1000000 10000000]
[--funnel-sessions 1000000] [--data table|stream]``.

Each figure runs in its own subprocess so that its peak memory is its own: the child builds
its table, resets the kernel's high-water mark of resident memory (``/proc/self/clear_refs``,
falling back to ``ru_maxrss``), runs the timed calls and reports the peak above the resident
size before them, per event. ``--data table`` (default) is a vectorized numpy generator kept
here so that figures stay comparable across changes of ``cemreplay.synth``; ``--data stream``
is the synthetic traffic mix of ``benchmarks/_data.py``. Timings are the best of ``--reps``
runs; compare figures within one run (the JSON names the machine, its load and
``POLARS_MAX_THREADS``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from cemreplay.journeys import Goal, funnel, page_views, sessions
from cemreplay.schema import EVENT_SCHEMA, EventKind

PAGES = [
    "https://shop.test/",
    "https://shop.test/product/{}",
    "https://shop.test/cart",
    "https://shop.test/checkout",
    "https://shop.test/thanks",
    "https://shop.test/help",
]


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
    vis_names = pl.Series([f"v{k:07d}" for k in range(n_sessions // 2 + 1)], dtype=pl.Categorical())
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


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the resident-memory high-water mark (Linux); False when not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _status_kb("VmHWM") is not None


def _peak_kb() -> int:
    hwm = _status_kb("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def best_of(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def build(data: str, n_events: int, n_sessions: int, seed: int) -> pl.DataFrame:
    if data == "stream":
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from benchmarks._data import stream

        return stream(n_events)
    return table(n_events, n_sessions, seed)


def measure(fig: str, data: str, n_events: int, n_sessions: int, reps: int) -> dict[str, object]:
    """One figure, in this process: timings and peak extra resident memory per event."""
    if fig == "funnel":
        ev = build(data, n_events, n_sessions, seed=1)
        steps: list[Goal | str] = ["/", "/product/*", "/cart", "/checkout",
                                   Goal(milestone="order_placed")]  # fmt: skip
        funnel(ev.head(10_000), steps)  # warm up (numba cache load)
        rss0 = (_status_kb("VmRSS") or 0) if _reset_peak() else _peak_kb()
        t_f = best_of(lambda: funnel(ev, steps), reps)
        res = funnel(ev, steps)
        peak = max(_peak_kb() - rss0, 0) * 1024
        units = sessions(ev).height  # the sessions the funnel counts (by="session")
        return {
            "funnel_events": ev.height,
            "funnel_sessions": units,
            "funnel_entered": int(res.steps["entered"][0]) if res.steps.height else 0,
            "funnel_s": round(t_f, 3),
            "funnel_peak_extra_bytes_per_event": round(peak / ev.height, 1),
        }
    ev = build(data, n_events, n_sessions, seed=0)
    sessions(ev.head(10_000)), page_views(ev.head(10_000))  # warm up (numba cache load)
    rss0 = (_status_kb("VmRSS") or 0) if _reset_peak() else _peak_kb()
    t_sess = best_of(lambda: sessions(ev), reps)
    t_pv = best_of(lambda: page_views(ev), reps)
    peak = max(_peak_kb() - rss0, 0) * 1024
    n = ev.height
    return {
        "events": n,
        "snippet_sessions": ev["session_id"].n_unique(),
        "sessions_s": round(t_sess, 3),
        "page_views_s": round(t_pv, 3),
        "sessions_plus_page_views_events_per_s": round(n / (t_sess + t_pv)),
        "sessions_events_per_s": round(n / t_sess),
        "table_bytes_per_event": round(ev.estimated_size() / n, 1),
        "peak_extra_bytes_per_event": round(peak / n, 1),
    }


def machine() -> dict[str, object]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "polars": pl.__version__,
        "polars_threads": pl.thread_pool_size(),
        "POLARS_MAX_THREADS": os.environ.get("POLARS_MAX_THREADS"),
        "load_avg_1m_5m_15m": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--events-per-session", type=int, default=100)
    ap.add_argument("--funnel-sessions", type=int, default=1_000_000)
    ap.add_argument("--data", choices=["table", "stream"], default="table")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--figure", help=argparse.SUPPRESS)  # child mode: one figure, JSON out
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--m", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.figure:
        print(json.dumps(measure(args.figure, args.data, args.n, args.m, args.reps)))
        return

    def child(fig: str, n: int, m: int) -> dict[str, object]:
        cmd = [sys.executable, __file__, "--figure", fig, "--n", str(n), "--m", str(m),
               "--data", args.data, "--reps", str(args.reps)]  # fmt: skip
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        out: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        return out

    out: dict[str, object] = {"machine": machine(), "data": args.data}
    for n in args.events:
        out[f"sessionize_{n}"] = child("sessionize", n, max(n // args.events_per_session, 1))
    f = args.funnel_sessions
    out["funnel"] = child("funnel", f * 10, f)
    out["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
