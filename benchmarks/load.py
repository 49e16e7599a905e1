"""Load test of the collector on loopback: ingest rate and latency, loss, and session lookups.

``python benchmarks/load.py`` starts ``cemreplay serve`` as a subprocess on a free 127.0.0.1
port and drives it from raw asyncio keep-alive HTTP/1.1 connections (pre-built requests, so
the generator costs little of the shared CPU). Every run is bounded by ``--batches`` and
``--duration``. Then it stops the server, reopens the store and counts acknowledged batches
that are not there (``lost``). The lookup part builds a store of ``--sessions`` sessions with
``put_batches`` directly (no HTTP), analyzes it, serves it, and times ``/api/sessions/<id>``.

Prints one JSON object. Targets (docs/collector.md): >= 2,000 batches/s of 100 events with
p99 < 100 ms and nothing lost; lookup p99 < 50 ms in a store of 100k sessions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgpack

from cemreplay.schema import LAYOUT, SLOTS, EventKind

HOST = "127.0.0.1"


# -- batches -----------------------------------------------------------------------------------


def _varint(v: int, out: bytearray) -> None:
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return


def _zig(v: int, out: bytearray) -> None:
    _varint((v << 1) ^ (v >> 31), out)


def make_batch(sid: str, vid: str, seq: int, n: int, rng: random.Random) -> bytes:
    """A realistic batch of ``n`` events: a page view, moves, scrolls and clicks."""
    base = 4 * seq
    strings = [f"/products/{rng.randrange(500)}", f"button#add-{seq}", "div.card > a", "locale"]
    evs: list[tuple[int, int, dict[str, int]]] = [
        (EventKind.PAGE_VIEW, 0, {"x": 1280, "y": 720, "a": 1, "target": base + 1}),
    ]
    x = y = 300
    for k in range(n - 1):
        r = k % 10
        if r == 9:
            evs.append(
                (
                    EventKind.CLICK,
                    rng.randrange(50, 400),
                    {"x": x, "y": y, "a": 64, "b": 1, "target": base + 2 + k % 2},
                )
            )
        elif r == 5:
            evs.append(
                (
                    EventKind.SCROLL,
                    rng.randrange(20, 200),
                    {"x": 0, "y": 100 * k, "a": 4000, "b": 720},
                )
            )
        else:
            x += rng.randrange(-30, 31)
            y += rng.randrange(-30, 31)
            evs.append((EventKind.MOUSE_MOVE, rng.randrange(10, 50), {"x": x, "y": y}))
    kinds, times, ints, refs = bytearray(), bytearray(), bytearray(), bytearray()
    last = {"x": 0, "y": 0}
    for kind, dt, f in evs:
        kinds.append(kind)
        _zig(dt, times)
        for j, slot in enumerate(SLOTS):
            if not LAYOUT[kind] >> j & 1:
                continue
            v = f.get(slot, 0)
            if slot in ("x", "y"):
                _zig(v - last[slot], ints)
                last[slot] = v
            elif slot in ("a", "b"):
                _zig(v, ints)
            else:
                _varint(v, refs)
    env = [
        1,
        "bench",
        vid,
        sid,
        seq,
        1_767_225_600_000 + 30_000 * seq,
        base,
        strings,
        len(evs),
        bytes(kinds),
        bytes(times),
        bytes(ints),
        bytes(refs),
    ]
    return bytes(msgpack.packb(env, use_bin_type=True))


# -- the server --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Server:
    """``cemreplay serve`` as a subprocess; stops itself on exit."""

    def __init__(self, db: Path, token: str = "bench"):
        self.port = free_port()
        self.log = db.with_suffix(".log")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cemreplay.cli",
                "serve",
                "--db",
                str(db),
                "--host",
                HOST,
                "--port",
                str(self.port),
                "--token",
                token,
            ],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not start in 180 s")

    def cpu_s(self) -> float:
        """CPU seconds the server process has used so far (Linux)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


# -- the client --------------------------------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length) if length else b""
    return status, body


