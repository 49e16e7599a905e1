"""`cemreplay demo`: the whole system on one machine, with nothing to set up.

1. generates a synthetic shop's traffic, with planted struggles;
2. encodes it into the batches the snippet would send;
3. starts the real collector (`cemreplay serve`) on 127.0.0.1 and posts every batch to it
   over HTTP, as browsers would; the collector stores them in an embedded SQLite store;
4. analyzes the store (sessions, detectors, scores);
5. reads the events back, rebuilds the checkout funnel, and prints the findings and the worst
   sessions, with the commands a support rep would use to look one up.
"""

from __future__ import annotations

import http.client
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TypeVar

import polars as pl

from cemreplay import wire
from cemreplay._warmup import compile_kernels, kernels_cached
from cemreplay.errors import CemReplayError, ConfigError
from cemreplay.journeys import funnel, sessions

T = TypeVar("T")

CHECKOUT = ["/cart", "/checkout", "/checkout/payment", "/confirmation"]
DEFAULT_DB = "cemreplay-demo.db"
SENDERS = 16  # concurrent keep-alive connections, like many browsers at once


def _timed(out: IO[str], label: str, fn: Callable[[], T]) -> T:
    t0 = time.perf_counter()
    result = fn()
    out.write(f"  {label:<48} {time.perf_counter() - t0:6.2f} s\n")
    out.flush()
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Collector:
    """`cemreplay serve` on 127.0.0.1 in a child process (as it runs in production); stopped
    with SIGTERM, which drains its write queue, when the block ends."""

    def __init__(self, db: Path):
        self.db = db
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> _Collector:
        cmd = [
            sys.executable,
            "-m",
            "cemreplay.cli",
            "serve",
            "--db",
            str(self.db),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--site-key",
            "demo",
            # one argument: a random token may start with "-", which argparse would read
            # as an option
            f"--token={secrets.token_urlsafe(16)}",
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise CemReplayError(f"the demo collector exited: {err.strip()[-500:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise CemReplayError("the demo collector did not start within 120 s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _post_all(port: int, batches: Sequence[bytes]) -> tuple[int, dict[int, int]]:
    """POST every batch over SENDERS keep-alive connections; returns (acknowledged, statuses)."""
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def sender(part: Sequence[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            for body in part:
                for attempt in range(5):  # 429/503 mean "later", as the snippet's back-off
                    conn.request("POST", "/v1/batch", body, {"Content-Type": "application/msgpack"})
                    resp = conn.getresponse()
                    resp.read()
                    if resp.status not in (429, 503) or attempt == 4:
                        break
                    time.sleep(0.05 * 2**attempt)
                with lock:
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
        finally:
            conn.close()

    threads = [threading.Thread(target=sender, args=(batches[k::SENDERS],)) for k in range(SENDERS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return statuses.get(204, 0), statuses


def run_demo(
    sessions: int = 500,
    seed: int = 7,
    out: IO[str] | None = None,
    db: str | Path | None = None,
) -> int:
    """Run the demo, writing its report to ``out`` (stdout by default). Returns 0.

    The store goes to ``db`` (default ``cemreplay-demo.db`` in the current directory, which the
    demo recreates on every run); any other existing file is refused, never overwritten.
    """
    from cemreplay.store import open_store

    if sessions < 1:
        raise ConfigError(f"--sessions must be at least 1, got {sessions}")
    out = out or sys.stdout
    path = Path(db or DEFAULT_DB)
    if path.exists():
        if path.name != DEFAULT_DB:
            raise ConfigError(
                f"{path} exists; the demo writes a fresh store: hint: pass a new --db path"
            )
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    n_sessions = sessions
    out.write(f"cemreplay demo: a synthetic shop, {n_sessions:,} sessions, seed {seed}\n\n")
    if not kernels_cached():
        out.write(
            "  first run since install: compiling the kernels on every core, once "
            "(a minute or two)\n"
        )
        out.flush()
        _timed(out, "compile the kernels (cached from now on)", compile_kernels)
    from cemreplay import synth  # its import compiles the generator's kernel (or loads it)

    traffic = _timed(
        out, "generate traffic", lambda: synth.generate(sessions=n_sessions, seed=seed)
    )
    batches = _timed(
        out, "encode to wire batches (as the snippet)", lambda: wire.encode(traffic.events)
    )
    with _Collector(path) as collector:
        t0 = time.perf_counter()
        acked, statuses = _timed(
            out,
            f"POST {len(batches):,} batches to the collector",
            lambda: _post_all(collector.port, batches),
        )
        rate = len(batches) / max(time.perf_counter() - t0, 1e-9)
    if acked != len(batches):
        raise CemReplayError(
            f"the collector acknowledged {acked:,} of {len(batches):,} batches "
            f"(statuses {statuses}); hint: see `cemreplay serve` logs"
        )
    store = open_store(path)
    try:
        analyzed = _timed(out, "analyze the store (sessions, detectors, scores)", store.analyze)
        events = _timed(out, "read the events back from the store", store.events)
        findings = store.findings()
        table = _timed(out, "sessions", lambda: sessions_of(events))
        checkout = _timed(
            out, "checkout funnel", lambda: funnel(events, CHECKOUT, findings=findings)
        )
        worst = store.sessions(limit=None).sort("score", descending=True, nulls_last=True)
        learned = _timed(
            out, "learn the site's string dictionary", lambda: store.learn_dictionary("demo")
        )
    finally:
        store.close()

    size = sum(map(len, batches))
    out.write(
        f"\nCollector: {acked:,} batches acknowledged ({rate:,.0f} batches/s over "
        f"{SENDERS} connections), {size / max(events.height, 1):.1f} bytes/event before gzip\n"
        f"Store: {path} with {events.height:,} events, {analyzed.findings:,} findings\n"
    )
    if learned is not None:
        v3 = sum(map(len, wire.encode(traffic.events, dictionary=learned)))
        out.write(
            f"Site dictionary {learned.id}: {len(learned.strings):,} strings sent by 20 or more "
            f"visitors, {len(learned.to_json()):,} bytes; with it these batches would be "
            f"{v3 / max(events.height, 1):.1f} bytes/event (`cemreplay dictionary --db {path} "
            "--site demo`)\n"
        )
    converted = int(table["converted"].sum()) if "converted" in table.columns else 0
    out.write(
        f"Sessions: {table.height:,} ({table['visitor_id'].n_unique():,} visitors), "
        f"{converted:,} converted ({converted / max(table.height, 1):.1%})\n"
    )
    out.write("\nCheckout funnel (sessions):\n")
    for row in checkout.steps.iter_rows(named=True):
        out.write(
            f"  {row['step']}. {row['name']:<20} entered {row['entered']:>6,}  "
            f"converted {row['converted']:>6,}  dropped {row['dropped']:>6,}\n"
        )
    out.write("\nFindings by kind:\n")
    for kind, count in findings.group_by("kind").len().sort("len", descending=True).iter_rows():
        out.write(f"  {kind:<18} {count:>7,}\n")
    out.write("\nWorst sessions (struggle score):\n")
    for row in worst.head(5).iter_rows(named=True):
        sid = row["session_id"]
        out.write(f"  {sid}  score {row['score'] or 0:.1f}\n")
        mine = findings.filter(pl.col("session_id") == sid).sort("severity", descending=True)
        for exp in mine["explanation"].head(2).to_list():
            out.write(f"      - {exp}\n")
    if worst.height:
        sid = worst["session_id"][0]
        out.write(
            "\nLook a session up as a support rep would:\n"
            f"  cemreplay show {sid} --db {path}\n"
            f"  cemreplay replay {sid} --db {path} -o replay.html\n"
            f"  cemreplay serve --db {path} --token secret   "
            "# then http://127.0.0.1:8000/?token=secret\n"
        )
    return 0


def sessions_of(events: pl.DataFrame) -> pl.DataFrame:
    """Sessions with the default rules (a named function so the demo's timing line reads well)."""
    return sessions(events)
