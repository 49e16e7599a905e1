"""Speed of the detectors, measured in one run; prints JSON.

    python benchmarks/bench_detectors.py [--events 10000000] [--python-events 300000]

1. all detectors (``detect``) over an event stream of ``--events`` events: events/s;
2. the rage-click rule (``detect(kinds="rage_click")``) against the same rule written as
   DuckDB window SQL over the same table (ratio);
3. the same rule as a per-event Python loop, on the first ``--python-events`` events (ratio
   of events/s).

The stream is synthetic traffic (``cemreplay.synth``) of a few thousand sessions, repeated
under new session ids until it holds ``--events`` events. Name the machine with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from typing import Any

import duckdb
import polars as pl

from cemreplay.detectors import detect
from cemreplay.schema import EVENT_SCHEMA, ClickFlag, EventKind
from cemreplay.synth import generate

BAD = int(ClickFlag.TEXT_INPUT | ClickFlag.NO_RAGE | ClickFlag.MODIFIERS | ClickFlag.BUTTON_MASK)
CLICK = int(EventKind.CLICK)

SQL = f"""
WITH c AS (
  SELECT session_id, t, x, y, target, page_view, (a & {BAD}) = 0 AS ok
  FROM ev WHERE kind = {CLICK}
), l AS (
  SELECT *, lag(t) OVER w AS pt, lag(x) OVER w AS px, lag(y) OVER w AS py,
         lag(target) OVER w AS ptg, lag(page_view) OVER w AS ppv, lag(ok) OVER w AS pok
  FROM c WINDOW w AS (PARTITION BY session_id ORDER BY t)
), b AS (
  SELECT *, sum(CASE WHEN ok AND pok AND target IS NOT DISTINCT FROM ptg AND page_view = ppv
                      AND t - pt <= 1000 AND (x - px) * (x - px) + (y - py) * (y - py) <= 900
                 THEN 0 ELSE 1 END) OVER (PARTITION BY session_id ORDER BY t) AS chain
  FROM l
)
SELECT session_id, chain, min(t) AS t, count(*) AS clicks
FROM b WHERE ok GROUP BY session_id, chain HAVING count(*) >= 3
"""


def stream(n_events: int, seed: int) -> pl.DataFrame:
    cache = os.path.join(tempfile.gettempdir(), f"cemreplay-bench-synth-{seed}.parquet")
    if os.path.exists(cache):
        base = pl.read_parquet(cache).cast(EVENT_SCHEMA)  # type: ignore[arg-type]
    else:
        base = generate(sessions=5_000, seed=seed).events
        base.write_parquet(cache)
    copies = math.ceil(n_events / base.height)
    sid = base["session_id"].cast(pl.String)
    parts = [
        base.with_columns(session_id=(sid + f"~{k}").cast(pl.Categorical())) for k in range(copies)
    ]
    return pl.concat(parts).head(n_events)


def python_rage(rows: list[dict[str, Any]]) -> int:
    """The rule, one event at a time (clicks in session and time order)."""
    found = 0
    last: dict[str, Any] | None = None
    n = 0
    for r in rows:
        if r["kind"] != CLICK:
            continue
        ok = (r["a"] & BAD) == 0
        if (
            ok
            and last is not None
            and n > 0
            and r["session_id"] == last["session_id"]
            and r["target"] == last["target"]
            and r["page_view"] == last["page_view"]
            and r["t"] - last["t"] <= 1000
            and math.hypot(r["x"] - last["x"], r["y"] - last["y"]) <= 30
        ):
            n += 1
        else:
            found += n >= 3
            n = 1 if ok else 0
        last = r
    return found + (n >= 3)


def best(fn: Any, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--python-events", type=int, default=300_000)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    ev = stream(args.events, args.seed)
    n = ev.height
    detect(ev.head(50_000))  # compile / load the numba cache
    all_s = best(lambda: detect(ev), repeat=2)
    rage_s = best(lambda: detect(ev, kinds="rage_click"))
    con = duckdb.connect()
    con.execute("PRAGMA threads=2")
    from cemreplay.journeys import with_page_views

    tagged = with_page_views(ev).select(
        pl.col("session_id").cast(pl.String),
        "t",
        "kind",
        "x",
        "y",
        "a",
        pl.col("target").cast(pl.String),
        "page_view",
    )
    path = os.path.join(tempfile.mkdtemp(), "ev.parquet")
    tagged.write_parquet(path)  # DuckDB loads it into a table; load time is not measured
    con.execute(f"CREATE TABLE ev AS SELECT * FROM read_parquet('{path}')")
    duck_s = best(lambda: con.execute(SQL).fetchall(), repeat=2)
    small = tagged.head(args.python_events).sort("session_id", "t", maintain_order=True)
    rows = small.to_dicts()
    py_s = best(lambda: python_rage(rows), repeat=1)
    ours_small_s = best(lambda: detect(ev.head(args.python_events), kinds="rage_click"))
    out = {
        "machine": f"{platform.machine()} {platform.processor() or ''} "
        f"{os.cpu_count()} cpus, {platform.python_version()}",
        "events": n,
        "all_detectors": {"seconds": round(all_s, 3), "events_per_s": round(n / all_s)},
        "rage_click": {
            "cemreplay_s": round(rage_s, 3),
            "duckdb_window_sql_s": round(duck_s, 3),
            "x_vs_duckdb": round(duck_s / rage_s, 1),
            "python_events": len(rows),
            "python_loop_s": round(py_s, 3),
            "cemreplay_same_events_s": round(ours_small_s, 4),
            "x_vs_python": round(py_s / ours_small_s, 1),
        },
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
