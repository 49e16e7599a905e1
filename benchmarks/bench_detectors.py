"""Speed of the detectors, measured in one run; prints a table, then JSON.

    python benchmarks/bench_detectors.py [--events 10000000] [--repeat 3] [--cache F]
        [--json F] [--skip-all]

1. all detectors (``detect``) over a stream of ``--events`` events: events/s on the default
   threads and on one (checked to give the same findings), and the time of each stage;
2. the rage-click rule as a user calls it, ``detect(kinds="rage_click")`` (order check,
   clicks, bursts, suppressions, explanations, sort), against the same rule as a DuckDB
   window query over the same events loaded into a DuckDB table beforehand (bursts before
   suppressions), and against a per-event Python loop over plain lists of the same events
   (built beforehand) that does the whole rule, order check included, and is checked to
   give the same findings;
3. the kernel path: the rage kind on a table already prepared, against the same Python
   loop trusting the order (neither checks it).

At 10M events the Python lists take about 3.5 GB: run it under the shared heavy-run lock.
The stream is :func:`benchmarks._data.stream`: synthetic traffic (``cemreplay.synth``)
repeated under new session ids, in canonical order. ``--cache FILE.parquet`` keeps it between
runs (generating 10M events takes minutes). Every time is the best of ``--repeat`` runs.
The machine (and its load average: the figures mean little on a busy machine) is printed
with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
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

import itertools

from benchmarks._data import machine, stream
from cemreplay.detectors import _parallel as P
from cemreplay.detectors import detect, rage_click
from cemreplay.detectors._base import prepare
from cemreplay.detectors.rage_click import RageClickConfig
from cemreplay.schema import EVENT_SCHEMA, RESPONSE_KINDS, ClickFlag, EventKind

BAD = int(ClickFlag.TEXT_INPUT | ClickFlag.NO_RAGE | ClickFlag.MODIFIERS | ClickFlag.BUTTON_MASK)
NOT_PLAIN_TEXT = int(ClickFlag.INTERACTIVE | ClickFlag.UNKNOWN_ELEMENT)
RESPONSE = frozenset(int(k) for k in RESPONSE_KINDS)
LIMIT2 = RageClickConfig().max_distance_px ** 2
_LATER = object()  # the page URL of clicks before the session's first page view
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


def python_rage(cols: dict[str, list[Any]], *, check: bool = True) -> list[tuple[Any, ...]]:
    """The whole rage-click rule as ``detect(kinds="rage_click")`` applies it, one event at a
    time, over plain lists: every event is visited; with ``check`` each is checked to be in
    canonical order and, within its session, in time order (what ``detect`` checks before
    trusting the order; here a ValueError, as reordering is not this loop's job); page views
    are counted on the way and other non-clicks skipped. A burst is then suppressed (repeat
    control that responded, triple click on text) and reported with the same numbers,
    page and explanation as ``detect``. Reads only the events near a burst for its response
    checks, as ``detect`` does.

    Returns (session_id, t, page_view, page_url, target, count, duration_ms, severity,
    explanation) per finding, in session and time order."""
    sid, batch, idx, t = cols["session_id"], cols["batch"], cols["i"], cols["t"]
    kind, x, y, a, b, target = (cols[c] for c in ("kind", "x", "y", "a", "b", "target"))
    cfg = RageClickConfig()
    repeat_rx = [re.compile(p) for p in cfg.repeat_controls]
    repeat: dict[Any, bool] = {}
    n_rows = len(kind)
    found: list[tuple[Any, ...]] = []

    def responded(j: int, lo: int, hi: int, start: int) -> bool:
        """A response in the session from start, at t in [t[j] - lo, t[j] + hi]?"""
        q = j
        while q >= start and sid[q] == sid[j] and t[q] >= t[j] - lo:
            if kind[q] in RESPONSE:
                return True
            q -= 1
        q = j
        while q < n_rows and sid[q] == sid[j] and t[q] <= t[j] + hi:
            if kind[q] in RESPONSE:
                return True
            q += 1
        return False

    def report(chain: list[int], start: int, pv: int, url: Any) -> None:
        f = chain[0]
        tg = target[f]
        if tg not in repeat:
            repeat[tg] = tg is not None and any(rx.search(tg) for rx in repeat_rx)
        if repeat[tg] and all(
            responded(c, cfg.tolerance_ms, cfg.response_ms, start) for c in chain
        ):
            return
        if len(chain) == 3 and [b[c] for c in chain] == [1, 2, 3] and not a[f] & NOT_PLAIN_TEXT:
            return
        if url is _LATER:  # clicks before the session's first page view take its URL
            q = f
            while q < n_rows and sid[q] == sid[f] and kind[q] != PAGE_VIEW:
                q += 1
            url = target[q] if q < n_rows and sid[q] == sid[f] else None
        last = chain[-1]
        spread = max(
            (math.hypot(x[c] - x[p], y[c] - y[p]) for p, c in itertools.pairwise(chain)),
            default=0.0,
        )
        dur = t[last] - t[f]
        answered = responded(f, 0, t[last] + 3_000 - t[f], f)
        m = cfg.min_clicks
        found.append(
            (
                sid[f],
                t[f],
                pv,
                url,
                tg,
                len(chain),
                dur,
                min(0.5 + 0.5 * (len(chain) - m + 1) / (m + 1), 1.0),
                f"{len(chain)} clicks in {round(dur / 1000, 2)} s within {round(spread)} px on "
                f"{tg if tg is not None else 'an unnamed element'}; "
                + (
                    "the page responded but the clicking went on"
                    if answered
                    else "no DOM change, navigation or request followed within 3 s"
                ),
            )
        )

    seen: set[Any] = set()
    session = None
    start = 0
    pv = 0
    url: Any = _LATER
    chain: list[int] = []  # rows of the current chain
    chain_pv = 0
    chain_url: Any = None
    for j in range(n_rows):
        s = sid[j]
        if s != session:
            if len(chain) >= cfg.min_clicks:
                report(chain, start, chain_pv, chain_url)
            chain = []
            if check and s in seen:
                raise ValueError(f"session {s} is not contiguous")
            seen.add(s)
            session = s
            start = j
            pv = 0
            url = _LATER
        elif check and (
            batch[j] < batch[j - 1]
            or (batch[j] == batch[j - 1] and idx[j] <= idx[j - 1])
            or t[j] < t[j - 1]
        ):
            raise ValueError(f"row {j} is out of order")
        k = kind[j]
        if k == PAGE_VIEW:
            if url is not _LATER:
                pv += 1
            url = target[j]
            continue
        if k != CLICK:
            continue
        ok = (a[j] & BAD) == 0
        if chain and ok:
            p = chain[-1]
            if (
                target[j] == target[chain[0]]
                and pv == chain_pv
                and t[j] - t[p] <= cfg.max_interval_ms
                and (x[j] - x[p]) ** 2 + (y[j] - y[p]) ** 2 <= LIMIT2
            ):
                chain.append(j)
                continue
        if len(chain) >= cfg.min_clicks:
            report(chain, start, chain_pv, chain_url)
        chain = [j] if ok else []
        chain_pv = pv
        chain_url = url
    if len(chain) >= cfg.min_clicks:
        report(chain, start, chain_pv, chain_url)
    return found


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


def stage_times(ev: pl.DataFrame) -> dict[str, float]:
    """Seconds of each stage of one ``detect(ev)``: the shared preparation, each kind (its
    detector and the findings columns of its rows) and the final sort."""
    from cemreplay.detectors import KINDS, REGISTRY, UNKNOWN, Config, dead_click
    from cemreplay.detectors._base import assemble, empty_findings, prepare

    out: dict[str, float] = {}
    t0 = time.perf_counter()
    ctx = prepare(ev)
    out["prepare"] = time.perf_counter() - t0
    cfg = Config()
    for kind in KINDS:
        ctx.cache[f"cfg:{kind}"] = getattr(cfg, kind)
    parts = []
    for kind in KINDS:
        if kind == "funnel_abandon":
            ctx.cache["findings"] = pl.concat(parts) if parts else empty_findings()
        t1 = time.perf_counter()
        parts.append(assemble(ctx, kind, REGISTRY[kind].run(ctx, getattr(cfg, kind))))
        out[kind] = time.perf_counter() - t1
    t1 = time.perf_counter()
    parts.append(assemble(ctx, UNKNOWN, dead_click.unknown(ctx, cfg.dead_click)))
    out[UNKNOWN] = time.perf_counter() - t1
    t1 = time.perf_counter()
    pl.concat(parts).sort("session_id", "t", "kind", "page_view", "target", maintain_order=True)
    out["sort"] = time.perf_counter() - t1
    return out


def rage_kernel(ctx: Any) -> pl.DataFrame:
    """The rage kind on an already prepared table (the preparation every kind shares is not
    counted): click rows, bursts, suppressions, explanations, findings columns."""
    from cemreplay.detectors._base import assemble

    for key in [k for k in ctx.cache if k == "clicks" or k.startswith("rage:")]:
        del ctx.cache[key]
    return assemble(ctx, "rage_click", rage_click.run(ctx, RageClickConfig()))


COMPARED = ("session_id", "t", "page_view", "page_url", "target", "count", "duration_ms")


def same_findings(ours: pl.DataFrame, python: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Do the Python loop's findings equal detect's (every number, page and target; the
    explanations too, but for float formatting: polars and Python round .xx5 differently)?"""
    mine = sorted(ours.select(COMPARED).rows(), key=repr)
    theirs = sorted((r[: len(COMPARED)] for r in python), key=repr)
    texts = set(ours["explanation"].to_list())
    return {
        "equal": mine == theirs,
        "explanations_equal": sum(r[-1] in texts for r in python),
        "of": len(python),
    }


def table(out: dict[str, Any]) -> str:
    """The figures as a text table."""
    lines = [
        f"{out['events']:,} events, load average {out['machine']['load_avg_1m']} -> "
        f"{out['load_avg_1m_end']}"
    ]
    if "all_detectors" in out:
        a = out["all_detectors"]
        lines.append(
            f"all detectors: {a['seconds']:.3f} s = {a['events_per_s'] / 1e6:.1f}M events/s "
            f"({a['threads']} threads; 1 thread: {a['one_thread_s']:.3f} s), "
            f"{a['findings']:,} findings"
        )
        lines += [f"  {k:18s} {v * 1000:8.1f} ms" for k, v in a["stages_s"].items()]
    r = out["rage_click"]
    lines += [
        "rage_click rule:",
        f"  detect(kinds='rage_click')  {r['cemreplay_s'] * 1000:8.1f} ms "
        f"({r['cemreplay_findings']:,} findings)",
        f"  on a prepared table         {r['cemreplay_kernel_s'] * 1000:8.1f} ms",
        f"  DuckDB window SQL           {r['duckdb_window_sql_s'] * 1000:8.1f} ms "
        f"-> {r['x_vs_duckdb']}x",
        f"  Python loop, order checked  {r['python_s'] * 1000:8.1f} ms -> {r['x_vs_python']}x "
        f"(same findings: {r['python_same_findings']['equal']})",
        f"  Python loop, order trusted  {r['python_trusting_s'] * 1000:8.1f} ms "
        f"-> {r['x_vs_python_kernel']}x vs the prepared-table time",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache", help="parquet file to keep the generated stream in")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--skip-all", action="store_true", help="only the rage-click comparison")
    args = ap.parse_args(argv)
    ev = load(args.events, args.cache)
    n = ev.height
    detect(ev.head(50_000))  # compile / load the numba cache
    out: dict[str, Any] = {"machine": machine(), "events": n}
    if not args.skip_all:
        all_s, found = best(lambda: detect(ev), args.repeat)
        with P.threads(1):
            one_s, one = best(lambda: detect(ev), args.repeat)
        stages = [stage_times(ev) for _ in range(args.repeat)]
        out["all_detectors"] = {
            "seconds": round(all_s, 3),
            "events_per_s": round(n / all_s),
            "threads": P.row_parts(n).__len__(),
            "one_thread_s": round(one_s, 3),
            "one_thread_same_findings": one.equals(found),
            "findings": found.height,
            "stages_s": {k: round(min(s[k] for s in stages), 4) for k in stages[0]},
        }
    rage_s, ours = best(lambda: detect(ev, kinds="rage_click"), args.repeat)
    ctx = prepare(ev)
    kernel_s, _ = best(lambda: rage_kernel(ctx), args.repeat)

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
    con.close()

    # The Python loop gets plain lists of the same events, built before the clock starts
    # (column by column with to_list); it then visits every one of them.
    names = ("session_id", "batch", "i", "t", "kind", "x", "y", "a", "b", "target")
    cols = {c: ev[c].to_list() for c in names}
    py_s, py_found = best(lambda: python_rage(cols), args.repeat)
    trusting_s, _ = best(lambda: python_rage(cols, check=False), args.repeat)

    out["rage_click"] = {
        "cemreplay_s": round(rage_s, 4),
        "cemreplay_findings": ours.height,
        "cemreplay_kernel_s": round(kernel_s, 4),
        "duckdb_window_sql_s": round(duck_s, 3),
        "duckdb_bursts": len(duck),
        "x_vs_duckdb": round(duck_s / rage_s, 1),
        "python_s": round(py_s, 3),
        "python_findings": len(py_found),
        "python_same_findings": same_findings(ours, py_found),
        "x_vs_python": round(py_s / rage_s, 1),
        "python_trusting_s": round(trusting_s, 3),
        "x_vs_python_kernel": round(trusting_s / kernel_s, 1),
        "note": "detect and the Python loop: the whole rule (order checked, suppressions, "
        "explanations); DuckDB: bursts before suppressions; kernel: a prepared table against "
        "the loop trusting the order",
    }
    out["load_avg_1m_end"] = os.getloadavg()[0]
    print(table(out))
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
