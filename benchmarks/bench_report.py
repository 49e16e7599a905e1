"""Report benchmark: the full report over a store of N sessions, its time and peak memory.

Two steps, because building a big store takes minutes and the report is what is measured:

``python benchmarks/bench_report.py build --db PATH --sessions 1000000`` generates the
synthetic shop's traffic (``cemreplay.synth``) in parts of ``--part`` sessions (each from its
own seed, so the parts never share an id), encodes each part into the snippet's batches,
stores them (``put_batches(scrub=False)``: generated traffic holds no personal data; scrubbing
is the collector's cost, measured in docs/collector.md) and runs ``analyze``. It resumes: parts
already stored are skipped (a part is marked done in a side file once it is stored).

``python benchmarks/bench_report.py stages --db PATH [--workers N] [--from-events]`` times the
stages in one process (facts from the store, tables, their export, charts and HTML; no
replays) and prints them with the peak RSS; ``--from-events`` ignores the facts ``analyze``
kept and decodes every batch (what a report cost before store version 4).

``python benchmarks/bench_report.py reanalyze --db PATH [--no-facts]`` marks every session
dirty and times ``analyze`` of the whole store, with or without (``--no-facts``) the report
facts it keeps: what keeping them costs.

``python benchmarks/bench_report.py run --db PATH [--out DIR]`` runs
``cemreplay report --db PATH -o DIR/report.html --tables-dir DIR/tables`` in a child
process under ``/usr/bin/time -v`` when present, and prints one JSON object: wall seconds,
peak RSS, store and kept-facts sizes, load average before and after, ``POLARS_MAX_THREADS``.
Every command prints its figures as a table on stderr and as JSON on stdout.
Run them under ``flock /tmp/cem-heavy.lock`` on a shared machine.
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
        **_sizes(db),
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


def stages(db: Path, out: Path, workers: int, kept: bool = True) -> dict[str, object]:
    """The report's stages timed in this process (tables exported as in ``run``, no replays),
    with the peak RSS."""
    import resource

    from cemreplay import reports
    from cemreplay.reports.html import charts, write_report, write_tables
    from cemreplay.store import open_store

    def rss() -> float:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)

    got: dict[str, object] = {"loadavg_before": _load(), "workers": workers, "kept": kept}
    t = time.perf_counter()
    import matplotlib.pyplot  # noqa: F401  (imports timed apart from the stages)
    import scipy.stats  # noqa: F401

    got["imports_s"] = round(time.perf_counter() - t, 2)
    with open_store(db, create=False) as st:
        t0 = time.perf_counter()
        facts = reports.from_store(st, workers=workers, kept=kept)
        t1 = time.perf_counter()
        tables = reports.all_tables(facts)
        t2 = time.perf_counter()
        write_tables(tables, out / "tables", ["csv", "json", "parquet"])
        t3 = time.perf_counter()
        write_report(st, facts, tables, out / "report.html", replays=0)
        t4 = time.perf_counter()
        charts(tables)  # again, alone: what of the HTML stage is charts
        t5 = time.perf_counter()
    got.update(
        sessions=facts.sessions.height,
        findings=facts.findings.height,
        facts_rows=sum(df.height for df in facts.tables().values()),
        facts_s=round(t1 - t0, 2),
        tables_s=round(t2 - t1, 2),
        export_s=round(t3 - t2, 2),
        html_s=round(t4 - t3, 2),
        of_which_charts_s=round(t5 - t4, 2),
        total_s=round(t4 - t0, 2),
        peak_rss_gib=rss(),
        loadavg_after=_load(),
    )
    return got


def reanalyze(db: Path, facts: bool) -> dict[str, object]:
    """``analyze`` of every session again (all marked dirty), timed; with ``facts=False`` the
    report facts are not computed (what analyze cost before store version 4)."""
    import sqlite3

    import cemreplay.store as store_mod
    from cemreplay.store import open_store

    con = sqlite3.connect(db, isolation_level=None)
    con.execute("UPDATE sessions SET dirty = 1")
    con.close()
    keep = store_mod._report_facts
    if not facts:
        store_mod._report_facts = lambda *a, **k: None  # type: ignore[assignment]
    try:
        with open_store(db) as st:
            load = _load()
            t0 = time.perf_counter()
            r = st.analyze(chunk_visitors=20_000)
            wall = time.perf_counter() - t0
    finally:
        store_mod._report_facts = keep
    return {
        "facts": facts,
        "analyzed_sessions": r.sessions,
        "analyzed_events": r.events,
        "analyze_s": round(wall, 1),
        **_sizes(db),
        "loadavg_before": load,
        "loadavg_after": _load(),
    }


def _print(result: dict[str, object]) -> None:
    """The figures as a two-column table on stderr (the JSON goes to stdout)."""
    width = max(len(k) for k in result)
    for k, v in result.items():
        print(f"{k:<{width}}  {v}", file=sys.stderr)


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
    g.add_argument(
        "--from-events", action="store_true", help="ignore the kept facts (decode every batch)"
    )
    a = sub.add_parser("reanalyze", help="time analyze of every session again")
    a.add_argument("--db", type=Path, required=True)
    a.add_argument("--no-facts", action="store_true", help="without the report facts")
    args = p.parse_args(argv)
    if args.cmd == "build":
        result = build(args.db, args.sessions, args.part, args.seed)
    elif args.cmd == "stages":
        out = Path(tempfile.mkdtemp(prefix="cem-report-"))
        result = stages(args.db, out, args.workers, kept=not args.from_events)
    elif args.cmd == "reanalyze":
        result = reanalyze(args.db, facts=not args.no_facts)
    else:
        result = run(args.db, args.out or Path(tempfile.mkdtemp(prefix="cem-report-")))
    _print(result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
