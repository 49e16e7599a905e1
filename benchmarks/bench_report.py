"""Report benchmark: the full report over a store of N sessions, its time and peak memory.

Two steps, because building a big store takes minutes and the report is what is measured:

``python benchmarks/bench_report.py build --db PATH --sessions 1000000`` generates the
synthetic shop's traffic (``cemreplay.synth``) in parts of ``--part`` sessions (each from its
own seed, so the parts never share an id), encodes each part into the snippet's batches,
stores them (``put_batches(scrub=False)``: generated traffic holds no personal data; scrubbing
is the collector's cost, measured in docs/collector.md) and runs ``analyze``. It resumes: parts
already stored are skipped (a part is marked done in a side file once it is stored).

``python benchmarks/bench_report.py stages --db PATH [--workers N]`` times the stages in one
process (facts from the store, tables, charts and HTML) and prints them with the peak RSS.

``python benchmarks/bench_report.py run --db PATH [--out DIR]`` runs
``cemreplay report --db PATH -o DIR/report.html --tables-dir DIR/tables`` in a child
process under ``/usr/bin/time -v`` when present, and prints one JSON object: wall seconds,
peak RSS, sessions, events, load average before and after, ``POLARS_MAX_THREADS``.
Run both under ``flock /tmp/cem-heavy.lock`` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _load() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:  # pragma: no cover - not Linux
        return "?"


def build(db: Path, sessions: int, part: int, seed: int) -> dict[str, object]:
    from cemreplay import synth, wire
    from cemreplay.store import open_store

    done_file = db.with_suffix(db.suffix + ".parts")
    done = set(done_file.read_text().split()) if done_file.exists() else set()
    t0 = time.perf_counter()
    events = 0
    with open_store(db) as st:
        for k in range(0, sessions, part):
            n = min(part, sessions - k)
            key = f"{seed + k}:{n}"
            if key in done:
                continue
            tr = synth.generate(n, seed=seed + k)
            events += tr.events.height
            batches = wire.encode(tr.events)
            del tr
            for j in range(0, len(batches), 50_000):
                st.put_batches(batches[j : j + 50_000], scrub=False)
            del batches
            with done_file.open("a") as f:
                f.write(key + "\n")
            print(f"part {key}: stored, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        t1 = time.perf_counter()
        load = _load()
        r = st.analyze(chunk_visitors=20_000)
        t2 = time.perf_counter()
    return {
        "sessions": sessions,
        "new_events": events,
        "store_s": round(t1 - t0, 1),
        "analyze_s": round(t2 - t1, 1),
        "analyzed_sessions": r.sessions,
        "analyzed_events": r.events,
        **_sizes(db),
        "loadavg_before_analyze": load,
        "loadavg": _load(),
    }


def _sizes(db: Path) -> dict[str, int]:
    """The store's size and how much of it the kept report facts take."""
    import sqlite3

    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        parts, facts = con.execute(
            "SELECT count(*), coalesce(sum(length(data)), 0) FROM report_facts"
        ).fetchone()
    finally:
        con.close()
    return {"db_bytes": db.stat().st_size, "facts_parts": parts, "facts_bytes": facts}


def run(db: Path, out: Path) -> dict[str, object]:
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "cemreplay.cli", "report", "--db", str(db),
        "-o", str(out / "report.html"), "--tables-dir", str(out / "tables"), "--no-progress",
    ]  # fmt: skip
    timer = Path("/usr/bin/time")
    if timer.exists():
        cmd = [str(timer), "-v", *cmd]
    load0 = _load()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"report failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return {
        "db": str(db),
        "db_bytes": db.stat().st_size,
        "wall_s": round(wall, 2),
        "peak_rss_gib": round(int(rss.group(1)) / 2**20, 2) if rss else None,
        "report_bytes": (out / "report.html").stat().st_size,
        "stdout": proc.stdout.strip().splitlines()[-3:],
        "loadavg_before": load0,
        "loadavg_after": _load(),
        "polars_max_threads": os.environ.get("POLARS_MAX_THREADS"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
    }


def stages(db: Path, out: Path, workers: int) -> dict[str, object]:
    """The report's stages timed in this process (no replays), with the peak RSS after each."""
    import resource

    from cemreplay import reports
    from cemreplay.reports.html import write_report
    from cemreplay.store import open_store

    def rss() -> float:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)

    got: dict[str, object] = {"loadavg_before": _load(), "workers": workers}
    with open_store(db, create=False) as st:
        t0 = time.perf_counter()
        facts = reports.from_store(st, workers=workers)
        t1 = time.perf_counter()
        tables = reports.all_tables(facts)
        t2 = time.perf_counter()
        write_report(st, facts, tables, out / "report.html", replays=0)
        t3 = time.perf_counter()
    got.update(
        sessions=facts.sessions.height,
        findings=facts.findings.height,
        facts_s=round(t1 - t0, 2),
        tables_s=round(t2 - t1, 2),
        html_s=round(t3 - t2, 2),
        total_s=round(t3 - t0, 2),
        peak_rss_gib=rss(),
        loadavg_after=_load(),
    )
    return got


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="generate, store and analyze N sessions (resumable)")
    b.add_argument("--db", type=Path, required=True)
    b.add_argument("--sessions", type=int, default=1_000_000)
    b.add_argument("--part", type=int, default=100_000)
    b.add_argument("--seed", type=int, default=11)
    r = sub.add_parser("run", help="time the full report over a built store")
    r.add_argument("--db", type=Path, required=True)
    r.add_argument("--out", type=Path, default=None)
    g = sub.add_parser("stages", help="time the report's stages in-process")
    g.add_argument("--db", type=Path, required=True)
    g.add_argument("--workers", type=int, default=1)
    args = p.parse_args(argv)
    if args.cmd == "build":
        result = build(args.db, args.sessions, args.part, args.seed)
    elif args.cmd == "stages":
        result = stages(args.db, Path(tempfile.mkdtemp(prefix="cem-report-")), args.workers)
    else:
        result = run(args.db, args.out or Path(tempfile.mkdtemp(prefix="cem-report-")))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
