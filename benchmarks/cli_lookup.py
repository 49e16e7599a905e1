"""The support rep's lookup from a terminal: `cemreplay show ID` and `cemreplay replay ID`, each
in a fresh process as a rep runs them, timed from start to exit.

    python benchmarks/cli_lookup.py [--db STORE] [--sessions 2000] [--lookups 20] [--json F]

Without ``--db`` a store of ``--sessions`` synthetic sessions is built first (not analyzed, so
every lookup also runs the detectors on the session, as for a session that came in since the
last `cemreplay analyze`). Sessions are drawn at random (seeded). Each command is run with the
default (a small session's kernels interpreted) and with ``NUMBA_DISABLE_JIT=0`` (numba's
compiler started, the kernels loaded from its cache), alternating, and the wall and CPU
seconds (user + system of the child) are reported as p50 / p90 / max. The numba cache is
warmed by one run of each before timing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._data import machine

ROOT = Path(__file__).resolve().parents[1]


def build(path: Path, sessions: int) -> None:
    from cemreplay.store import SQLiteStore
    from cemreplay.synth import generate
    from cemreplay.wire import encode

    with SQLiteStore(path) as st:
        st.put_batches(encode(generate(sessions=sessions, seed=21).events))


def pick(db: Path, k: int, seed: int) -> list[str]:
    con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        (n,) = con.execute("SELECT COUNT(*) FROM sessions").fetchone()
        rng = random.Random(seed)
        out = []
        for off in rng.sample(range(n), min(k, n)):
            out.append(con.execute("SELECT session_id FROM sessions LIMIT 1 OFFSET ?", (off,))
                       .fetchone()[0])  # fmt: skip
        return out
    finally:
        con.close()


def one(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``cmd`` (must exit 0)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, timeout=300)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def summary(xs: list[float]) -> dict[str, float]:
    s = sorted(xs)
    return {
        "p50": round(s[len(s) // 2], 3),
        "p90": round(s[min(len(s) - 1, int(len(s) * 0.9))], 3),
        "max": round(s[-1], 3),
    }


def run(db: Path, lookups: int, seed: int) -> dict[str, Any]:
    ids = pick(db, lookups, seed)
    base = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), base.get("PYTHONPATH")]))
    modes = {"default": base, "compiled (NUMBA_DISABLE_JIT=0)": {**base, "NUMBA_DISABLE_JIT": "0"}}
    out_html = Path(tempfile.mkdtemp()) / "replay.html"
    cmds = {
        "show": lambda sid: [sys.executable, "-m", "cemreplay.cli", "show", sid, "--db", str(db),
                             "--color", "never"],
        "replay": lambda sid: [sys.executable, "-m", "cemreplay.cli", "replay", sid, "--db",
                               str(db), "-o", str(out_html)],
    }  # fmt: skip
    for cmd in cmds.values():  # warm the numba cache and the page cache
        for env in modes.values():
            one(cmd(ids[0]), env)
    results: dict[str, Any] = {}
    for name, cmd in cmds.items():
        got: dict[str, dict[str, list[float]]] = {m: {"wall": [], "cpu": []} for m in modes}
        for sid in ids:
            for mode, env in modes.items():
                w, c = one(cmd(sid), env)
                got[mode]["wall"].append(w)
                got[mode]["cpu"].append(c)
        results[name] = {
            mode: {"wall_s": summary(v["wall"]), "cpu_s": summary(v["cpu"])}
            for mode, v in got.items()
        }
    return {"lookups": len(ids), "results": results}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", type=Path, help="an existing store (default: build one)")
    p.add_argument("--sessions", type=int, default=2_000)
    p.add_argument("--lookups", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", metavar="FILE")
    a = p.parse_args()
    result: dict[str, Any] = {"stage": "cli-lookup", "machine": machine()}
    if a.db is None:
        db = Path(tempfile.mkdtemp()) / "store.db"
        t0 = time.perf_counter()
        build(db, a.sessions)
        result["built"] = {"sessions": a.sessions, "seconds": round(time.perf_counter() - t0, 1)}
    else:
        db = a.db
    with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as con:
        result["store"] = {
            "sessions": con.execute("SELECT COUNT(*) FROM sessions").fetchone()[0],
            "bytes": db.stat().st_size,
        }
    result.update(run(db, a.lookups, a.seed))
    result["load_avg_1m_end"] = os.getloadavg()[0]
    text = json.dumps(result, indent=2)
    if a.json:
        Path(a.json).write_text(text + "\n")
    print(text)
    for name, by_mode in result["results"].items():
        for mode, r in by_mode.items():
            print(
                f"{name:7s} {mode:32s} wall p50 {r['wall_s']['p50']:.2f} s p90 "
                f"{r['wall_s']['p90']:.2f} s   cpu p50 {r['cpu_s']['p50']:.2f} s",
                file=sys.stderr,
            )


if __name__ == "__main__":
    main()
