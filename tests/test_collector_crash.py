"""`cemreplay serve` killed with SIGKILL under load loses no batch it acknowledged."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from cemreplay.store import SQLiteStore
from tests.batches import batch

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")

START_TIMEOUT_S = 180  # the first start may compile the decoder's kernels
SENDERS = 6
PER_SENDER = 400  # bounded whatever happens
KILL_AFTER = 300  # acknowledged batches before the kill


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db: Path, log: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cemreplay.cli", "serve", "--db", str(db), "--host",
         "127.0.0.1", "--port", str(port), "--token", "t", *extra],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"server did not start: {log.read_text()}")


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_batch(tmp_path):
    db = tmp_path / "crash.db"
    proc, url = start_server(db, tmp_path / "server.log")
    acked: list[tuple[str, int]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def send(w: int) -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            for k in range(PER_SENDER):
                if stop.is_set():
                    return
                sid, seq = f"w{w}-{k // 4}", k % 4
                try:
                    r = client.post("/v1/batch", content=batch(sid, seq, moves=20),
                                    headers={"content-type": "application/msgpack"})
                except httpx.HTTPError:
                    return  # the server is gone
                if r.status_code == 204:
                    with lock:
                        acked.append((sid, seq))

    threads = [threading.Thread(target=send, args=(w,)) for w in range(SENDERS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(acked) < KILL_AFTER and any(
        t.is_alive() for t in threads
    ):
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # mid-load: requests are in flight
    proc.wait(timeout=30)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert len(acked) >= KILL_AFTER
    with SQLiteStore(db) as st:
        con = st._con()
        have = set(con.execute("SELECT session_id, seq FROM batches").fetchall())
        assert st.quarantine().height == 0
    missing = [k for k in acked if k not in have]
    assert not missing, f"{len(missing)} acknowledged batches lost, e.g. {missing[:5]}"
    # the store reopens cleanly and every stored batch decodes
    with SQLiteStore(db) as st:
        assert st.events().height == len(have) * 21
