"""Live analysis in its own process, so that it never takes CPU or the GIL from ingest.

:class:`LiveProcess` is what ``cemreplay serve --live`` runs by default (``LiveConfig(process=
True)``): the collector's writer hands it the ids of the sessions each durable commit changed
(:meth:`LiveProcess.notify`: a bounded, insertion-ordered set under a lock, as
:meth:`cemreplay.live.LiveAnalyzer.notify`; it never blocks), and one forwarding thread sends
them through a pipe to a worker process (a fresh interpreter: ``python -m
cemreplay.live_process``, so an embedding program's ``__main__`` is never re-run). The worker runs a
:class:`cemreplay.live.LiveAnalyzer` over its own connection to the same SQLite store (WAL:
it reads the batches the collector committed; its writes of findings and indexes are short
transactions), the store-wide baseline refresh, the webhook sender and the log sink. It sends
every signal back, with its counters, to a receiving thread in the collector, which feeds the
answer channel (``GET /v1/live/<id>``) and ``/healthz``.

Start and stop: the worker dies with its pipe (EOF: the collector exited, however abruptly)
and ignores SIGINT (the collector stops it); :meth:`LiveProcess.stop` drains what is pending
for at most ``drain_s``, asks the worker to stop, waits for it, and terminates it only if it
does not exit. A worker that dies is reported in ``/healthz`` (``live.worker``); the sessions it had
not analyzed stay marked dirty in the store, so the next ``cemreplay analyze`` covers them.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import os
import signal as _signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from cemreplay.errors import ConfigError
from cemreplay.live import LiveAnalyzer, LiveConfig, Signal, add_pending
from cemreplay.webhook import WebhookSender

__all__ = ["LiveProcess", "WorkerSpec"]

log = logging.getLogger("cemreplay.live")

#: Seconds between two reports of the worker's counters while they change.
_REPORT_S = 0.05


@dataclass(frozen=True)
class WorkerSpec:
    """What the worker process needs (picklable): the store's path, the live config it
    builds its analyzer and sinks from (``process=False``, ``answer=False``), and the log
    level when the collector logs."""

    db_path: str
    config: LiveConfig
    log_level: int | None = None


# ----------------------------------------------------------------------------------------------
# The worker process


class _Outbox:
    """The worker's side of the return pipe: signals are buffered by the analyzer thread and
    sent, with the counters, by one reporting thread (the analyzer never waits on the pipe)."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.buf: list[Signal] = []
        self.lock = threading.Lock()
        self.wake = threading.Event()

    def __call__(self, signal: Signal) -> None:  # a Sink
        with self.lock:
            self.buf.append(signal)
        self.wake.set()

    def take(self) -> list[Signal]:
        with self.lock:
            out, self.buf = self.buf, []
        return out


def _counters(analyzer: LiveAnalyzer, sender: WebhookSender | None, seq: int) -> dict[str, Any]:
    st: dict[str, Any] = dict(analyzer.stats())
    st["busy"] = analyzer.pending > 0 or analyzer._busy
    st["seq"] = seq
    if sender is not None:
        st["webhook"] = sender.stats()
    return st


def _worker(spec: WorkerSpec, inbox: Connection, outbox: Connection) -> None:
    """The worker process: analyze what ``inbox`` names until told to stop or EOF."""
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)  # the collector stops us via the pipe
    if spec.log_level is not None:
        logging.basicConfig(level=spec.log_level, format="%(name)s: %(message)s")
    from cemreplay.store import SQLiteStore

    store = SQLiteStore(spec.db_path)
    out = _Outbox(outbox)
    analyzer, _, sender = dataclasses.replace(spec.config, process=False, answer=False).build(
        store
    )
    analyzer.sinks = (out, *analyzer.sinks)  # first: back to the collector
    seq = 0
    done = threading.Event()

    def report() -> None:
        last: dict[str, Any] | None = None
        while True:
            out.wake.wait(_REPORT_S)
            out.wake.clear()
            # counters first: every signal emitted before they say "not busy" is then taken
            st = _counters(analyzer, sender, seq)
            sigs = out.take()
            if sigs or st != last:
                try:
                    outbox.send(("report", sigs, st))
                except OSError:  # the collector is gone
                    return
                last = st
            if done.is_set() and not out.buf:
                return

    if sender is not None:
        sender.start()
    analyzer.start()
    reporter = threading.Thread(target=report, name="cemreplay-live-report", daemon=True)
    reporter.start()
    drain_s = 0.0
    try:
        while True:
            try:
                msg = inbox.recv()
            except (EOFError, OSError):  # the collector exited: stop now
                break
            if msg[0] == "notify":
                analyzer.notify_acked(msg[2])
                seq = msg[1]  # after the ids are pending: a report never shows them idle
            elif msg[0] == "stop":
                drain_s = float(msg[1])
                break
    finally:
        analyzer.stop(drain_s=drain_s)
        if sender is not None:
            sender.stop(drain_s=min(drain_s, 2.0))
        done.set()
        out.wake.set()
        reporter.join(timeout=5)
        store.close()
        with contextlib.suppress(OSError):
            outbox.send(("bye", [], _counters(analyzer, sender, seq)))
        outbox.close()


