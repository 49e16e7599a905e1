"""End to end: decode + sessions + all detectors + score, events/s and peak memory per event.

    python -m benchmarks e2e [--events 10000000] [--modes stages,process,thread] [--quick]

Input: a batch directory of synthetic traffic (``benchmarks._data.wire_dir``: fresh
``cemreplay.synth`` traffic in ordinary batches, made once and cached), loaded into memory as
wire batches before the clock starts. Each mode runs in a fresh process
(``benchmarks._run``), so that every peak is that run's own:

* ``stages``: the stages one after another over the whole event table in one process (the
  reference; its per-stage seconds say where the time goes); the decode runs on
  ``--decode-threads`` threads (``wire.decode(threads=)``; default ``--workers``), the
  rest as one call each;
* ``inmemory``: :func:`cemreplay.pipeline.run` on threads in one process, one chunk per
  thread (every mode is exact with one decode per chunk: the page baselines are merged from
  the chunks' first step, and the kinds that need them run over the few rows each chunk
  kept; see ``docs/pipeline.md``);
* ``process``: :func:`cemreplay.pipeline.run` on a warmed pool of ``--workers`` processes;
* ``process-onepass``: the same with ``baselines="chunk"`` (each chunk's own baselines);
* ``thread``: the same on threads in one process, chunks of at most 24 MB;
* ``serial``: the same chunking in one thread (the cost of chunking alone);
* ``overlap``: threads in one process, small chunks sized by the input (bounded memory);
  ``overlap-onepass``: the same with ``baselines="chunk"``.

The peer pipeline, on the first ``--peer-events`` events of the same data: rrweb-style JSON
(what rrweb, PostHog and Sentry store) parsed with orjson into a table
(``benchmarks.peers.rrweb_json``), loaded into DuckDB, and the rage-click, dead-click and
form-abandon rules as window SQL (``benchmarks.peers.duckdb_sql``), in this process, timed from
JSON bytes to findings. It does less than cemreplay (3 rules of 11, no sessions, no score);
its findings are checked equal to cemreplay's for those 3 rules (suppressions off on both
sides, see ``benchmarks.peers.rules``).

Every mode's findings are checked equal (per kind, count and content hash) to the ``stages``
run; kinds that compare with baselines over all input are left out of the check when a
chunked run is not exact (see ``cemreplay.pipeline``).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from benchmarks._data import machine, targets_line, wire_dir, wire_dir_events
from benchmarks._run import add_mmap_argument, add_repeat_argument, spawn

MODES = (
    "stages",
    "inmemory",
    "overlap",
    "overlap-onepass",
    "process",
    "process-onepass",
    "thread",
    "serial",
)


def check_same(ref: dict[str, Any], got: dict[str, Any]) -> None:
    """Raise unless a run found what the stages found (the kinds both checked)."""
    a, b = ref["digest"], got["digest"]
    kinds = set(a) & set(b)
    if set(b) - set(a) or not kinds:
        raise AssertionError(f"{got['mode']}: kinds {sorted(b)} vs stages {sorted(a)}")
    bad = {k: (a[k], b[k]) for k in kinds if a[k] != b[k]}
    if bad or ref["sessions"] != got["sessions"] or ref["events"] != got["events"]:
        raise AssertionError(f"{got['mode']} differs from the stages: {bad}")


def peer(d: Any, events: int) -> dict[str, Any]:
    """The peer pipeline on the first ``events`` events (see the module docstring)."""
    import time

    import polars as pl

    from benchmarks._run import load
    from benchmarks.detect import ours
    from benchmarks.peers import duckdb_sql, rrweb_json
    from benchmarks.peers.rules import RULES
    from cemreplay import wire

    ev = wire.decode(load(d))
    keep = ev.head(events)["session_id"].unique()
    sub = ev.filter(pl.col("session_id").is_in(keep))  # whole sessions
    payload = rrweb_json.encode(sub)
    t0 = time.perf_counter()
    table = rrweb_json.decode_orjson(payload)
    con = duckdb_sql.load(table)
    found = {r: duckdb_sql.run(con, r) for r in RULES}
    secs = time.perf_counter() - t0
    for r in RULES:
        if sorted(found[r]) != sorted(ours(sub, r)):
            raise AssertionError(f"the peer pipeline's {r} differs from cemreplay's")
    return {
        "name": "rrweb JSON + orjson -> DuckDB SQL (3 rules)",
        "events": sub.height,
        "seconds": round(secs, 3),
        "events_per_s": round(sub.height / secs),
        "findings": sum(map(len, found.values())),
    }


def run(
    events: int,
    modes: list[str],
    workers: int,
    chunk_bytes: int,
    mmap_threshold: int = 0,
    decode_threads: int = 0,
    repeat: int = 1,
) -> dict[str, Any]:
    d = wire_dir(events, progress=True)
    n = wire_dir_events(d)
    result: dict[str, Any] = {"stage": "e2e", "machine": machine(), "events": n, "runs": {}}
    result["malloc_mmap_threshold"] = mmap_threshold or "glibc default"
    result["repeat"] = repeat
    runs: dict[str, dict[str, Any]] = result["runs"]
    for mode in modes:
        spec = {
            "dir": str(d),
            "mode": mode,
            "workers": workers,
            "decode_threads": decode_threads or workers,
            "chunk_bytes": chunk_bytes,
            "mmap_threshold": mmap_threshold,
            "repeat": repeat,
        }
        runs[mode] = spawn(spec)
    if "stages" in runs:
        for mode, r in runs.items():
            if mode != "stages":
                check_same(runs["stages"], r)
                r["x_vs_stages"] = round(r["events_per_s"] / runs["stages"]["events_per_s"], 2)
        st = runs["stages"]["stage_seconds"]
        result["stage_events_per_s"] = {k: round(n / max(v, 1e-9)) for k, v in st.items()}
    return result


def add_peer(result: dict[str, Any], peer_events: int) -> None:
    from benchmarks._data import wire_dir

    p = peer(wire_dir(result["events"]), peer_events)
    for mode, r in result["runs"].items():
        p[f"x_{mode}_faster"] = round(r["events_per_s"] / p["events_per_s"], 1)
    result["peer"] = p


def targets(result: dict[str, Any], quick: bool) -> Any:
    if quick:
        return "not evaluated with --quick (too small to mean anything)"
    exact = {m: r for m, r in result["runs"].items() if r["exact"]}
    if not exact:
        return "not evaluated without an exact mode"
    mode = max(exact, key=lambda m: exact[m]["events_per_s"])
    best = exact[mode]
    result["best_exact_mode"] = mode
    out = {
        f"e2e>=10M events/s (2 cores, {mode})": best["events_per_s"] >= 10e6,
        f"peak memory<=64 bytes/event ({mode})": best["peak_tree_bytes_per_event"] <= 64,
        "peak memory<=64 bytes/event (some exact mode)": any(
            r["peak_tree_bytes_per_event"] <= 64 for r in exact.values()
        ),
    }
    if "peer" in result:
        out["ahead of the peer pipeline"] = result["peer"][f"x_{mode}_faster"] > 1
    return out


def table(result: dict[str, Any]) -> str:
    lines = [
        f"e2e: {result['events']:,} events; machine {result['machine']}",
        f"best of {result.get('repeat', 1)} runs in one process per mode (cold: the first, "
        "whose every page is new)",
        f"{'mode':<16} {'seconds':>8} {'events/s':>12} {'cold s':>8} {'cold ev/s':>12} "
        f"{'x stages':>9} {'peak B/ev':>10} {'net B/ev':>9} {'findings':>9}",
    ]
    for mode, r in result["runs"].items():
        lines.append(
            f"{mode:<16} {r['seconds']:>8} {r['events_per_s']:>12,} "
            f"{r.get('seconds_cold', r['seconds']):>8} "
            f"{r.get('events_per_s_cold', r['events_per_s']):>12,} "
            f"{r.get('x_vs_stages', 1.0):>9} {r['peak_tree_bytes_per_event']:>10} "
            f"{r['peak_tree_net_bytes_per_event']:>9} {r['findings']:>9,}"
        )
    p = result.get("peer")
    if p:
        lines.append(
            f"peer: {p['name']}: {p['events_per_s']:,} events/s on {p['events']:,} events; "
            + ", ".join(f"{k[2:-7]} x{v}" for k, v in p.items() if k.startswith("x_"))
        )
    if "stage_events_per_s" in result:
        st = result["runs"]["stages"]["stage_seconds"]
        lines.append(
            "stages (serial, seconds): "
            + ", ".join(
                f"{k} {v} s ({result['stage_events_per_s'][k] / 1e6:.1f} M/s)"
                for k, v in st.items()
            )
        )
    lines.append(targets_line(result))
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--modes", default=",".join(MODES), help=f"any of {','.join(MODES)}")
    p.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument(
        "--decode-threads",
        type=int,
        default=0,
        help="threads of the stages run's decode (0: --workers; 1: the one-thread decoder)",
    )
    p.add_argument(
        "--chunk-bytes", type=int, default=0, help="0: the pipeline's default (even chunks)"
    )
    p.add_argument("--peer-events", type=int, default=300_000)
    add_repeat_argument(p)
    add_mmap_argument(p)


def main(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:  # the modes that matter, small: CI runs every stage in under a minute
        args.events, args.chunk_bytes, args.peer_events, args.repeat = 200_000, 0, 20_000, 1
        if args.modes == ",".join(MODES):
            args.modes = "stages,inmemory,process,overlap"
    modes = [m for m in args.modes.split(",") if m]
    bad = set(modes) - set(MODES)
    if bad:
        raise SystemExit(f"unknown mode(s) {sorted(bad)}; choose from {MODES}")
    result = run(
        args.events,
        modes,
        args.workers,
        args.chunk_bytes,
        args.mmap_threshold,
        args.decode_threads,
        args.repeat,
    )
    if args.peer_events:
        add_peer(result, args.peer_events)
    result["targets"] = targets(result, args.quick)
    return result
