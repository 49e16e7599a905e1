"""Latency of live signals: from a batch acknowledged to its signal at the webhook.

``python benchmarks/live_latency.py`` starts ``cemreplay serve --live --webhook ...`` (live
analysis in its worker process; ``--live-in-collector`` for threads of the collector) as a
subprocess on a free 127.0.0.1 port and a webhook receiver in another subprocess (it stamps
each arrival with the wall clock and writes it down), then sends ``--rate`` batches per second
for ``--duration`` seconds from raw asyncio keep-alive connections (open loop: batch ``k``
leaves at ``t0 + k / rate``). Every batch is a whole fresh session that trips a live rule (a
rage click on a button that throws a JS error), so every acknowledged batch should bring one
signal. Latency = receiver's arrival time - client's time of the 204. A second run without
``--live`` gives the acknowledgement latency to compare (the live path must not slow ingest).

Prints one JSON object (``--json F`` also writes it): per run the offered and achieved
(acknowledged) rates, how late the client sent against its schedule, ack and signal latency
p50/p90/p99/max, signals expected (acknowledged batches) and received, the CPU seconds of the
collector and of the live worker, the load average; ``target_met``: issue #10's target,
signal p99 under 1 s with >= 99 % of 1,000 batches/s acknowledged and every signal received.
Run it under ``flock /tmp/cem-heavy.lock`` on the shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgpack
import polars as pl

from benchmarks.load import Server, _pct, _read_response, _run, free_port
from cemreplay.schema import EVENT_SCHEMA, ClickFlag, EventKind
from cemreplay.wire import encode

HOST = "127.0.0.1"


# -- batches -----------------------------------------------------------------------------------


def template(events: int) -> list[Any]:
    """The envelope of one session's only batch: a page view, mouse moves, four quick clicks
    on a button and the JS error they cause (rage_click then error_click)."""
    t0 = 1_767_225_600_000
    rows: list[dict[str, Any]] = [
        {"t": t0, "kind": int(EventKind.PAGE_VIEW), "target": "/checkout/payment", "x": 1280,
         "y": 800, "a": 1},
    ]
    for k in range(max(0, events - 6)):
        rows.append({"t": t0 + 50 + 20 * k, "kind": int(EventKind.MOUSE_MOVE), "x": 10 + k,
                     "y": 20 + k})
    last = rows[-1]["t"]
    for k in range(4):
        rows.append({"t": last + 100 + 150 * k, "kind": int(EventKind.CLICK),
                     "target": "button#pay", "x": 200, "y": 300,
                     "a": int(ClickFlag.INTERACTIVE), "b": 1})
    rows.append({"t": last + 600, "kind": int(EventKind.JS_ERROR), "target": "/assets/app.js",
                 "text": "TypeError: pay is not a function"})
    full = [
        {"session_id": "T", "visitor_id": "U", "batch": 0, "i": i, "x": 0, "y": 0, "a": 0,
         "b": 0, "target": None, "text": None, **r}
        for i, r in enumerate(rows)
    ]
    (one,) = encode(pl.DataFrame(full, schema=EVENT_SCHEMA), site_key="bench")
    env: list[Any] = msgpack.unpackb(one, raw=False)
    return env


def requests(n: int, events: int, run: str) -> tuple[list[str], list[bytes]]:
    """``n`` HTTP requests, each one fresh session's batch stamped with the current time."""
    env = template(events)
    now = int(time.time() * 1000)
    sids, reqs = [], []
    for k in range(n):
        sid = f"{run}{k:07d}"
        env[2], env[3], env[5] = f"V{run}{k:07d}", sid, now
        body = msgpack.packb(env, use_bin_type=True)
        sids.append(sid)
        reqs.append(
            b"POST /v1/batch HTTP/1.1\r\nHost: bench\r\nContent-Type: application/msgpack\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
    return sids, reqs


# -- the webhook receiver (a subprocess: `live_latency.py --receiver PORT FILE`) ------------


async def _receive(port: int, out: Path) -> None:
    f = out.open("w", buffering=1)

    async def conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                at = time.time()
                d = json.loads(body)
                f.write(f"{d.get('session_id')} {at:.6f} {d.get('emitted_ms', 0) / 1000:.3f}\n")
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(conn, HOST, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()
    f.close()


class Proc(Server):
    """A subprocess (the server with the live options, or the receiver) that stops itself on
    exit; ``cpu_s`` and ``stop`` as load.py's server."""

    def __init__(self, args: list[str], log: Path, port: int, probe: bytes | None):
        self.port = port
        self.log = log
        self.proc = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{args[2:4]} exited: {log.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), 1) as s:
                if probe is None:
                    return
                s.sendall(probe)
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{args} did not start in 180 s")

    def tree_cpu_s(self) -> dict[str, float]:
        """CPU seconds used so far by the server process and by each of its children (the
        live worker process), by pid."""
        out = {str(self.proc.pid): self.cpu_s()}
        try:
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return out
        for pid in kids.split():
            try:
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[pid] = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        return out

    def get(self, path: str) -> Any:
        with socket.create_connection((HOST, self.port), 5) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return json.loads(data.split(b"\r\n\r\n", 1)[1])


# -- the client --------------------------------------------------------------------------------


async def drive(port: int, reqs: list[bytes], rate: float, concurrency: int,
                duration: float) -> tuple[dict[int, float], list[float], float, list[float]]:
    """Open-loop sending; (index -> wall time of its 204, ack latencies in s, elapsed s, how
    late each request left against its schedule in s: the client's own lag)."""
    acked: dict[int, float] = {}
    lat: list[float] = []
    late: list[float] = []
    nxt = 0
    t0 = time.perf_counter()
    end = t0 + duration

    async def conn() -> None:
        nonlocal nxt
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while nxt < len(reqs):
                k = nxt
                nxt += 1
                due = t0 + k / rate
                if due > end:
                    return
                wait = due - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                s = time.perf_counter()
                late.append(max(0.0, s - due))
                writer.write(reqs[k])
                status, _ = await _read_response(reader)
                lat.append(time.perf_counter() - s)
                if status == 204:
                    acked[k] = time.time()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    await asyncio.gather(*(conn() for _ in range(concurrency)))
    return acked, lat, time.perf_counter() - t0, late


def one_run(tmp: Path, args: argparse.Namespace, live: bool) -> dict[str, Any]:
    run = "L" if live else "N"
    n = int(args.rate * args.duration)
    sids, reqs = requests(n, args.events, run)
    rport, sport = free_port(), free_port()
    arrivals = tmp / f"arrivals-{run}.txt"
    receiver = None
    extra: list[str] = []
    if live:
        receiver = Proc([sys.executable, str(Path(__file__).resolve()), "--receiver",
                         str(rport), str(arrivals)], tmp / "receiver.log", rport, None)
        extra = ["--webhook", f"http://{HOST}:{rport}/hook", "--webhook-secret", "bench"]
        if args.live_in_collector:
            extra.append("--live-in-collector")
    server = Proc(
        [sys.executable, "-m", "cemreplay.cli", "serve", "--db", str(tmp / f"{run}.db"),
         "--host", HOST, "--port", str(sport), "--token", "bench", *extra],
        tmp / f"server-{run}.log", sport,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    try:
        # warm-up: the first analysis loads the detectors' compiled kernels (seconds; minutes
        # when numba has to compile them first): wait until it is done
        _, w_reqs = requests(20, args.events, "W" + run)
        _run(drive(sport, w_reqs, 50, 4, 5))
        warm = time.monotonic() + 600
        while live and time.monotonic() < warm:
            h = server.get("/healthz")["live"]
            if h["analyzed"] >= 20 and not h["pending"]:
                break
            time.sleep(0.2)
        time.sleep(0.5)
        sids, reqs = requests(n, args.events, run)
        cpu0 = server.tree_cpu_s()
        load0 = os.getloadavg()[0]
        acked, lat, elapsed, late = _run(drive(sport, reqs, args.rate, args.concurrency,
                                               args.duration))
        load1 = os.getloadavg()[0]
        settle = time.monotonic() + args.settle
        health = server.get("/healthz")
        while live and time.monotonic() < settle:
            health = server.get("/healthz")
            if not health["live"]["pending"] and not health.get("webhook", {}).get("queued"):
                break
            time.sleep(0.2)
        time.sleep(0.5 if live else 0)
        health = server.get("/healthz")
        cpu1 = server.tree_cpu_s()
    finally:
        server.stop()
        if receiver is not None:
            receiver.stop()
    pid = str(server.proc.pid)
    out: dict[str, Any] = {
        "mode": ("live in the collector's process" if args.live_in_collector
                 else "live worker process") if live else "no live analysis",
        "load_avg_1m_start_end": [round(load0, 2), round(load1, 2)],
        "offered_per_s": args.rate,
        "batches_sent": len(lat),
        "batches_acked": len(acked),
        "seconds": round(elapsed, 2),
        "batches_per_s": round(len(acked) / elapsed, 1) if elapsed else 0.0,
        "client_late_p99_ms": round(_pct(late, 99) * 1000, 1),
        "ack_p50_ms": round(_pct(lat, 50) * 1000, 2),
        "ack_p90_ms": round(_pct(lat, 90) * 1000, 2),
        "ack_p99_ms": round(_pct(lat, 99) * 1000, 2),
        "ack_max_ms": round(max(lat) * 1000, 2) if lat else None,
        "collector_cpu_s": round(cpu1.get(pid, 0.0) - cpu0.get(pid, 0.0), 2),
        "live_worker_cpu_s": round(sum(v - cpu0.get(k, 0.0) for k, v in cpu1.items()
                                       if k != pid), 2),
    }
    if live:
        got: dict[str, tuple[float, float]] = {}
        for line in arrivals.read_text().splitlines():
            sid, at, emitted = line.split()
            got.setdefault(sid, (float(at), float(emitted)))
        index = {s: k for k, s in enumerate(sids)}
        mine = [s for s in got if s in index and index[s] in acked]
        sig = [got[s][0] - acked[index[s]] for s in mine]
        # analysis alone: from the 204 to the signal handed to the sinks (server's clock)
        ana = [got[s][1] - acked[index[s]] for s in mine]
        out.update({
            "signals_expected": len(acked),
            "signals_received": len(sig),
            "signal_p50_ms": round(_pct(sig, 50) * 1000, 1),
            "signal_p90_ms": round(_pct(sig, 90) * 1000, 1),
            "signal_p99_ms": round(_pct(sig, 99) * 1000, 1),
            "signal_max_ms": round(max(sig) * 1000, 1) if sig else None,
            "emitted_p50_ms": round(_pct(ana, 50) * 1000, 1),
            "emitted_p99_ms": round(_pct(ana, 99) * 1000, 1),
            "live": health.get("live"),
            "webhook": health.get("webhook"),
        })
    return out


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--receiver":
        asyncio.run(_receive(int(sys.argv[2]), Path(sys.argv[3])))
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=1000, help="batches per second (default 1000)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of sending (default 10)")
    p.add_argument("--events", type=int, default=30, help="events per batch (default 30)")
    p.add_argument("--concurrency", type=int, default=64, help="connections (default 64)")
    p.add_argument("--settle", type=float, default=30.0,
                   help="most seconds to wait for the last signals (default 30)")
    p.add_argument("--no-compare", action="store_true", help="skip the run without --live")
    p.add_argument("--live-in-collector", action="store_true",
                   help="serve --live-in-collector: analysis on the collector's threads")
    p.add_argument("--json", type=Path, help="also write the JSON to this file")
    args = p.parse_args(argv)
    out: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "load_avg_before": [round(x, 2) for x in os.getloadavg()]},
        "command": "python benchmarks/live_latency.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "rate": args.rate, "duration_s": args.duration, "events_per_batch": args.events,
        "connections": args.concurrency,
        "target": "issue #10: signal p99 < 1 s while ingesting 1,000 batches/s",
    }
    with tempfile.TemporaryDirectory(prefix="cemreplay-live-") as d:
        out["live"] = one_run(Path(d), args, live=True)
        if not args.no_compare:
            out["without_live"] = one_run(Path(d), args, live=False)
    out["machine"]["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    lv = out["live"]
    out["target_met"] = bool(
        args.rate >= 1000
        and lv["batches_per_s"] >= 0.99 * args.rate
        and lv["signals_received"] == lv["signals_expected"]
        and lv["signal_p99_ms"] < 1000
    )
    text = json.dumps(out, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
