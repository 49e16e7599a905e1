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
does not exit. A worker that dies unexpectedly is logged (its exit code) and restarted
(``LiveConfig.restart``) after a bounded exponential backoff (0.5 s doubling up to
``restart_max_s``; back to 0.5 s once a worker has run that long); the new worker first
analyzes the sessions still marked dirty in the store (at most ``catch_up``, the latest first),
which covers those the dead worker had pending or in flight, and the ids waiting here are sent
to it. ``/healthz`` shows ``live.worker`` (``running``, ``restarting``, ``exited``, ``stopped``),
``live.restarts`` and ``live.last_exit``. Without restart a dead worker's sessions stay dirty
for the next ``cemreplay analyze``.
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
from cemreplay.live import LiveAnalyzer, LiveConfig, Signal, add_fired, add_pending, deliver
from cemreplay.webhook import WebhookSender

__all__ = ["LiveProcess", "WorkerSpec"]

log = logging.getLogger("cemreplay.live")

#: Seconds between two reports of the worker's counters while they change.
_REPORT_S = 0.05

#: Seconds before the first restart of a dead worker (doubled per consecutive death).
_RESTART_FIRST_S = 0.5

#: (session, rule) pairs signalled that a restarted worker is told, so as not to repeat them.
_FIRED_KEPT = 20_000

#: The worker's counters that add up over the workers of one collector (restarts).
_SUMMED = ("analyzed", "runs", "signals", "dropped", "errors")


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


