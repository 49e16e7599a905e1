"""Detection: rage-click, dead-click and form-abandon rules, cemreplay against its peers.

    python -m benchmarks detect [--events 10000000] [--pandas-events N] [--python-events N]

Peers (one adapter module each in ``benchmarks/peers/``), all given the same events (the
stream of ``benchmarks._data.stream``, 10M events by default for every peer):
``duckdb_sql`` (window SQL, 2 threads), ``pandas_rules`` (groupby/shift), ``python_ref``
(one event at a time). cemreplay runs ``detect(events, CONFIG, kinds=RULE)``
(``benchmarks.peers.rules``: the defaults, rage-click suppressions off on every side), which
also explains, scores and sorts each finding. Each peer's findings (session and time of each)
must equal cemreplay's on the same events, or the run fails. All detectors together
(``detect`` with defaults) are timed too.

Two ratios per rule and peer, both like for like, best of ``--reps`` (the Python peer: one
run, it takes seconds):

* ``x_cemreplay_faster`` (the headline): from the same polars event table to the list of
  findings on both sides. cemreplay's time is the whole ``detect`` call (schema and order
  checks, page views, the rule, explanations, sort; its columns are read in place). The
  peer's time is its ``load`` (the table turned into its own form: a DuckDB table, a
  pandas frame, Python lists) plus its rule.
* ``x_cemreplay_faster_rule_only``: neither side's preparation timed: the peer's ``load``
  is done before the clock starts, and cemreplay's shared preparation (``prepare``: checks,
  session boundaries) too; cemreplay's time is then its rule on the prepared table, as
  ``detect`` runs it (clicks and page views found, the rule, explanations, findings
  columns, sort), and the peer's its rule alone (which still tags page views and orders
  each session by time itself).
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
from cemreplay.detectors import detect_prepared
from cemreplay.detectors._base import Context, prepare

PEERS: dict[str, Any] = {"duckdb": duckdb_sql, "pandas": pandas_rules, "python": python_ref}


def _best(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _found(f: pl.DataFrame) -> Found:
    return list(zip(f["session_id"].cast(pl.String).to_list(), f["t"].to_list(), strict=True))


def ours(events: pl.DataFrame, rule: str) -> Found:
    return _found(detect(events, CONFIG, kinds=rule))


def ours_prepared(ctx: Context, rule: str) -> Found:
    """The rule on a prepared table: what ``detect`` does after ``prepare`` (a fresh
    cache each time, so nothing is carried over between repetitions)."""
    ctx.cache.clear()
    return _found(detect_prepared(ctx, CONFIG, kinds=rule))


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
    mine: dict[tuple[int, str], tuple[float, float, Found]] = {}
    for peer, mod in PEERS.items():
        sub = ev.head(sizes.get(peer, n)) if sizes.get(peer, n) < n else ev
        m = sub.height
        t0 = time.perf_counter()
        loaded = mod.load(sub) if peer != "duckdb" else mod.load(sub, threads=2)
        load_s = time.perf_counter() - t0
        for rule in RULES:
            if (m, rule) not in mine:
                cem_s, want = _best(lambda sub=sub, rule=rule: ours(sub, rule), reps)
                ctx = prepare(sub)
                rule_s, again = _best(lambda c=ctx, r=rule: ours_prepared(c, r), reps)
                assert again == want, f"{rule}: detect on a prepared table differs"
                mine[(m, rule)] = (cem_s, rule_s, want)
                del ctx
            cem_s, rule_s, want = mine[(m, rule)]
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
                "load_seconds": round(load_s, 3),
                "seconds": round(s, 4),
                "events_per_s": round(m / (load_s + s)),
                "cemreplay_seconds": round(cem_s, 4),
                "cemreplay_events_per_s": round(m / cem_s),
                "x_cemreplay_faster": round((load_s + s) / cem_s, 1),
                "cemreplay_rule_only_seconds": round(rule_s, 4),
                "x_cemreplay_faster_rule_only": round(s / rule_s, 1),
            }
        del loaded
    result["rules"] = rules
    return result


def table(result: dict[str, Any]) -> str:
    a = result["all_detectors"]
    lines = [
        f"detect: {result['events']:,} events; machine {result['machine']}",
        f"all detectors: {a['events_per_s']:,} events/s ({a['findings']:,} findings)",
        "x faster: from the same polars table (peer load + rule vs detect); "
        "rule only: neither side's preparation timed",
        f"{'rule':<13} {'peer':<18} {'events':>11} {'found':>7} {'peer ev/s':>12} "
        f"{'cemreplay ev/s':>15} {'x faster':>9} {'rule only':>10}",
    ]
    for rule, peers in result["rules"].items():
        for p in peers.values():
            lines.append(
                f"{rule:<13} {p['name']:<18} {p['events']:>11,} {p['findings']:>7,} "
                f"{p['events_per_s']:>12,} {p['cemreplay_events_per_s']:>15,} "
                f"{p['x_cemreplay_faster']:>9} {p['x_cemreplay_faster_rule_only']:>10}"
            )
    lines.append(targets_line(result))
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--pandas-events", type=int, default=10_000_000)
    p.add_argument("--python-events", type=int, default=10_000_000)
    p.add_argument("--reps", type=int, default=3)


def main(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        args.events, args.pandas_events, args.python_events, args.reps = 100_000, 100_000, 30_000, 1
    sizes = {"pandas": args.pandas_events, "python": args.python_events}
    result = run(args.events, sizes, args.reps)
    if args.quick:
        result["targets"] = "not evaluated with --quick (too small to mean anything)"
    else:
        rage = result["rules"]["rage_click"]
        result["targets"] = {
            "ahead of every peer on every rule": all(
                min(p["x_cemreplay_faster"], p["x_cemreplay_faster_rule_only"]) > 1
                for r in result["rules"].values()
                for p in r.values()
            ),
            "all detectors >= 15M events/s": result["all_detectors"]["events_per_s"] >= 15e6,
            "rage_click >= 10x DuckDB": rage["duckdb"]["x_cemreplay_faster"] >= 10,
            "rage_click >= 50x per-event Python": rage["python"]["x_cemreplay_faster"] >= 50,
            "rage_click >= 50x per-event Python, rule only": (
                rage["python"]["x_cemreplay_faster_rule_only"] >= 50
            ),
        }
    return result
