"""Signed webhook delivery: HMAC-SHA256 over timestamp and body, sent off the request path.

The signature scheme is Stripe's (GitHub's ``X-Hub-Signature-256`` signs the body alone; the
timestamp in the signed material is what lets a receiver refuse a replayed request):

* header ``Cemreplay-Signature: t=<unix seconds>,v1=<hex>``, where
  ``hex = HMAC-SHA256(secret, f"{t}.".encode() + body)``; during a secret rotation the
  header carries one ``v1=`` per secret;
* header ``Cemreplay-Webhook-Id``: the same on every retry of one delivery (deduplicate on it).

A receiver checks the signature with :func:`verify` (or ten lines of its own: see
``docs/live.md``) and refuses a timestamp more than ``tolerance_s`` (300 s) from its clock.

:class:`WebhookSender` posts JSON bodies from background threads: a bounded queue (the
oldest waiting delivery is dropped, and counted, when it is full), a timeout per attempt,
retries with exponential backoff and jitter, a deadline per delivery. ``send`` never blocks
and never raises for a receiver that is down, slow or refusing.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import http.client
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from cemreplay.errors import CemReplayError, ConfigError

__all__ = [
    "ID_HEADER",
    "SIGNATURE_HEADER",
    "TOLERANCE_S",
    "SignatureError",
    "WebhookSender",
    "sign",
    "verify",
]

log = logging.getLogger("cemreplay.webhook")

#: The header that carries the timestamp and signature(s).
SIGNATURE_HEADER: Final = "Cemreplay-Signature"
#: The header that carries the delivery id (the same on every retry).
ID_HEADER: Final = "Cemreplay-Webhook-Id"
#: Largest difference between the signed timestamp and the receiver's clock, s (Stripe's).
TOLERANCE_S: Final = 300


class SignatureError(CemReplayError, ValueError):
    """A webhook body's signature is missing, malformed, stale or does not match."""


