"""Speed of the detectors, measured in one run; prints JSON.

    python benchmarks/bench_detectors.py [--events 10000000] [--python-events 1000000]

1. all detectors (``detect``) over a stream of ``--events`` events: events/s;
2. the rage-click rule (``detect(kinds="rage_click")``, which also does the suppressions,
   explanations and sorting the peers skip) against the same rule as a DuckDB window query
   over the same events, loaded into a DuckDB table beforehand (ratio of times);
3. the same rule as a per-event Python loop over the first ``--python-events`` events of
   the stream, against ``detect(kinds="rage_click")`` on those same events (ratio of times).

The stream is :func:`benchmarks._data.stream`: synthetic traffic (``cemreplay.synth``)
repeated under new session ids, in canonical order. ``--cache FILE.parquet`` keeps it between
runs (generating 10M events takes minutes). Every time is the best of ``--repeat`` runs.
The machine (and its load average: the figures mean little on a busy machine) is printed
with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._data import machine, stream
from cemreplay.detectors import detect
from cemreplay.schema import EVENT_SCHEMA, ClickFlag, EventKind

BAD = int(ClickFlag.TEXT_INPUT | ClickFlag.NO_RAGE | ClickFlag.MODIFIERS | ClickFlag.BUTTON_MASK)
CLICK = int(EventKind.CLICK)
PAGE_VIEW = int(EventKind.PAGE_VIEW)

#: The rule in DuckDB over the raw event table: page views numbered in recording order (as
#: ``detect`` does), then clicks chained to the previous click of the session.
SQL = f"""
WITH p AS (
  SELECT *, greatest(sum(CASE WHEN kind = {PAGE_VIEW} THEN 1 ELSE 0 END) OVER (
           PARTITION BY session_id ORDER BY batch, i ROWS UNBOUNDED PRECEDING) - 1, 0)
         AS page_view
  FROM ev
), c AS (
  SELECT session_id, t, batch, i, x, y, target, page_view, (a & {BAD}) = 0 AS ok
  FROM p WHERE kind = {CLICK}
), l AS (
  SELECT *, lag(t) OVER w AS pt, lag(x) OVER w AS px, lag(y) OVER w AS py,
         lag(target) OVER w AS ptg, lag(page_view) OVER w AS ppv, lag(ok) OVER w AS pok
  FROM c WINDOW w AS (PARTITION BY session_id ORDER BY t, batch, i)
), b AS (
  SELECT *, sum(CASE WHEN ok AND pok AND target IS NOT DISTINCT FROM ptg AND page_view = ppv
                      AND t - pt <= 1000 AND (x - px) * (x - px) + (y - py) * (y - py) <= 900
                 THEN 0 ELSE 1 END) OVER (
           PARTITION BY session_id ORDER BY t, batch, i ROWS UNBOUNDED PRECEDING) AS chain
  FROM l
)
SELECT session_id, chain, min(t) AS t, count(*) AS clicks
FROM b WHERE ok GROUP BY session_id, chain HAVING count(*) >= 3
"""


def python_rage(cols: dict[str, list[Any]]) -> int:
    """The rule, one event at a time: every event of the stream is visited (page views are
    counted on the way, other non-clicks skipped). Events are in canonical order and each
    session in time order, as the stream is."""
    sid, kind, t = cols["session_id"], cols["kind"], cols["t"]
    x, y, a, target = cols["x"], cols["y"], cols["a"], cols["target"]
    found = 0
    n = 0  # clicks in the current chain
    session = None
    pv = 0
    seen_pv = False
    last = -1  # index of the chain's last click
    last_pv = 0  # and its page view
    for j in range(len(kind)):
        if sid[j] != session:
            found += n >= 3
            n = 0
            session = sid[j]
            pv = 0
            seen_pv = False
        k = kind[j]
        if k == PAGE_VIEW:
            pv += seen_pv
            seen_pv = True
            continue
        if k != CLICK:
            continue
        ok = (a[j] & BAD) == 0
        if (
            ok
            and n > 0
            and target[j] == target[last]
            and pv == last_pv
            and t[j] - t[last] <= 1000
            and (x[j] - x[last]) ** 2 + (y[j] - y[last]) ** 2 <= 900
        ):
            n += 1
        else:
            found += n >= 3
            n = 1 if ok else 0
        last = j
        last_pv = pv
    return found + (n >= 3)


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def load(events: int, cache: str | None) -> pl.DataFrame:
    if cache and os.path.exists(cache):
        ev = pl.read_parquet(cache).cast(EVENT_SCHEMA)
    else:
        ev = stream(events)
        if cache:
            ev.write_parquet(cache)
    return ev.head(events).rechunk()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--python-events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache", help="parquet file to keep the generated stream in")
    ap.add_argument("--skip-all", action="store_true", help="only the rage-click comparison")
    args = ap.parse_args(argv)
    ev = load(args.events, args.cache)
    n = ev.height
    detect(ev.head(50_000))  # compile / load the numba cache
    out: dict[str, Any] = {"machine": machine(), "events": n}
    if not args.skip_all:
        all_s, found = best(lambda: detect(ev), args.repeat)
        out["all_detectors"] = {
            "seconds": round(all_s, 3),
            "events_per_s": round(n / all_s),
            "findings": found.height,
        }
    rage_s, ours = best(lambda: detect(ev, kinds="rage_click"), args.repeat)

    # DuckDB gets the same events as a table of its own, loaded before the clock starts.
    con = duckdb.connect()
    con.execute("PRAGMA threads=2")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ev.parquet")
        ev.select(
            pl.col("session_id").cast(pl.String),
            "t",
            "batch",
            "i",
            "kind",
            "x",
            "y",
            "a",
            pl.col("target").cast(pl.String),
        ).write_parquet(path)
        con.execute("CREATE TABLE ev AS SELECT * FROM read_parquet(?)", [path])
    duck_s, duck = best(lambda: con.execute(SQL).fetchall(), args.repeat)

    # The Python loop gets plain lists of the first --python-events events, built before
    # the clock starts (column by column with to_list); it then visits every one of them.
    small = ev.head(args.python_events)
    cols = {c: small[c].to_list() for c in ("session_id", "kind", "t", "x", "y", "a", "target")}
    py_s, py_found = best(lambda: python_rage(cols), 1)
    ours_small_s, ours_small = best(lambda: detect(small, kinds="rage_click"), args.repeat)
    out["rage_click"] = {
        "cemreplay_s": round(rage_s, 3),
        "cemreplay_findings": ours.height,
        "duckdb_window_sql_s": round(duck_s, 3),
        "duckdb_bursts": len(duck),
        "x_vs_duckdb": round(duck_s / rage_s, 1),
        "python_events": small.height,
        "python_loop_s": round(py_s, 3),
        "python_bursts": py_found,
        "cemreplay_same_events_s": round(ours_small_s, 4),
        "cemreplay_same_events_findings": ours_small.height,
        "x_vs_python": round(py_s / ours_small_s, 1),
        "note": "bursts = before suppressions (triple clicks, working repeat controls); "
        "cemreplay also suppresses, explains and sorts",
    }
    out["load_avg_1m_end"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
