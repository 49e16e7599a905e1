"""Speed of the Dask run (``cemreplay.distributed``) with 1 and 2 workers; prints a table and JSON.

    python benchmarks/bench_distributed.py [--events 10000000] [--partitions 4] [--workers 1 2]

1. ``--events`` synthetic events (``cemreplay.synth``) exported to partitioned Parquet;
2. single machine, in this process: read every partition, then ``detect`` + ``sessions`` +
   ``score`` over the whole table (polars on all cores);
3. ``analyze_parquet`` on a ``LocalCluster`` of N single-threaded worker processes, for each
   N of ``--workers`` (workers started and warmed on a small export first, so the figure is
   the analysis, not Python imports and numba's cache loads). Worker processes run polars on
   ``--worker-polars-threads`` threads (default 1: one core per worker).

Each time is the best of ``--repeat`` runs; the Dask findings are checked equal to the single
machine's. The machine and its load average are printed with the figures: on a shared
machine they mean little unless the load is low.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._data import machine
from cemreplay import synth
from cemreplay.detectors import detect
from cemreplay.export import export_events, partitions, read_partition
from cemreplay.journeys import sessions
from cemreplay.score import score


def best(fn: Any, repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def warm() -> int:
    """Import and run the pipeline once in a worker (numba's cache, polars' first calls)."""
    ev = synth.generate(sessions=50, seed=1).events
    found = detect(ev)
    sessions(ev)
    score(found)
    return os.getpid()


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cem-bench-dask-") as d:
        return measure(args, Path(d))


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from cemreplay.distributed import analyze_parquet, local_client

    t = time.perf_counter()
    events = synth.generate(events=args.events, seed=args.seed).events
    t_gen = time.perf_counter() - t
    t = time.perf_counter()
    r = export_events([events], tmp / "pq", partitions=args.partitions)
    t_export = time.perf_counter() - t
    export_events([synth.generate(sessions=200, seed=1).events], tmp / "warm", partitions=2)
    del events
    dirs = partitions(tmp / "pq")

    def single() -> pl.DataFrame:
        ev = pl.concat([read_partition(d) for d in dirs])
        found = detect(ev)
        sessions(ev)
        score(found)
        return found

    t_single, want = best(single, args.repeat)
    out: dict[str, Any] = {
        "machine": machine(),
        "events": r.events,
        "sessions": r.sessions,
        "partitions": r.partitions,
        "generate_s": round(t_gen, 2),
        "export_s": round(t_export, 2),
        "single_machine_s": round(t_single, 2),
        "workers": {},
    }
    os.environ["POLARS_MAX_THREADS"] = str(args.worker_polars_threads)
    # The detectors' kernels also start a thread per core unless told otherwise: one core
    # per worker means one thread there too.
    os.environ["CEMREPLAY_THREADS"] = str(args.worker_polars_threads)
    for n in args.workers:
        with local_client(n) as c:
            c.run(warm)  # every worker, not only the one a small warm-up task lands on
            analyze_parquet(tmp / "warm", c)
            secs, res = best(lambda c=c: analyze_parquet(tmp / "pq", c), args.repeat)
        assert res.findings.equals(want), "the Dask findings differ from the single machine's"
        out["workers"][str(n)] = {
            "seconds": round(secs, 2),
            "tasks": res.totals["tasks"].item(),
            "events_per_s": round(r.events / secs),
            "load_avg_1m_after": os.getloadavg()[0],
        }
    ws = out["workers"]
    if "1" in ws and "2" in ws:
        out["speedup_1_to_2"] = round(ws["1"]["seconds"] / ws["2"]["seconds"], 2)
    out["machine"]["load_avg_1m_end"] = os.getloadavg()[0]
    return out


def table(res: dict[str, Any]) -> str:
    lines = [
        f"{res['events']:,} events, {res['sessions']:,} sessions, "
        f"{res['partitions']} partitions; load {res['machine']['load_avg_1m']:.2f} at start, "
        f"{res['machine']['load_avg_1m_end']:.2f} at end",
        f"single machine (read + detect + sessions + score): {res['single_machine_s']:.2f} s",
    ]
    for n, w in res["workers"].items():
        lines.append(
            f"dask, {n} worker(s), {w['tasks']} tasks: {w['seconds']:.2f} s "
            f"({w['events_per_s']:,} events/s)"
        )
    if "speedup_1_to_2" in res:
        lines.append(f"speed-up 1 -> 2 workers: {res['speedup_1_to_2']:.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--worker-polars-threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args(argv)
    res = run(args)
    print(table(res))
    text = json.dumps(res, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