def _digest(secret: str | bytes, timestamp: int, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def sign(
    body: bytes, secret: str | bytes | Sequence[str | bytes], *, timestamp: int | None = None
) -> str:
    """The ``Cemreplay-Signature`` header value of ``body``.

    Parameters
    ----------
    body:
        The exact bytes sent.
    secret:
        The shared secret, or several (one ``v1=`` each, for a rotation).
    timestamp:
        Unix seconds (default: now).

    >>> sign(b'{"a":1}', "s3cret", timestamp=1700000000)[:15]
    't=1700000000,v1'
    """
    t = int(time.time()) if timestamp is None else int(timestamp)
    secrets = [secret] if isinstance(secret, str | bytes) else list(secret)
    if not secrets or any(not s for s in secrets):
        raise ConfigError("a webhook secret must be a non-empty string")
    return ",".join([f"t={t}", *(f"v1={_digest(s, t, body)}" for s in secrets)])


def verify(
    body: bytes,
    header: str | None,
    secret: str | bytes,
    *,
    tolerance_s: float = TOLERANCE_S,
    now: float | None = None,
) -> int:
    """Check a ``Cemreplay-Signature`` header against ``body``; return its timestamp.

    Raises :class:`SignatureError` when the header is missing or malformed, its timestamp is
    more than ``tolerance_s`` from ``now`` (default: the clock), or no ``v1`` matches.

    >>> body = b'{"a":1}'
    >>> verify(body, sign(body, "k", timestamp=100), "k", now=150)
    100
    """
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    t: int | None = None
    sigs: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            t = int(value)
        elif key == "v1" and value:
            sigs.append(value)
    if t is None or not sigs:
        raise SignatureError(f"{SIGNATURE_HEADER} {header!r} lacks t= or v1=")
    clock = time.time() if now is None else now
    if abs(clock - t) > tolerance_s:
        raise SignatureError(
            f"signature timestamp {t} is {abs(clock - t):.0f} s from now (tolerance "
            f"{tolerance_s:.0f} s); hint: a replayed request, or a clock out of sync"
        )
    want = _digest(secret, t, body)
    if not any(hmac.compare_digest(want, s) for s in sigs):
        raise SignatureError("no signature matches the body; hint: check the shared secret")
    return t


@dataclass
class _Delivery:
    body: bytes
    id: str
    deadline: float
    attempt: int = 0
    not_before: float = 0.0


@dataclass
class WebhookSender:
    """Posts signed JSON bodies to ``url`` from background threads.

    Parameters
    ----------
    url:
        ``http://`` or ``https://`` URL that receives ``POST`` requests.
    secret:
        The shared secret; None sends unsigned bodies (not recommended).
    max_queue:
        Deliveries waiting at most; when full the oldest is dropped (``dropped`` counts them).
    workers:
        Delivery threads, each with its own kept-alive connection (deliveries overlap).
    timeout_s:
        Connect and read timeout of one attempt.
    max_attempts:
        Attempts per delivery (a 2xx answer ends them; a 4xx other than 408/429 too).
    backoff_s:
        First retry delay; doubled each attempt (with up to 50 % jitter), capped at 30 s.
    deadline_s:
        A delivery not done this long after ``send`` is given up.
    """

    url: str
    secret: str | None = None
    max_queue: int = 10_000
    workers: int = 4
    timeout_s: float = 2.0
    max_attempts: int = 5
    backoff_s: float = 0.25
    deadline_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    retries: int = 0
    _q: collections.deque[_Delivery] = field(default_factory=collections.deque, repr=False)
    _cv: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, repr=False)
    _stop: bool = field(default=False, repr=False)
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"webhook URL {self.url!r} is not an http(s) URL; hint: "
                "--webhook http://127.0.0.1:9000/hook"
            )
        for name in ("max_queue", "max_attempts", "workers"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"WebhookSender.{name} must be an int >= 1, got {v!r}")
        for name in ("timeout_s", "backoff_s", "deadline_s"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or v <= 0:
                raise ConfigError(f"WebhookSender.{name} must be > 0, got {v!r}")
        if self.secret is not None and not self.secret:
            raise ConfigError("webhook secret must be non-empty (or None)")

    # -- the producer side: never blocks on the network

    def send(self, payload: Mapping[str, Any] | bytes) -> str:
        """Queue one delivery (a JSON-able mapping, or bytes sent as they are); its id."""
        body = (
            payload
            if isinstance(payload, bytes)
            else json.dumps(payload, separators=(",", ":"), default=str).encode()
        )
        d = _Delivery(body, uuid.uuid4().hex, self.clock() + self.deadline_s)
        with self._cv:
            if len(self._q) >= self.max_queue:
                self._q.popleft()
                self.dropped += 1
            self._q.append(d)
            self._cv.notify()
        return d.id

    @property
    def queued(self) -> int:
        """Deliveries waiting (including those waiting for a retry)."""
        return len(self._q)

    def stats(self) -> dict[str, int]:
        """The counters ``/healthz`` shows: queued, sent, failed, dropped, retries."""
        return {
            "queued": self.queued,
            "sent": self.sent,
            "failed": self.failed,
            "dropped": self.dropped,
            "retries": self.retries,
        }

    def start(self) -> WebhookSender:
        """Start the delivery thread (idempotent); returns self."""
        if not self._threads:
            self._stop = False
            self._threads = [
                threading.Thread(target=self._run, name=f"cemreplay-webhook-{k}", daemon=True)
                for k in range(self.workers)
            ]
            for th in self._threads:
                th.start()
        return self

    def stop(self, *, drain_s: float = 2.0) -> None:
        """Stop the thread after at most ``drain_s`` more seconds of deliveries."""
        end = time.monotonic() + drain_s
        while self._q and time.monotonic() < end:
            time.sleep(0.01)
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        for th in self._threads:
            th.join(timeout=self.timeout_s + 1)
        self._threads = []

    # -- the delivery thread

    def _next(self) -> _Delivery | None:
        with self._cv:
            while not self._stop:
                now = self.clock()
                ready = next((d for d in self._q if d.not_before <= now), None)
                if ready is not None:
                    self._q.remove(ready)
                    return ready
                wait = min((d.not_before for d in self._q), default=now + 1.0) - now
                self._cv.wait(timeout=max(0.001, min(wait, 1.0)))
        return None

    def _run(self) -> None:
        while (d := self._next()) is not None:
            d.attempt += 1
            ok, retry = self._post(d)
            now = self.clock()
            delay = min(30.0, self.backoff_s * 2 ** (d.attempt - 1)) * (1 + random.random() / 2)
            give_up = not retry or d.attempt >= self.max_attempts or now + delay > d.deadline
            with self._cv:  # the counters are shared by the delivery threads
                if ok:
                    self.sent += 1
                elif give_up:
                    self.failed += 1
                elif len(self._q) >= self.max_queue:
                    self.dropped += 1  # the retry would push a newer one out: keep the newer
                else:
                    self.retries += 1
                    d.not_before = now + delay
                    self._q.append(d)
            if not ok and give_up:
                log.warning("webhook %s given up after %d attempt(s)", d.id, d.attempt)

    @property
    def _conn(self) -> http.client.HTTPConnection | None:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        return conn

    @_conn.setter
    def _conn(self, conn: http.client.HTTPConnection | None) -> None:
        self._local.conn = conn

    def _connection(self) -> http.client.HTTPConnection:
        """This delivery thread's keep-alive connection (opened on first use, after errors)."""
        if self._conn is None:
            parts = urlsplit(self.url)
            cls = (
                http.client.HTTPSConnection
                if parts.scheme == "https"
                else http.client.HTTPConnection
            )
            self._conn = cls(parts.hostname or "", parts.port, timeout=self.timeout_s)
        return self._conn

    def _post(self, d: _Delivery) -> tuple[bool, bool]:
        """(delivered, worth a retry)."""
        parts = urlsplit(self.url)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "cemreplay-webhook",
            ID_HEADER: d.id,
        }
        if self.secret is not None:
            headers[SIGNATURE_HEADER] = sign(d.body, self.secret)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for fresh in (self._conn is None, True):  # a kept-alive connection may have closed
            conn = self._connection()
            try:
                conn.request("POST", path, body=d.body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
                if resp.will_close:
                    conn.close()
                    self._conn = None
                break
            except (OSError, http.client.HTTPException) as exc:
                log.debug("webhook %s attempt %d: %s", d.id, d.attempt, exc)
                conn.close()
                self._conn = None
                if fresh or isinstance(exc, TimeoutError):
                    return False, True
        if 200 <= status < 300:
            return True, False
        return False, status in (408, 425, 429) or status >= 500
