"""Live analysis: struggle found while the visitor is still on the site.

The collector acknowledges a batch once it is durable; then, off the request path, it hands
the ids of the sessions that group commit changed to a :class:`LiveAnalyzer`. Its worker
thread analyzes exactly those sessions (:meth:`cemreplay.store.SQLiteStore.analyze_sessions`:
the detectors, the score, the findings and the per-page baselines, as a batch ``analyze``
would), checks the sessions' findings against the live :class:`Rule` s, and hands every new
:class:`Signal` to its sinks: a signed webhook (:class:`cemreplay.webhook.WebhookSender`), the
answer channel the snippet polls (:class:`AnswerChannel`, ``GET /v1/live/<session>``) and the
log.

Nothing here makes a request wait: :meth:`LiveAnalyzer.notify` only records the ids under a
lock (a bounded set; when full the oldest id is dropped and counted), and every sink is
non-blocking. ``cemreplay serve --live`` runs the analyzer in a worker process
(:mod:`cemreplay.live_process`), so that it does not share the collector's GIL; on threads of
the collector (``LiveConfig(process=False)``) it does: see the figures in ``docs/live.md``.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import polars as pl

from cemreplay.errors import ConfigError
from cemreplay.schema import FINDING_KINDS
from cemreplay.store import SQLiteStore

__all__ = [
    "DEFAULT_RULES",
    "AnswerChannel",
    "LiveAnalyzer",
    "LiveConfig",
    "LogSink",
    "Rule",
    "Signal",
    "Sink",
    "WebhookSink",
    "add_fired",
    "add_pending",
    "deliver",
    "evaluate",
    "parse_rules",
]

log = logging.getLogger("cemreplay.live")


@dataclass(frozen=True)
class Rule:
    """A live rule: ``count`` findings of ``kind`` in a session (on the same page and target
    when ``same_target``), or, with ``then``, a finding of ``kind`` followed within
    ``within_ms`` by one of ``then``.

    >>> Rule("failed_submit", count=2, same_target=True).name
    'failed_submit>=2/same'
    >>> Rule("rage_click", then="error_click", within_ms=30_000).name
    'rage_click->error_click<30s'
    """

    kind: str
    count: int = 1
    same_target: bool = False
    then: str | None = None
    within_ms: int = 30_000

    def __post_init__(self) -> None:
        for k in (self.kind, self.then):
            if k is not None and k not in FINDING_KINDS:
                raise ConfigError(
                    f"live rule: unknown finding kind {k!r}; hint: kinds are "
                    f"{', '.join(FINDING_KINDS)}"
                )
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ConfigError(f"live rule {self.kind}: count must be an int >= 1")
        if not isinstance(self.within_ms, int) or not 0 < self.within_ms <= 3_600_000:
            raise ConfigError(f"live rule {self.kind}: within must be 1 ms .. 1 h")

    @property
    def name(self) -> str:
        """The rule in the ``--live-rules`` syntax (also its id in signals)."""
        if self.then is not None:
            return f"{self.kind}->{self.then}<{self.within_ms // 1000}s"
        return f"{self.kind}>={self.count}" + ("/same" if self.same_target else "")


#: The default rules: two failed submits of the same form (a visitor who tried twice and is
#: about to give up: Baymard finds most checkout abandonment follows repeated form errors),
#: and a rage click followed by an error within 30 s (the page broke under the visitor's hand).
DEFAULT_RULES: Final = (
    Rule("failed_submit", count=2, same_target=True),
    Rule("rage_click", then="error_click", within_ms=30_000),
)

_RULE_RE: Final = re.compile(
    r"^(?P<a>[a-z_]+)\s*(?:>=\s*(?P<n>\d+)\s*(?P<same>/same)?|->\s*(?P<b>[a-z_]+)"
    r"\s*(?:<\s*(?P<w>\d+)\s*(?P<u>ms|s|m)?)?)?$"
)


def parse_rules(spec: str) -> tuple[Rule, ...]:
    """Rules from the ``--live-rules`` syntax: comma-separated ``KIND>=N[/same]`` or
    ``KIND->KIND[<30s]``; ``default`` stands for :data:`DEFAULT_RULES`.

    >>> [r.name for r in parse_rules("failed_submit>=2/same, rage_click->error_click<20s")]
    ['failed_submit>=2/same', 'rage_click->error_click<20s']
    """
    out: list[Rule] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part == "default":
            out += DEFAULT_RULES
            continue
        m = _RULE_RE.match(part)
        if m is None:
            raise ConfigError(
                f"live rule {part!r} is not KIND>=N[/same] or KIND->KIND[<30s]; hint: "
                "failed_submit>=2/same,rage_click->error_click<30s"
            )
        if m["b"]:
            unit = {"ms": 1, "s": 1000, "m": 60_000}[m["u"] or "s"]
            within = int(m["w"]) * unit if m["w"] else 30_000
            out.append(Rule(m["a"], then=m["b"], within_ms=within))
        else:
            out.append(Rule(m["a"], count=int(m["n"] or 1), same_target=bool(m["same"])))
    if not out:
        raise ConfigError("no live rules given; hint: --live-rules default")
    return tuple(out)


@dataclass(frozen=True)
class Signal:
    """A session that crossed a live rule."""

    session_id: str
    visitor_id: str | None
    rule: str
    reason: str
    page_url: str | None
    t: int  # event time (epoch ms) of the finding that crossed the rule
    findings: tuple[dict[str, Any], ...]
    acked: float  # wall time (s) the earliest batch behind this analysis was acknowledged
    emitted: float = 0.0  # wall time (s) the signal was handed to the sinks
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_json(self) -> dict[str, Any]:
        """The signal as sent to the webhook and the answer channel."""
        return {
            "type": "live_signal",
            "id": self.id,
            "session_id": self.session_id,
            "visitor_id": self.visitor_id,
            "rule": self.rule,
            "reason": self.reason,
            "page_url": self.page_url,
            "t": self.t,
            "findings": list(self.findings),
            "acked_ms": round(self.acked * 1000),
            "emitted_ms": round(self.emitted * 1000),
        }


def _summary(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: row.get(k) for k in ("kind", "t", "page_url", "target", "explanation")}


#: A crossed rule and the findings that crossed it.
Hit = tuple[Rule, list[dict[str, Any]]]


def evaluate(rules: Sequence[Rule], findings: pl.DataFrame) -> list[Hit]:
    """Which rules the findings cross, per session: (rule, the findings that crossed it).

    At most one hit per (session, rule), at the earliest point the rule was crossed.
    """
    if findings.height == 0:
        return []
    wanted = {r.kind for r in rules} | {r.then for r in rules if r.then}
    f = (
        findings.filter(pl.col("kind").cast(pl.String).is_in(list(wanted)))
        .with_columns(
            pl.col(c).cast(pl.String) for c in ("session_id", "visitor_id", "kind", "page_url")
        )
        .sort("session_id", "t")
    )
    out: list[Hit] = []
    for _sid, grp in itertools.groupby(f.to_dicts(), key=lambda r: r["session_id"]):
        rows = list(grp)
        for rule in rules:
            hit = _cross(rule, rows)
            if hit:
                out.append((rule, hit))
    return out


def _cross(rule: Rule, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    firsts = [r for r in rows if r["kind"] == rule.kind]
    if rule.then is None:
        groups: dict[Any, list[dict[str, Any]]] = {}
        for r in firsts:
            key = (r["page_url"], r["target"]) if rule.same_target else None
            grp = groups.setdefault(key, [])
            grp.append(r)
            if len(grp) >= rule.count:
                return grp
        return []
    for a in firsts:
        for b in rows:
            if b["kind"] == rule.then and a["t"] <= b["t"] <= a["t"] + rule.within_ms:
                return [a, b]
    return []


def _reason(rule: Rule, hit: list[dict[str, Any]]) -> str:
    last = hit[-1]
    where = f" on {last['page_url']}" if last.get("page_url") else ""
    if rule.then is not None:
        secs = (last["t"] - hit[0]["t"]) / 1000
        return f"{rule.kind} then {rule.then} {secs:.1f} s later{where}"
    what = f" of {last['target']}" if rule.same_target and last.get("target") else ""
    return f"{len(hit)} x {rule.kind}{what}{where}"


# ----------------------------------------------------------------------------------------------
# Sinks


class Sink(Protocol):
    """Where signals go; ``__call__`` must not block (queue and return)."""

    def __call__(self, signal: Signal) -> None: ...


class LogSink:
    """Signals to the ``cemreplay.live`` logger (INFO), one line each."""

    def __init__(self, logger: logging.Logger | None = None):
        self.logger = logger or log

    def __call__(self, signal: Signal) -> None:
        self.logger.info(
            "live signal %s: session %s: %s", signal.rule, signal.session_id, signal.reason
        )


class AnswerChannel:
    """The latest signals per session, for the snippet to poll (``GET /v1/live/<id>``).

    Bounded: at most ``max_sessions`` sessions (least recently signalled dropped first) and
    ``per_session`` signals each; a signal older than ``ttl_s`` is no longer served.
    """

    def __init__(self, *, max_sessions: int = 10_000, per_session: int = 8, ttl_s: float = 1800):
        self.max_sessions = max_sessions
        self.per_session = per_session
        self.ttl_s = ttl_s
        self._by: collections.OrderedDict[str, list[dict[str, Any]]] = collections.OrderedDict()
        self._n = 0
        self._lock = threading.Lock()

    def __call__(self, signal: Signal) -> None:
        with self._lock:
            self._n += 1
            item = {
                "n": self._n,
                "session_id": signal.session_id,
                "rule": signal.rule,
                "reason": signal.reason,
                "page_url": signal.page_url,
                "t": signal.t,
                "at": signal.emitted or time.time(),
            }
            lst = self._by.pop(signal.session_id, [])
            lst = [*lst, item][-self.per_session :]
            self._by[signal.session_id] = lst
            while len(self._by) > self.max_sessions:
                self._by.popitem(last=False)

    def poll(self, session_id: str, after: int = 0) -> list[dict[str, Any]]:
        """Signals of the session numbered above ``after`` (each has ``n``), oldest first."""
        cut = time.time() - self.ttl_s
        with self._lock:
            lst = self._by.get(session_id, [])
            return [
                {k: v for k, v in s.items() if k != "at"}
                for s in lst
                if s["n"] > after and s["at"] >= cut
            ]


# ----------------------------------------------------------------------------------------------
# The analyzer


def add_pending(
    pending: collections.OrderedDict[str, float],
    pairs: Iterable[tuple[str, float]],
    max_pending: int,
) -> int:
    """Add (session id, acknowledged wall time) pairs to an insertion-ordered pending set (a
    session already there keeps its earlier time), drop the oldest beyond ``max_pending``;
    how many were dropped. The caller holds the lock."""
    for sid, at in pairs:
        if sid not in pending:
            pending[sid] = at
    dropped = 0
    while len(pending) > max_pending:
        pending.popitem(last=False)
        dropped += 1
    return dropped


def add_fired(
    fired: collections.OrderedDict[tuple[str, str], None],
    pairs: Iterable[tuple[str, str]],
    most: int,
) -> None:
    """Remember (session id, rule) pairs as signalled in an insertion-ordered set, forgetting
    the oldest beyond ``most``."""
    for sid, rule in pairs:
        fired[(sid, rule)] = None
    while len(fired) > most:
        fired.popitem(last=False)


def deliver(signal: Signal, sinks: Iterable[Callable[[Signal], None]]) -> int:
    """Hand ``signal`` to every sink, logging any that raises; how many raised."""
    failed = 0
    for sink in sinks:
        try:
            sink(signal)
        except Exception:
            failed += 1
            log.exception("live sink %r failed", sink)
    return failed


@dataclass
class LiveAnalyzer:
    """Incremental analysis of changed sessions and live signals, on one worker thread.

    Parameters
    ----------
    store:
        The store the collector writes (the analyzer opens its own connection).
    rules:
        The live rules (default :data:`DEFAULT_RULES`).
    sinks:
        Called with each new :class:`Signal` (must not block).
    max_pending:
        Sessions waiting for analysis at most; when full the oldest is dropped (``dropped``).
    max_sessions_per_run:
        Sessions analyzed together at most (one decode, one detect, one transaction).
    batch_window_s:
        A run starts once the first pending session has waited this long (or
        ``max_sessions_per_run`` are pending): a run costs ~35 ms whatever its size plus
        ~0.1 ms per session, so gathering a quarter second of arrivals costs a signal at most
        that much latency and saves most of the CPU at high rates (0: run at once).
    max_age_ms:
        A rule crossed by a finding older than this (event time against ``clock``) is not
        signalled: the visitor has left (default 30 min, the snippet's session timeout).
        None signals whatever the age (replays, tests).
    baselines:
        The per-URL statistics (``cemreplay.detectors.Baselines``) handed to ``detect`` for
        ``excessive_scroll`` and ``quick_back``; None: computed over the whole store by
        :meth:`refresh_baselines` (see ``docs/live.md``: what "identical to a batch run"
        means).
    baseline_refresh_s:
        Seconds between two refreshes of the store-wide baselines (on their own thread; the
        first at :meth:`start`); None never refreshes (a given ``baselines`` stays).
    """

    store: SQLiteStore
    rules: Sequence[Rule] = DEFAULT_RULES
    sinks: Sequence[Callable[[Signal], None]] = ()
    max_pending: int = 50_000
    max_sessions_per_run: int = 1_000
    batch_window_s: float = 0.0
    max_age_ms: int | None = 30 * 60_000
    clock: Callable[[], float] = time.time
    baselines: Any = None
    baseline_refresh_s: float | None = 3600.0
    analyzed: int = 0
    runs: int = 0
    signals: int = 0
    dropped: int = 0
    errors: int = 0
    _pending: collections.OrderedDict[str, float] = field(
        default_factory=collections.OrderedDict, repr=False
    )
    _fired: collections.OrderedDict[tuple[str, str], None] = field(
        default_factory=collections.OrderedDict, repr=False
    )
    _cv: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _stop: bool = field(default=False, repr=False)
    _busy: bool = field(default=False, repr=False)
    _refresher: threading.Thread | None = field(default=None, repr=False)
    _wake: threading.Event = field(default_factory=threading.Event, repr=False)
    _since: float = field(default=0.0, repr=False)  # monotonic s the oldest pending came

    def __post_init__(self) -> None:
        for name in ("max_pending", "max_sessions_per_run"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"LiveAnalyzer.{name} must be an int >= 1, got {v!r}")
        self.rules = tuple(self.rules)
        if not self.rules:
            raise ConfigError("LiveAnalyzer needs at least one rule")
        if not isinstance(self.batch_window_s, int | float) or not 0 <= self.batch_window_s <= 60:
            raise ConfigError(
                f"LiveAnalyzer.batch_window_s must be 0 .. 60 s, got {self.batch_window_s!r}"
            )

    # -- the collector's side: never blocks on analysis

    def notify(self, session_ids: Iterable[str], acked: float | None = None) -> None:
        """Sessions changed by a durable commit acknowledged at ``acked`` (wall s)."""
        at = self.clock() if acked is None else acked
        self.notify_acked((sid, at) for sid in session_ids)

    def notify_acked(self, pairs: Iterable[tuple[str, float]]) -> None:
        """Sessions changed by durable commits, each with the wall time (s) it was
        acknowledged at (a session already pending keeps its earlier time)."""
        with self._cv:
            if not self._pending:
                self._since = time.monotonic()
            self.dropped += add_pending(self._pending, pairs, self.max_pending)
            self._cv.notify()

    def mark_fired(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Treat these ``(session_id, rule)`` pairs as already signalled, so they are never
        signalled again (a restarted live worker is handed its predecessor's pairs)."""
        with self._cv:
            add_fired(self._fired, ((str(s), str(r)) for s, r in pairs), 4 * self.max_pending)

    @property
    def pending(self) -> int:
        """Sessions waiting for analysis."""
        return len(self._pending)

    def start(self) -> LiveAnalyzer:
        """Start the worker thread (idempotent); returns self."""
        if self._thread is None:
            self._stop = False
            self._wake.clear()
            self._thread = threading.Thread(target=self._run, name="cemreplay-live", daemon=True)
            self._thread.start()
            if self.baseline_refresh_s is not None:
                self._refresher = threading.Thread(
                    target=self._refresh_loop, name="cemreplay-baselines", daemon=True
                )
                self._refresher.start()
        return self

    def refresh_baselines(self) -> Any:
        """Recompute the store-wide per-URL baselines (:meth:`SQLiteStore.baselines`: one
        pass over the store, a chunk of visitors at a time) and use them from the next run on;
        returns them."""
        merged = self.store.baselines()
        self.baselines = merged  # one reference swap: a run in flight keeps its snapshot
        return merged

    def _refresh_loop(self) -> None:
        while not self._stop:
            try:
                self.refresh_baselines()
            except Exception:
                self.errors += 1
                log.exception("refreshing the live baselines failed")
            if self._wake.wait(self.baseline_refresh_s or 3600.0):
                return

    def stop(self, *, drain_s: float = 5.0) -> None:
        """Analyze what is pending for at most ``drain_s`` more seconds, then stop."""
        end = time.monotonic() + drain_s
        while (self._pending or self._busy) and time.monotonic() < end:
            time.sleep(0.01)
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=drain_s + 30)
            self._thread = None
        if self._refresher is not None:
            self._refresher.join(timeout=60)
            self._refresher = None

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """True once nothing is pending or being analyzed (False after ``timeout_s``)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if not self._pending and not self._busy:
                return True
            time.sleep(0.005)
        return False

    def _take(self) -> dict[str, float] | None:
        with self._cv:
            while not self._stop:
                if not self._pending:
                    self._cv.wait(timeout=1.0)
                    continue
                left = self._since + self.batch_window_s - time.monotonic()
                if left <= 0 or len(self._pending) >= self.max_sessions_per_run:
                    break
                self._cv.wait(timeout=left)  # gather more arrivals into this run
            if not self._pending:
                return None
            got: dict[str, float] = {}
            while self._pending and len(got) < self.max_sessions_per_run:
                sid, at = self._pending.popitem(last=False)
                got[sid] = at
            self._since = time.monotonic()  # those left over have waited a run already
            self._busy = True
            return got

    def _run(self) -> None:
        while (got := self._take()) is not None:
            try:
                self.process(got)
            except Exception:  # a bad session must not stop live analysis
                self.errors += 1
                log.exception("live analysis of %d session(s) failed", len(got))
            finally:
                self._busy = False

    # -- the work

    def process(self, sessions: Mapping[str, float] | Iterable[str]) -> list[Signal]:
        """Analyze these sessions now and emit their new signals (what the thread does)."""
        acks = (
            dict(sessions)
            if isinstance(sessions, Mapping)
            else dict.fromkeys(sessions, self.clock())
        )
        base = self.baselines
        if base is None:
            from cemreplay.detectors import Baselines

            base = Baselines()  # none yet: every URL on the detectors' no-baseline bars
        out: list[Signal] = []

        def emit(found: pl.DataFrame) -> None:
            try:
                out.extend(self._signal(found, acks))
            except Exception:  # the findings are still written
                self.errors += 1
                log.exception("live rules failed on %d session(s)", len(acks))

        # signals go out as soon as the findings are known, before they are written
        self.store.analyze_sessions(acks, baselines=base, on_found=emit)
        self.analyzed += len(acks)
        self.runs += 1
        return out

    def _signal(self, found: pl.DataFrame, acks: Mapping[str, float]) -> list[Signal]:
        """The new signals of these findings, handed to the sinks."""
        out: list[Signal] = []
        now_ms = self.clock() * 1000
        for rule, hit in evaluate(self.rules, found):
            last = hit[-1]
            sid = str(last["session_id"])
            key = (sid, rule.name)
            if key in self._fired:
                continue
            if self.max_age_ms is not None and now_ms - last["t"] > self.max_age_ms:
                continue
            add_fired(self._fired, [key], 4 * self.max_pending)
            sig = Signal(
                session_id=sid,
                visitor_id=last.get("visitor_id"),
                rule=rule.name,
                reason=_reason(rule, hit),
                page_url=last.get("page_url"),
                t=int(last["t"]),
                findings=tuple(_summary(r) for r in hit),
                acked=acks.get(sid, now_ms / 1000),
                emitted=self.clock(),
            )
            out.append(sig)
        for sig in out:
            self.signals += 1
            self.errors += deliver(sig, self.sinks)
        return out

    def stats(self) -> dict[str, int]:
        """Counters for ``/healthz``."""
        return {
            "pending": self.pending,
            "analyzed": self.analyzed,
            "runs": self.runs,
            "signals": self.signals,
            "dropped": self.dropped,
            "errors": self.errors,
        }


class WebhookSink:
    """Signals to a :class:`cemreplay.webhook.WebhookSender` (queued, signed, retried)."""

    def __init__(self, sender: Any):
        self.sender = sender

    def __call__(self, signal: Signal) -> None:
        self.sender.send(signal.to_json())


@dataclass(frozen=True)
class LiveConfig:
    """What ``cemreplay serve --live`` turns on (see :func:`cemreplay.collector.create_app`).

    ``rules``: the live rules (or their ``--live-rules`` text); ``webhook``: URL to POST
    signals to, signed with ``webhook_secret`` (``webhook_timeout_s`` per attempt);
    ``answer``: serve ``GET /v1/live/<id>`` to the snippet; ``log``: log each signal;
    ``max_age_ms``, ``max_pending``, ``baseline_refresh_s``, ``batch_window_s``: see
    :class:`LiveAnalyzer`;
    ``process``: run the analyzer, the baseline refresh and the webhook sender in a worker
    process (:class:`cemreplay.live_process.LiveProcess`, the default) rather than on threads
    of the collector's process (False), where they compete with ingest for the GIL;
    ``restart``: restart a worker process that exits unexpectedly, after 0.5 s doubling up to
    ``restart_max_s`` (back to 0.5 s once a worker has run that long), the new worker first
    analyzing at most ``catch_up`` sessions still marked dirty in the store (the latest first).
    """

    rules: Sequence[Rule] | str = DEFAULT_RULES
    webhook: str | None = None
    webhook_secret: str | None = None
    webhook_timeout_s: float = 2.0
    answer: bool = True
    log: bool = True
    max_age_ms: int | None = 30 * 60_000
    max_pending: int = 50_000
    baseline_refresh_s: float | None = 3600.0
    batch_window_s: float = 0.25
    process: bool = os.name != "nt"  # the worker is handed its pipes by descriptor
    restart: bool = True
    restart_max_s: float = 30.0
    catch_up: int = 10_000

    def build(self, store: SQLiteStore) -> tuple[Any, AnswerChannel | None, Any]:
        """The analyzer with its sinks (a :class:`LiveAnalyzer`, or with ``process`` a
        :class:`cemreplay.live_process.LiveProcess`), the answer channel and the webhook
        sender of this process (None without a webhook, or with ``process``: the worker
        has it)."""
        from cemreplay.webhook import WebhookSender

        rules = parse_rules(self.rules) if isinstance(self.rules, str) else tuple(self.rules)
        sinks: list[Callable[[Signal], None]] = []
        answer = AnswerChannel() if self.answer else None
        if answer is not None:
            sinks.append(answer)
        if self.process:
            from cemreplay.live_process import LiveProcess, WorkerSpec

            if self.webhook is not None:  # refused here, not in the worker
                WebhookSender(self.webhook, self.webhook_secret, timeout_s=self.webhook_timeout_s)
            # the worker builds the rest of this config on threads of its own (no answer
            # channel there: it sends the signals back for this process's)
            spec = WorkerSpec(
                str(store.path), dataclasses.replace(self, rules=rules, process=False, answer=False)
            )
            return LiveProcess(spec, sinks, max_pending=self.max_pending), answer, None
        sender = None
        if self.webhook is not None:
            sender = WebhookSender(
                self.webhook, self.webhook_secret, timeout_s=self.webhook_timeout_s
            )
            sinks.append(WebhookSink(sender))
        if self.log:
            sinks.append(LogSink())
        live = LiveAnalyzer(
            store,
            rules,
            sinks,
            max_pending=self.max_pending,
            max_age_ms=self.max_age_ms,
            baseline_refresh_s=self.baseline_refresh_s,
            batch_window_s=self.batch_window_s,
        )
        return live, answer, sender
