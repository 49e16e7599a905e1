"""Detection: rage-click, dead-click and form-abandon rules, cemreplay against its peers.

    python -m benchmarks detect [--events 10000000] [--pandas-events N] [--python-events 1000000]

Peers (one adapter module each in ``benchmarks/peers/``), all given the same events (the
stream of ``benchmarks._data.stream``) and each loaded into its own form before the clock
starts: ``duckdb_sql`` (window SQL, 2 threads), ``pandas_rules`` (groupby/shift),
``python_ref`` (one event at a time). cemreplay runs ``detect(events, CONFIG, kinds=RULE)``
(``benchmarks.peers.rules``: the defaults, rage-click suppressions off on every side), which
also explains, scores and sorts each finding. Each peer's findings (session and time of each)
must equal cemreplay's on the same events, or the run fails. Ratios are peer time over
cemreplay's time on the same events, best of ``--reps``. All detectors together (``detect``
with defaults) are timed too.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import polars as pl

from benchmarks._data import machine, stream, targets_line
from benchmarks.peers import duckdb_sql, pandas_rules, python_ref
from benchmarks.peers.rules import CONFIG, RULES, Found
from cemreplay import detect

PEERS: dict[str, Any] = {"duckdb": duckdb_sql, "pandas": pandas_rules, "python": python_ref}


def _best(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def ours(events: pl.DataFrame, rule: str) -> Found:
    f = detect(events, CONFIG, kinds=rule)
    return list(zip(f["session_id"].cast(pl.String).to_list(), f["t"].to_list(), strict=True))


def run(events: int, sizes: dict[str, int], reps: int) -> dict[str, Any]:
    ev = stream(events).rechunk()
    n = ev.height
    detect(ev.head(20_000))  # load the numba caches outside the timing
    result: dict[str, Any] = {"stage": "detect", "machine": machine(), "events": n}
    all_s, found = _best(lambda: detect(ev), reps)
    result["all_detectors"] = {
        "seconds": round(all_s, 3),
        "events_per_s": round(n / all_s),
        "findings": found.height,
    }
    rules: dict[str, Any] = {r: {} for r in RULES}
    mine: dict[tuple[int, str], tuple[float, Found]] = {}
    for peer, mod in PEERS.items():
        sub = ev.head(sizes.get(peer, n)) if sizes.get(peer, n) < n else ev
        m = sub.height
        t0 = time.perf_counter()
        loaded = mod.load(sub) if peer != "duckdb" else mod.load(sub, threads=2)
        load_s = time.perf_counter() - t0
        for rule in RULES:
            if (m, rule) not in mine:
                mine[(m, rule)] = _best(lambda sub=sub, rule=rule: ours(sub, rule), reps)
            cem_s, want = mine[(m, rule)]
            peer_reps = reps if peer != "python" else 1
            s, got = _best(lambda m=mod, d=loaded, r=rule: m.run(d, r), peer_reps)
            if sorted(got) != sorted(want):
                raise AssertionError(
                    f"{mod.name} finds {len(got)} {rule} on {m:,} events, cemreplay {len(want)}"
                )
            rules[rule][peer] = {
                "name": mod.name,
                "events": m,
                "findings": len(got),
                "seconds": round(s, 4),
                "events_per_s": round(m / s),
                "cemreplay_seconds": round(cem_s, 4),
                "cemreplay_events_per_s": round(m / cem_s),
                "x_cemreplay_faster": round(s / cem_s, 1),
                "load_seconds_not_timed": round(load_s, 2),
            }
        del loaded
    result["rules"] = rules
    return result


def table(result: dict[str, Any]) -> str:
    a = result["all_detectors"]
    lines = [
        f"detect: {result['events']:,} events; machine {result['machine']}",
        f"all detectors: {a['events_per_s']:,} events/s ({a['findings']:,} findings)",
        f"{'rule':<13} {'peer':<18} {'events':>11} {'found':>7} {'peer ev/s':>12} "
        f"{'cemreplay ev/s':>15} {'x faster':>9}",
    ]
    for rule, peers in result["rules"].items():
        for p in peers.values():
            lines.append(
                f"{rule:<13} {p['name']:<18} {p['events']:>11,} {p['findings']:>7,} "
                f"{p['events_per_s']:>12,} {p['cemreplay_events_per_s']:>15,} "
                f"{p['x_cemreplay_faster']:>9}"
            )
    lines.append(targets_line(result))
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--pandas-events", type=int, default=10_000_000)
    p.add_argument("--python-events", type=int, default=1_000_000)
    p.add_argument("--reps", type=int, default=3)


def main(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        args.events, args.pandas_events, args.python_events, args.reps = 100_000, 100_000, 30_000, 1
    sizes = {"pandas": args.pandas_events, "python": args.python_events}
    result = run(args.events, sizes, args.reps)
    if args.quick:
        result["targets"] = "not evaluated with --quick (too small to mean anything)"
    else:
        result["targets"] = {
            "ahead of every peer on every rule": all(
                p["x_cemreplay_faster"] > 1 for r in result["rules"].values() for p in r.values()
            )
        }
    return result