def _worker(
    spec: WorkerSpec,
    inbox: Connection,
    outbox: Connection,
    *,
    seq: int = 0,
    catch_up: int = 0,
    fired: Sequence[tuple[str, str]] = (),
) -> None:
    """The worker process: analyze what ``inbox`` names until told to stop or EOF (a
    restarted worker's: first at most ``catch_up`` sessions marked dirty in the store, not
    signalling again the (session, rule) pairs in ``fired``)."""
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
    analyzer.mark_fired(fired)
    if catch_up > 0:
        try:
            ids = store.dirty_session_ids(min(catch_up, analyzer.max_pending))
        except Exception:
            log.exception("live worker: listing the dirty sessions failed")
            ids = []
        if ids:
            log.info("live worker: catching up on %d dirty session(s)", len(ids))
            now = time.time()
            analyzer.notify_acked((sid, now) for sid in ids)
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
        cfg = spec.config
        if not isinstance(cfg.restart_max_s, int | float) or not (
            _RESTART_FIRST_S <= cfg.restart_max_s <= 3600
        ):
            raise ConfigError(
                f"LiveConfig.restart_max_s must be {_RESTART_FIRST_S} .. 3600 s, "
                f"got {cfg.restart_max_s!r}"
            )
        if not isinstance(cfg.catch_up, int) or cfg.catch_up < 0:
            raise ConfigError(f"LiveConfig.catch_up must be an int >= 0, got {cfg.catch_up!r}")
        self.spec = spec
        self.sinks = tuple(sinks)
        self.max_pending = max_pending
        self.dropped = 0
        self.sink_errors = 0
        self._fired: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
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
        self.restarts = 0
        self.last_exit: int | None = None
        self._base = dict.fromkeys(_SUMMED, 0)  # the counters of the workers that died
        self._life = threading.Lock()  # a restart against stop()
        self._halt = threading.Event()  # set by stop(): no more restarts; ends a backoff
        self._gen = 0  # which worker the threads talk to
        self._spawned = 0.0  # monotonic s the current worker started
        self._deaths = 0  # consecutive early deaths (the backoff's exponent)
        self._run_spec = spec

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
        with self._life:
            if self._proc is not None:
                return self
            spec = self.spec
            if spec.config.log and spec.log_level is None and logging.getLogger().handlers:
                # the collector logs (serve configured it): the worker logs its signals alike
                spec = dataclasses.replace(spec, log_level=log.getEffectiveLevel())
            self._run_spec = spec
            self._halt.clear()
            self._stop = False
            self._spawn(catch_up=0)
        return self

    def _spawn(self, *, catch_up: int) -> None:
        """Start a worker process and its two threads (the caller holds ``_life``)."""
        # A fresh interpreter running this module (not multiprocessing's spawn, which would
        # re-import the embedding program's __main__), importing this same cemreplay.
        w_in, to_worker = os.pipe()
        from_worker, w_out = os.pipe()
        here = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [here, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        )}
        self._proc = None  # a dead worker's, reaped
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
        with self._cv:
            self._gen += 1
            gen = self._gen
            # not idle before the worker's first report
            self._worker = {"busy": True, "seq": self._sent_seq}
            opts = {"seq": self._sent_seq, "catch_up": catch_up, "fired": list(self._fired)}
            self._cv.notify_all()  # a previous worker's forwarding thread ends
        with contextlib.suppress(OSError):  # a worker dead at once: the receiver reports it
            self._to_worker.send(("spec", self._run_spec, opts))
        self._spawned = time.monotonic()
        self._state = "running"
        self._threads = [
            threading.Thread(
                target=self._forward, args=(gen, self._to_worker),
                name="cemreplay-live-fwd", daemon=True,
            ),
            threading.Thread(
                target=self._receive, args=(gen, self._from_worker, self._proc),
                name="cemreplay-live-recv", daemon=True,
            ),
        ]
        for th in self._threads:
            th.start()

    def stop(self, *, drain_s: float = 5.0) -> None:
        """Let the worker analyze what is pending for at most ``drain_s`` more seconds, then
        stop it (terminated if it has not exited 10 s later) and the threads."""
        if self._proc is None and self._state != "restarting":  # not started, or stopped
            return
        end = time.monotonic() + drain_s
        if self._state == "running":  # not during a restart's backoff: no new worker
            self.wait_idle(drain_s)
        with self._life:  # no restart after this
            self._halt.set()
            with self._cv:
                self._stop = True
                self._cv.notify_all()
            proc = self._proc  # None when a restart's new worker failed to start
            threads = self._threads
        if proc is None:  # stopped during a restart's backoff
            if self._state in ("running", "restarting"):
                self._state = "stopped"
            return
        threads[0].join(timeout=5)
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
        threads[1].join(timeout=5)
        self._close_pipes()
        self._proc = None
        self._threads = []
        if self._state in ("running", "restarting"):
            self._state = "stopped"

    def _close_pipes(self) -> None:
        for conn in (self._to_worker, self._from_worker):
            if conn is not None:
                conn.close()
        self._to_worker = self._from_worker = None

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """True once nothing is pending here or in the worker and every signal it emitted
        reached the sinks here (False after ``timeout_s``, or when the worker is not running
        nor being restarted)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and self._state in ("running", "restarting"):
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

    def _forward(self, gen: int, conn: Connection) -> None:
        while True:
            with self._cv:
                while not self._pending and not self._stop and self._gen == gen:
                    self._cv.wait(timeout=1.0)
                if self._stop or self._gen != gen:
                    return
                got = list(self._pending.items())
                self._pending.clear()
                self._sent_seq += 1
                seq = self._sent_seq
                self._inflight = True
            try:
                conn.send(("notify", seq, got))
            except OSError:  # the worker is gone: the receiver reports (and restarts) it
                with self._cv:
                    if self.spec.config.restart and not self._stop:  # for the next worker
                        self.dropped += add_pending(self._pending, got, self.max_pending)
                    else:
                        self.dropped += len(got)
                    self._inflight = False
                return
            with self._cv:
                self._inflight = False

    def _receive(self, gen: int, conn: Connection, proc: subprocess.Popen[bytes]) -> None:
        while True:
            try:
                kind, sigs, stats = conn.recv()
            except (EOFError, OSError):
                break
            for sig in sigs:
                add_fired(self._fired, [(sig.session_id, sig.rule)], _FIRED_KEPT)
                self.sink_errors += deliver(sig, self.sinks)
            with self._cv:
                self._worker = stats
            if kind == "bye":
                break
        if self._stop or self._halt.is_set() or self._gen != gen:
            return
        try:
            code: int | None = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # its pipe closed but it lingers: no orphan
            proc.kill()
            code = proc.wait(timeout=5)
        with self._cv:  # its counters add up with the next worker's
            for k in _SUMMED:
                self._base[k] += int(self._worker.get(k, 0))
            self._worker = {}
        self.last_exit = code
        if not self.spec.config.restart:
            self._state = "exited"
            log.error(
                "the live worker process exited (code %s); live analysis stopped, the "
                "sessions it had not analyzed stay dirty for `cemreplay analyze`",
                code,
            )
            return
        self._restart(gen, code)

    def _restart(self, gen: int, code: int | None) -> None:
        """Start a new worker after the backoff (on the dead worker's receiving thread); a
        worker that cannot be started is tried again, backing off further, until ``stop``."""
        max_s = float(self.spec.config.restart_max_s)
        self._deaths, delay = _backoff(self._deaths, time.monotonic() - self._spawned, max_s)
        self._state = "restarting"
        log.warning(
            "the live worker process exited (code %s); restarting it in %.1f s (restart %d)",
            code, delay, self.restarts + 1,
        )
        while not self._halt.wait(delay):  # until started or stopped
            with self._life:
                if self._halt.is_set() or self._gen != gen:
                    return
                with self._cv:
                    self._gen += 1  # the dead worker's forwarding thread ends
                    gen = self._gen
                    self._cv.notify_all()
                self._threads[0].join(timeout=5)
                self._close_pipes()
                try:
                    self._spawn(catch_up=self.spec.config.catch_up)
                except Exception:
                    self._deaths, delay = _backoff(self._deaths, 0.0, max_s)
                    log.exception(
                        "starting a new live worker process failed; trying again in %.1f s",
                        delay,
                    )
                    continue
                self.restarts += 1
                return

    # -- counters

    @property
    def pending(self) -> int:
        """Sessions waiting here or in the worker."""
        return len(self._pending) + int(self._worker.get("pending", 0))

    @property
    def signals(self) -> int:
        """Signals the workers emitted so far."""
        return self._base["signals"] + int(self._worker.get("signals", 0))

    def stats(self) -> dict[str, Any]:
        """Counters for ``/healthz`` (those of :meth:`LiveAnalyzer.stats` and ``worker``)."""
        w, base = self._worker, self._base
        got = {k: base[k] + int(w.get(k, 0)) for k in _SUMMED}
        return {
            "pending": self.pending,
            "analyzed": got["analyzed"],
            "runs": got["runs"],
            "signals": got["signals"],
            "dropped": self.dropped + got["dropped"],
            "errors": got["errors"] + self.sink_errors,
            "worker": self._state,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
        }

    def webhook_stats(self) -> dict[str, int] | None:
        """The worker's webhook counters (as ``WebhookSender``'s), None without a webhook."""
        wh = self._worker.get("webhook")
        if wh is None and self.spec.config.webhook is not None:
            return {"queued": 0, "sent": 0, "failed": 0, "dropped": 0, "retries": 0}
        return None if wh is None else dict(wh)


def _backoff(deaths: int, lived_s: float, max_s: float) -> tuple[int, float]:
    """The consecutive deaths counting this one and the seconds to wait before the restart: a
    worker that lived ``max_s`` or more starts the count again."""
    deaths = 1 if lived_s >= max_s else deaths + 1
    return deaths, min(max_s, _RESTART_FIRST_S * 2 ** min(deaths - 1, 30))


def _main(argv: list[str]) -> int:
    """``python -m cemreplay.live_process IN_FD OUT_FD``: the worker (started by
    :meth:`LiveProcess.start`; the first message on ``IN_FD`` is its :class:`WorkerSpec`)."""
    inbox = Connection(int(argv[0]), writable=False)
    outbox = Connection(int(argv[1]), readable=False)
    try:
        kind, spec, opts = inbox.recv()
    except (EOFError, OSError):
        return 1
    if kind != "spec" or not isinstance(spec, WorkerSpec):
        return 2
    _worker(
        spec,
        inbox,
        outbox,
        seq=int(opts["seq"]),
        catch_up=int(opts["catch_up"]),
        fired=opts.get("fired", ()),
    )
    return 0


if __name__ == "__main__":
    # the module under its own name, so that the spec unpickles to this very class
    from cemreplay.live_process import _main as main

    raise SystemExit(main(sys.argv[1:]))
