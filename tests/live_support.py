"""A webhook receiver on 127.0.0.1 for the live tests: records what it gets, can be slow or
failing, stops itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import polars as pl

from tests.detector_tables import K, click, e, pv, table

T0 = 1_767_225_600_000


@dataclass
class Receiver:
    """What the receiver got: (headers, body, arrival time) per request."""

    url: str = ""
    got: list[tuple[dict[str, str], bytes, float]] = field(default_factory=list)
    sleep_s: float = 0.0
    fail_first: int = 0  # answer 500 to this many requests first
    calls: int = 0

    def wait(self, n: int, timeout_s: float = 20.0) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if len(self.got) >= n:
                return True
            time.sleep(0.01)
        return False


@contextmanager
def receiver(**kw: float) -> Iterator[Receiver]:
    rec = Receiver(**kw)  # type: ignore[arg-type]

    class H(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            rec.calls += 1
            if rec.sleep_s:
                time.sleep(rec.sleep_s)
            if rec.calls <= rec.fail_first:
                self.send_response(500)
                self.end_headers()
                return
            rec.got.append((dict(self.headers.items()), body, time.time()))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    rec.url = f"http://127.0.0.1:{srv.server_address[1]}/hook"
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    th.start()
    try:
        yield rec
    finally:
        srv.shutdown()
        srv.server_close()
        th.join(timeout=5)


def struggling(t0: int = T0) -> pl.DataFrame:
    """S1: two failed submits of form#pay on /checkout; S2: a rage click on /cart that throws;
    S3: one failed submit only; S4: a rage click, and an error 60 s later."""
    return table(
        {
            "S1": [
                pv(t0, "/checkout"),
                e(t0 + 1000, K.FOCUS, target="input#card"),
                e(t0 + 2000, K.SUBMIT, target="form#pay"),
                e(t0 + 2100, K.VALIDATION_ERROR, target="input#card", text="invalid"),
                e(t0 + 5000, K.SUBMIT, target="form#pay"),
                e(t0 + 5100, K.VALIDATION_ERROR, target="input#card", text="invalid"),
                e(t0 + 9000, K.MOUSE_MOVE, x=1, y=1),
            ],
            "S2": [
                pv(t0, "/cart"),
                *(click(t0 + 1000 + 200 * k, "button#pay") for k in range(4)),
                e(t0 + 1700, K.JS_ERROR, text="TypeError: x"),
            ],
            "S3": [
                pv(t0, "/checkout"),
                e(t0 + 2000, K.SUBMIT, target="form#pay"),
                e(t0 + 2100, K.VALIDATION_ERROR, target="input#card", text="invalid"),
                e(t0 + 9000, K.MOUSE_MOVE, x=1, y=1),
            ],
            "S4": [
                pv(t0, "/cart"),
                *(click(t0 + 1000 + 200 * k, "button#buy") for k in range(4)),
                click(t0 + 61_000, "a#help"),
                e(t0 + 61_100, K.JS_ERROR, text="TypeError: y"),
            ],
        }
    )