# ----------------------------------------------------------------------------------------------
# The collector's side


class LiveProcess:
    """Live analysis in a worker process; the collector's handle on it.

    Parameters
    ----------
    spec:
        The worker's analyzer and sinks (:class:`WorkerSpec`).
    sinks:
        Called in this process with every signal the worker emits (the answer channel);
        must not block.
    max_pending:
        Sessions waiting to be forwarded at most; when full the oldest is dropped (counted
        in ``dropped``).
    """

    def __init__(
        self,
        spec: WorkerSpec,
        sinks: Sequence[Callable[[Signal], None]] = (),
        *,
        max_pending: int = 50_000,
    ):
        if not isinstance(max_pending, int) or max_pending < 1:
            raise ConfigError(f"LiveProcess.max_pending must be an int >= 1, got {max_pending!r}")
        self.spec = spec
        self.sinks = tuple(sinks)
        self.max_pending = max_pending
        self.dropped = 0
        self.sink_errors = 0
        self._pending: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._cv = threading.Condition()
        self._sent_seq = 0
        self._inflight = False
        self._worker: dict[str, Any] = {}
        self._state = "not started"
        self._stop = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._to_worker: Connection | None = None
        self._from_worker: Connection | None = None
        self._threads: list[threading.Thread] = []

    # -- the writer's side: never blocks

    def notify(self, session_ids: Iterable[str], acked: float | None = None) -> None:
        """Sessions changed by a durable commit acknowledged at ``acked`` (wall s)."""
        at = time.time() if acked is None else acked
        with self._cv:
            self.dropped += add_pending(
                self._pending, ((sid, at) for sid in session_ids), self.max_pending
            )
            self._cv.notify()

    # -- life cycle

    def start(self) -> LiveProcess:
        """Start the worker process and the two threads that talk to it (idempotent)."""
        if self._proc is not None:
            return self
        spec = self.spec
        if spec.config.log and spec.log_level is None and logging.getLogger().handlers:
            # the collector logs (serve configured it): the worker logs its signals alike
            spec = dataclasses.replace(spec, log_level=log.getEffectiveLevel())
        # A fresh interpreter running this module (not multiprocessing's spawn, which would
        # re-import the embedding program's __main__), importing this same cemreplay.
        w_in, to_worker = os.pipe()
        from_worker, w_out = os.pipe()
        here = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [here, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        )}
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "cemreplay.live_process", str(w_in), str(w_out)],
                pass_fds=(w_in, w_out),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except BaseException:
            for fd in (w_in, to_worker, from_worker, w_out):
                os.close(fd)
            raise
        finally:
            if self._proc is not None:
                os.close(w_in)  # the worker's ends: closed here so that EOF means its exit
                os.close(w_out)
        self._to_worker = Connection(to_worker, readable=False)
        self._from_worker = Connection(from_worker, writable=False)
        self._to_worker.send(("spec", spec))
        self._state = "running"
        self._stop = False
        self._threads = [
            threading.Thread(target=self._forward, name="cemreplay-live-fwd", daemon=True),
            threading.Thread(target=self._receive, name="cemreplay-live-recv", daemon=True),
        ]
        for th in self._threads:
            th.start()
        return self

    def stop(self, *, drain_s: float = 5.0) -> None:
        """Let the worker analyze what is pending for at most ``drain_s`` more seconds, then
        stop it (terminated if it has not exited 10 s later) and the threads."""
        proc = self._proc
        if proc is None:
            return
        end = time.monotonic() + drain_s
        self.wait_idle(drain_s)
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._threads[0].join(timeout=5)
        if self._to_worker is not None:
            with contextlib.suppress(OSError):
                self._to_worker.send(("stop", max(0.0, end - time.monotonic())))
        try:
            proc.wait(timeout=max(0.0, end - time.monotonic()) + 10)
        except subprocess.TimeoutExpired:
            log.warning("live worker did not stop; terminating it")
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self._threads[1].join(timeout=5)
        for conn in (self._to_worker, self._from_worker):
            if conn is not None:
                conn.close()
        self._to_worker = self._from_worker = None
        self._proc = None
        self._threads = []
        if self._state == "running":
            self._state = "stopped"

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """True once nothing is pending here or in the worker and every signal it emitted
        reached the sinks here (False after ``timeout_s``, or when the worker is not running)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and self._state == "running":
            with self._cv:
                w = self._worker
                if (
                    not self._pending
                    and not self._inflight
                    and w.get("seq") == self._sent_seq
                    and not w.get("busy")
                ):
                    return True
            time.sleep(0.005)
        return False

    # -- the threads

    def _forward(self) -> None:
        while True:
            with self._cv:
                while not self._pending and not self._stop:
                    self._cv.wait(timeout=1.0)
                if self._stop:
                    return
                got = list(self._pending.items())
                self._pending.clear()
                self._sent_seq += 1
                seq = self._sent_seq
                self._inflight = True
            try:
                if self._to_worker is None:
                    return
                self._to_worker.send(("notify", seq, got))
            except OSError:  # the worker is gone: the receiver reports it
                with self._cv:
                    self.dropped += len(got)
                    self._inflight = False
                return
            with self._cv:
                self._inflight = False

    def _receive(self) -> None:
        conn = self._from_worker
        while conn is not None:
            try:
                kind, sigs, stats = conn.recv()
            except (EOFError, OSError):
                break
            for sig in sigs:
                for sink in self.sinks:
                    try:
                        sink(sig)
                    except Exception:
                        self.sink_errors += 1
                        log.exception("live sink %r failed", sink)
            with self._cv:
                self._worker = stats
            if kind == "bye":
                break
        if not self._stop and self._state == "running":
            code = self._proc.poll() if self._proc is not None else None
            self._state = "exited"
            log.error(
                "the live worker process exited (code %s); live analysis stopped, the "
                "sessions it had not analyzed stay dirty for `cemreplay analyze`",
                code,
            )

    # -- counters

    @property
    def pending(self) -> int:
        """Sessions waiting here or in the worker."""
        return len(self._pending) + int(self._worker.get("pending", 0))

    @property
    def signals(self) -> int:
        """Signals the worker emitted so far."""
        return int(self._worker.get("signals", 0))

    def stats(self) -> dict[str, Any]:
        """Counters for ``/healthz`` (those of :meth:`LiveAnalyzer.stats` and ``worker``)."""
        w = self._worker
        return {
            "pending": self.pending,
            "analyzed": int(w.get("analyzed", 0)),
            "runs": int(w.get("runs", 0)),
            "signals": self.signals,
            "dropped": self.dropped + int(w.get("dropped", 0)),
            "errors": int(w.get("errors", 0)) + self.sink_errors,
            "worker": self._state,
        }

    def webhook_stats(self) -> dict[str, int] | None:
        """The worker's webhook counters (as ``WebhookSender``'s), None without a webhook."""
        wh = self._worker.get("webhook")
        if wh is None and self.spec.config.webhook is not None:
            return {"queued": 0, "sent": 0, "failed": 0, "dropped": 0, "retries": 0}
        return None if wh is None else dict(wh)


def _main(argv: list[str]) -> int:
    """``python -m cemreplay.live_process IN_FD OUT_FD``: the worker (started by
    :meth:`LiveProcess.start`; the first message on ``IN_FD`` is its :class:`WorkerSpec`)."""
    inbox = Connection(int(argv[0]), writable=False)
    outbox = Connection(int(argv[1]), readable=False)
    try:
        kind, spec = inbox.recv()
    except (EOFError, OSError):
        return 1
    if kind != "spec" or not isinstance(spec, WorkerSpec):
        return 2
    _worker(spec, inbox, outbox)
    return 0


if __name__ == "__main__":
    # the module under its own name, so that the spec unpickles to this very class
    from cemreplay.live_process import _main as main

    raise SystemExit(main(sys.argv[1:]))