async def drive(
    port: int,
    requests: list[bytes],
    concurrency: int,
    duration: float,
) -> tuple[list[float], list[int], list[int], float]:
    """Send ``requests`` over ``concurrency`` keep-alive connections; latencies (s), statuses
    and the indices acknowledged with 204."""
    lat: list[float] = []
    statuses: list[int] = []
    acked: list[int] = []
    nxt = 0
    t_end = time.monotonic() + duration

    async def conn() -> None:
        nonlocal nxt
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while nxt < len(requests) and time.monotonic() < t_end:
                k = nxt
                nxt += 1
                t0 = time.perf_counter()
                writer.write(requests[k])
                status, _ = await _read_response(reader)
                lat.append(time.perf_counter() - t0)
                statuses.append(status)
                if status == 204:
                    acked.append(k)
        except (OSError, asyncio.IncompleteReadError):
            statuses.append(-1)
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(conn() for _ in range(concurrency)))
    return lat, statuses, acked, time.perf_counter() - t0


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def _run(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


# -- the two parts -----------------------------------------------------------------------------


def ingest(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(1)
    keys: list[tuple[str, int]] = []
    reqs: list[bytes] = []
    for k in range(args.batches):
        sid, seq = f"S{k // 10:07d}", k % 10
        body = make_batch(sid, f"V{k // 30:07d}", seq, args.events, rng)
        keys.append((sid, seq))
        reqs.append(
            b"POST /v1/batch HTTP/1.1\r\nHost: bench\r\nContent-Type: application/msgpack\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    db = tmp / "ingest.db"
    server = Server(db)
    try:
        cpu0, ru0 = server.cpu_s(), resource.getrusage(resource.RUSAGE_SELF)
        lat, statuses, acked, elapsed = _run(
            drive(server.port, reqs, args.concurrency, args.duration)
        )
        server_cpu = server.cpu_s() - cpu0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        client_cpu = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime
    finally:
        server.stop()
    con = sqlite3.connect(db)
    have = set(con.execute("SELECT session_id, seq FROM batches").fetchall())
    con.close()
    lost = sum(keys[k] not in have for k in acked)
    errors = sum(s != 204 for s in statuses)
    return {
        "batches_sent": len(statuses),
        "batches_acked": len(acked),
        "events_per_batch": args.events,
        "bytes_per_batch": round(sum(len(r) for r in reqs) / max(len(reqs), 1)),
        "seconds": round(elapsed, 2),
        "batches_per_s": round(len(acked) / elapsed, 1) if elapsed else 0.0,
        "events_per_s": round(len(acked) * args.events / elapsed) if elapsed else 0,
        "p50_ms": round(_pct(lat, 50) * 1000, 2),
        "p99_ms": round(_pct(lat, 99) * 1000, 2),
        "errors": errors,
        "lost": lost,
        "concurrency": args.concurrency,
        "server_cpu_s": round(server_cpu, 2),
        "server_cpu_us_per_batch": round(server_cpu / max(len(statuses), 1) * 1e6),
        "client_cpu_s": round(client_cpu, 2),
    }


def lookup(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    from cemreplay.store import SQLiteStore

    rng = random.Random(2)
    db = tmp / "lookup.db"
    t0 = time.perf_counter()
    ids: list[str] = []
    with SQLiteStore(db) as st:
        # 64 template sessions, re-stamped with each session's ids (encoding is not timed here)
        templates = [
            [
                msgpack.unpackb(make_batch("T", "U", seq, args.lookup_events, rng))
                for seq in range(args.lookup_batches)
            ]
            for _ in range(64)
        ]
        chunk: list[bytes] = []
        for s in range(args.sessions):
            sid = f"L{s:07d}"
            ids.append(sid)
            for env in templates[s % 64]:
                env[2], env[3] = f"U{s // 3:07d}", sid
                chunk.append(bytes(msgpack.packb(env, use_bin_type=True)))
            if len(chunk) >= 5_000:
                st.put_batches(chunk)
                chunk = []
        if chunk:
            st.put_batches(chunk)
        build_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        if not args.no_analyze:
            st.analyze()
        analyze_s = time.perf_counter() - t1
    server = Server(db, token="bench")
    lat: list[float] = []
    statuses: list[int] = []
    try:
        picks = [rng.choice(ids) for _ in range(args.lookups)]
        reqs = [
            f"GET /api/sessions/{sid} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer bench"
            "\r\n\r\n".encode()
            for sid in picks
        ]
        # one warm-up request (first use of the detectors in the server process)
        _run(drive(server.port, reqs[:2], 1, 60))
        lat, statuses, _, _ = _run(drive(server.port, reqs, 1, args.duration))
    finally:
        server.stop()
    return {
        "sessions": args.sessions,
        "batches_per_session": args.lookup_batches,
        "events_per_session": args.lookup_batches * args.lookup_events,
        "build_s": round(build_s, 1),
        "analyze_s": round(analyze_s, 1),
        "db_mb": round(db.stat().st_size / 2**20, 1),
        "lookups": len(lat),
        "p50_ms": round(_pct(lat, 50) * 1000, 2),
        "p99_ms": round(_pct(lat, 99) * 1000, 2),
        "errors": sum(s != 200 for s in statuses),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=20_000, help="batches to send (default 20000)")
    p.add_argument("--events", type=int, default=100, help="events per batch (default 100)")
    p.add_argument("--concurrency", type=int, default=64, help="connections (default 64)")
    p.add_argument(
        "--duration", type=float, default=30.0, help="most seconds per timed part (default 30)"
    )
    p.add_argument(
        "--sessions",
        type=int,
        default=100_000,
        help="sessions in the lookup store (default 100000)",
    )
    p.add_argument("--lookup-batches", type=int, default=2, help="batches per lookup session")
    p.add_argument("--lookup-events", type=int, default=60, help="events per lookup batch")
    p.add_argument("--lookups", type=int, default=500, help="lookups to time (default 500)")
    p.add_argument(
        "--no-analyze",
        action="store_true",
        help="skip analyze (lookups then run the detectors per request)",
    )
    p.add_argument("--skip-ingest", action="store_true")
    p.add_argument("--skip-lookup", action="store_true")
    args = p.parse_args(argv)
    out: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_avg_before": [round(x, 2) for x in os.getloadavg()],
        },
    }
    with tempfile.TemporaryDirectory(prefix="cemreplay-load-") as d:
        if not args.skip_ingest:
            out["ingest"] = ingest(Path(d), args)
        if not args.skip_lookup:
            out["lookup"] = lookup(Path(d), args)
    out["machine"]["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
