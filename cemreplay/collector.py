"""The collector: an ASGI app that receives batches, validates, scrubs and stores them.

``create_app(db)`` returns a Starlette app; ``serve(db)`` runs it under uvicorn (one command:
``cemreplay serve --db PATH``). Routes:

* ``POST /v1/batch``: one wire batch per body (``Content-Encoding: gzip`` allowed).
  ``204`` once the batch is durably stored (or was already), ``400`` with a JSON reason for a
  bad batch (kept in quarantine), ``409`` when another batch with the same session and seq
  was stored (this one is quarantined as a conflict), ``403`` for a foreign origin or site
  key, ``413`` for a body or a decompressed batch over the limits, ``415`` for another
  content type or encoding, ``429`` when the write queue is full, ``503`` while the store
  cannot be written. ``OPTIONS`` answers CORS preflights.
* ``GET /v1/dictionary?site=KEY``: the site's latest string dictionary (wire version 3) as
  JSON, ``204`` when it has none; answered from memory. The collector re-learns each site's
  dictionary every ``dictionary_interval_s`` on a thread of its own.
* ``GET /v1/snippet.js``: the built capture snippet.
* ``GET /healthz``: liveness and the write queue's length.
* For support reps, behind the token: ``GET /`` (search by session or visitor id),
  ``GET /sessions/<id>`` (the HTML replay), ``GET /api/sessions/<id>`` (JSON).

Group commit: request handlers only read and check the body, then queue it. One writer
thread takes everything queued (up to ``max_group``), validates it with one decoder call,
writes it in one transaction (``synchronous=FULL``), and only then answers all of those
requests. See ``docs/collector.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import importlib
import json
import logging
import os
import queue
import secrets
import threading
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from cemreplay import ingest
from cemreplay.errors import CemReplayError, ConfigError
from cemreplay.live import LiveConfig
from cemreplay.schema import MAX_ID_BYTES
from cemreplay.store import Outcome, SQLiteStore, UnknownSessionError

__all__ = [
    "DEFAULT_DICTIONARY_INTERVAL_S",
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_DECOMPRESSED",
    "DEFAULT_MAX_QUEUE",
    "create_app",
    "serve",
    "snippet_path",
]

#: Largest request body (compressed or not) in bytes: a batch of 65,535 events is far under.
DEFAULT_MAX_BODY: Final = 1 << 20
#: Largest batch after gzip is undone: the wire format's own limit (schema.MAX_BATCH_BYTES).
DEFAULT_MAX_DECOMPRESSED: Final = 4 << 20
#: Batches waiting for the writer before new ones get 429.
DEFAULT_MAX_QUEUE: Final = 20_000
#: How long the writer lets batches gather before a commit (PostgreSQL's commit_delay idea).
DEFAULT_COMMIT_DELAY_MS: Final = float(os.environ.get("CEMREPLAY_COMMIT_DELAY_MS", "2"))
#: Most batches the writer commits in one transaction.
DEFAULT_MAX_GROUP: Final = 2_000

_CONTENT_TYPES: Final = frozenset(
    {"", "application/msgpack", "application/x-msgpack", "application/octet-stream", "text/plain"}
)
_COOKIE: Final = "cemreplay_token"
_NO_STORE: Final = {"Cache-Control": "no-store"}
#: How often the collector re-learns each site's dictionary by default (s; 0 turns it off).
DEFAULT_DICTIONARY_INTERVAL_S: Final = 3600.0
#: How long ``GET /v1/dictionary`` answers from memory before asking the store again (s): a
#: dictionary learned by another process (``cemreplay dictionary --learn``) is served after
#: at most this long; one learned by this collector at once.
DICTIONARY_RECHECK_S: Final = 60.0
#: Caching of the dictionary answers: a dictionary is immutable, but the latest one changes.
_DICT_CACHE: Final = {"Cache-Control": "public, max-age=3600"}
_NO_DICT_CACHE: Final = {"Cache-Control": "public, max-age=300"}
#: Most site keys the dictionary answers are remembered for (any site may be asked for).
_MAX_DICT_SITES: Final = 4_096


def snippet_path(name: str = "cemreplay.min.js") -> Path | None:
    """Where the built snippet (or its help add-on, ``cemreplay-help.min.js``) is: packaged
    (``cemreplay/_static``) or in a source checkout."""
    here = Path(__file__).resolve().parent
    for p in (
        here / "_static" / name,
        here.parent / "js-snippet" / "dist" / name,
    ):
        if p.is_file():
            return p
    return None


# ----------------------------------------------------------------------------------------------
# The writer: group commit


@dataclass
class _Job:
    data: bytes
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Outcome]


def _settle(
    jobs: list[_Job],
    outcomes: Sequence[Outcome] | None,
    exc: BaseException | None,
) -> None:
    for k, job in enumerate(jobs):
        if job.future.done():
            continue  # the client went away
        if outcomes is not None:
            job.future.set_result(outcomes[k])
        else:
            job.future.set_exception(exc or RuntimeError("writer stopped"))


@dataclass
class _Writer:
    store: SQLiteStore
    max_queue: int
    max_group: int
    q: queue.Queue[_Job | None] = field(init=False)
    linger_s: float = 0.0
    thread: threading.Thread | None = None
    stored: int = 0
    commits: int = 0
    failing: str | None = None
    #: Called after each durable commit with the ids of the sessions it stored batches of and
    #: the wall time (s); must not block (the live analyzer only notes the ids).
    on_commit: Callable[[list[str], float], None] | None = None

    def __post_init__(self) -> None:
        self.q = queue.Queue(maxsize=self.max_queue)

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="cemreplay-writer", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.thread is not None:
            self.q.put(None)  # after every job already queued
            self.thread.join(timeout=30)
            self.thread = None

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self.q.get()
            if first is None:
                return
            jobs = [first]
            if self.linger_s > 0 and self.q.qsize() < self.max_group:
                # Let the answers of the last commit bring their next batches (commit delay):
                # bigger groups share the per-transaction cost.
                time.sleep(self.linger_s)
            while len(jobs) < self.max_group:
                try:
                    job = self.q.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                jobs.append(job)
            self._commit(jobs)

    def _commit(self, jobs: list[_Job]) -> None:
        try:
            outcomes = self.store.put_batches([j.data for j in jobs])
        except Exception as exc:  # disk full, I/O error: answer 503, keep serving
            self.failing = str(exc)
            by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
            for j in jobs:
                by_loop.setdefault(j.loop, []).append(j)
            for loop, js in by_loop.items():
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_settle, js, None, exc)
            return
        self.failing = None
        self.commits += 1
        self.stored += sum(o.status == "stored" for o in outcomes)
        groups: dict[asyncio.AbstractEventLoop, tuple[list[_Job], list[Outcome]]] = {}
        for j, o in zip(jobs, outcomes, strict=True):
            js, os_ = groups.setdefault(j.loop, ([], []))
            js.append(j)
            os_.append(o)
        for loop, (js, os_) in groups.items():
            with contextlib.suppress(RuntimeError):  # loop closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, js, os_, None)
        if self.on_commit is not None:
            sids = [o.session_id for o in outcomes if o.status == "stored" and o.session_id]
            if sids:
                try:
                    self.on_commit(sids, time.time())
                except Exception:  # live analysis must never stop ingest
                    logging.getLogger("cemreplay.collector").exception("on_commit failed")


# ----------------------------------------------------------------------------------------------
# Dictionaries: the answers of GET /v1/dictionary and the periodic re-learn


class _Board:
    """What ``GET /v1/dictionary`` answers per site: the latest dictionary's JSON (None: the
    site has none), kept in memory; asked of the store again after
    :data:`DICTIONARY_RECHECK_S`, or at once after a dictionary was put through this store
    object."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        # site -> (body, asked again after (monotonic s), store's dictionary generation)
        self._answers: dict[str, tuple[bytes | None, float, int]] = {}

    def fresh(self, site: str) -> bytes | bool | None:
        """The answer when it is in memory and fresh, else False (then call :meth:`get`)."""
        with self._lock:
            got = self._answers.get(site)
        if (
            got is None
            or got[1] <= time.monotonic()
            or got[2] != self.store.dictionary_generation
        ):
            return False
        return got[0]

    def get(self, site: str) -> bytes | None:
        """The site's answer, asked of the store (reads SQLite: call it off the event loop)."""
        gen = self.store.dictionary_generation
        d = self.store.latest_dictionary(site)
        body = None if d is None else d.to_json()
        with self._lock:
            if len(self._answers) >= _MAX_DICT_SITES and site not in self._answers:
                self._answers.clear()
            self._answers[site] = (body, time.monotonic() + DICTIONARY_RECHECK_S, gen)
        return body


class _StopLearningError(Exception):
    pass


@dataclass
class _Learner:
    """Re-learns the dictionaries of the store's sites (or of the one site key) every
    ``interval_s`` on a thread of its own, one site at a time; stops between decode steps."""

    store: SQLiteStore
    interval_s: float
    site_key: str | None
    stopping: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    runs: int = 0
    learned: int = 0
    error: str | None = None

    def start(self) -> None:
        if self.interval_s > 0:
            self.thread = threading.Thread(
                target=self._run, name="cemreplay-dictionary", daemon=True
            )
            self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=30)
            self.thread = None

    def _run(self) -> None:
        while not self.stopping.wait(self.interval_s):
            try:
                self.learn_all()
            except Exception as exc:  # the store cannot be read now: try at the next pass
                self.error = str(exc)
                logging.getLogger("cemreplay.collector").exception("learning dictionaries failed")

    def _check(self, done: int, total: int) -> None:
        if self.stopping.is_set():
            raise _StopLearningError

    def learn_all(self) -> None:
        """One pass: learn every site's dictionary (the store keeps those that changed)."""
        sites = [self.site_key] if self.site_key is not None else self.store.dictionary_sites()
        for site in sites:
            if self.stopping.is_set():
                return
            try:
                before = self.store.latest_dictionary(site)
                d = self.store.learn_dictionary(site, progress=self._check)
            except _StopLearningError:
                return
            except Exception as exc:  # the next pass tries again; ingest goes on
                self.error = f"{site}: {exc}"
                logging.getLogger("cemreplay.collector").exception(
                    "learning the dictionary of site %r failed", site
                )
                continue
            self.error = None
            if d is not None and d != before:
                self.learned += 1  # put through the store: the board asks again
        self.runs += 1


# ----------------------------------------------------------------------------------------------
# Helpers


def _error(
    status: int, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def _err(
    status: int, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> tuple[int, dict[str, str], bytes]:
    return status, dict(headers or {}), json.dumps({"error": message, **extra}).encode()


class _TooLargeError(Exception):
    pass


class _BadBodyError(Exception):
    pass


async def _read_body(
    chunks: AsyncIterator[bytes], max_body: int, max_out: int, gzip: bool
) -> bytes:
    """The body, gunzipped when ``gzip``, never holding more than the limits allow."""
    parts: list[bytes] = []
    size = out = 0
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
    async for chunk in chunks:
        size += len(chunk)
        if size > max_body:
            raise _TooLargeError(f"request body is over {max_body} bytes")
        if inflater is None:
            parts.append(chunk)
            continue
        data = chunk
        while data:
            try:
                piece = inflater.decompress(data, max_out - out + 1)
            except zlib.error as exc:
                raise _BadBodyError(f"body is not valid gzip: {exc}") from None
            out += len(piece)
            if out > max_out:
                raise _TooLargeError(f"batch is over {max_out} bytes once decompressed")
            parts.append(piece)
            data = inflater.unconsumed_tail
            if inflater.eof:
                if data or inflater.unused_data:
                    raise _BadBodyError("bytes follow the end of the gzip stream")
                break
    if inflater is not None:
        if not inflater.eof:
            raise _BadBodyError("gzip stream is cut short")
    elif size > max_out:
        raise _TooLargeError(f"batch is over {max_out} bytes")
    return b"".join(parts)


def _peek_site_key(data: bytes) -> str | None:
    """Element 1 of the batch when it can be read cheaply, else None (the decoder will say)."""
    got = ingest.peek(data, 1)
    return got[1][0] if got is not None and isinstance(got[1][0], str) else None


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title>"
        "<style>body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;"
        "padding:0 1rem}input{font:inherit;padding:.4rem;width:24rem}table{border-collapse:"
        "collapse}td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left}"
        "</style>"
        f"<h1>{escape(title)}</h1>{body}</html>"
    )


def _score(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}"


def _ms_iso(ms: int | None) -> str:
    if ms is None:
        return ""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


# ----------------------------------------------------------------------------------------------
# The app


def create_app(
    db_path: str | os.PathLike[str],
    *,
    site_key: str | None = None,
    allow_origins: Sequence[str] = (),
    token: str | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    max_decompressed: int = DEFAULT_MAX_DECOMPRESSED,
    max_queue: int = DEFAULT_MAX_QUEUE,
    max_group: int = DEFAULT_MAX_GROUP,
    commit_delay_ms: float = DEFAULT_COMMIT_DELAY_MS,
    live: LiveConfig | None = None,
    dictionary_interval_s: float = DEFAULT_DICTIONARY_INTERVAL_S,
) -> Starlette:
    """The collector as a Starlette app over the store at ``db_path`` (created if absent).

    Parameters
    ----------
    site_key:
        Accept only batches whose site key (element 1) is this; None accepts any.
    allow_origins:
        Browser origins (``https://shop.example``) allowed to send batches; empty or ``"*"``
        allows any. A request with another ``Origin`` gets 403.
    token:
        The secret support reps' lookup pages need (``Authorization: Bearer``, ``?token=``
        once, then a cookie). None turns the lookup pages off (403); ingest never needs it.
    max_body, max_decompressed:
        Byte limits of the request body and of the batch after gzip (413 beyond).
    max_queue, max_group:
        Batches waiting for the writer before 429; most batches per transaction.
    commit_delay_ms:
        How long the writer waits for more batches before it validates and commits a
        group (bigger groups share the per-transaction cost; adds at most this latency).
    live:
        Turns live analysis on (:mod:`cemreplay.live`): after each durable commit the
        changed sessions are analyzed off the request path, live rules are checked and
        signals go to the webhook, the log and ``GET /v1/live/<session_id>``.
    dictionary_interval_s:
        Re-learn each site's string dictionary (:meth:`SQLiteStore.learn_dictionary`) this
        often, in seconds, on a thread of its own (the first pass one interval after start);
        0 turns it off (dictionaries are then learned by ``cemreplay dictionary --learn``).
    """
    for name, v in (
        ("max_body", max_body),
        ("max_decompressed", max_decompressed),
        ("max_queue", max_queue),
        ("max_group", max_group),
    ):
        if not isinstance(v, int) or v < 1:
            raise ConfigError(f"{name} must be an int >= 1, got {v!r}")
    if (
        isinstance(dictionary_interval_s, bool)
        or not isinstance(dictionary_interval_s, int | float)
        or not 0 <= dictionary_interval_s < float("inf")
    ):
        raise ConfigError(
            f"dictionary_interval_s must be a number of seconds >= 0 (0: off), got "
            f"{dictionary_interval_s!r}"
        )
    store = SQLiteStore(db_path)
    board = _Board(store)
    learner = _Learner(store, float(dictionary_interval_s), site_key)
    writer = _Writer(store, max_queue, max_group, commit_delay_ms / 1000)
    analyzer, answer, sender = live.build(store) if live is not None else (None, None, None)
    if analyzer is not None:
        writer.on_commit = analyzer.notify
    origins = {o.rstrip("/").lower() for o in allow_origins}
    any_origin = not origins or "*" in origins

    def origin_ok(origin: str | None) -> bool:
        return origin is None or any_origin or origin.rstrip("/").lower() in origins

    def cors(origin: str | None) -> dict[str, str]:
        if origin is None:
            return {}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    # -- ingest

    async def preflight(request: Request) -> Response:
        origin = request.headers.get("origin")
        if not origin_ok(origin):
            return _error(
                403,
                f"origin {origin} is not allowed; hint: start the collector "
                "with --allow-origin for it",
            )
        return Response(
            status_code=204,
            headers={
                **cors(origin),
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type, Content-Encoding",
                "Access-Control-Max-Age": "86400",
            },
        )

    async def ingest(
        h: Mapping[str, str], chunks: AsyncIterator[bytes]
    ) -> tuple[int, dict[str, str], bytes]:
        """The whole of ``POST /v1/batch``: status, headers and body of the answer."""
        origin = h.get("origin")
        if not origin_ok(origin):
            return _err(
                403,
                f"origin {origin} is not allowed; hint: start the collector "
                "with --allow-origin for it",
            )
        ch = cors(origin)
        ctype = h.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in _CONTENT_TYPES:
            return _err(
                415,
                f"content type {ctype!r} is not accepted; hint: send "
                "application/msgpack (or text/plain from sendBeacon)",
                ch,
            )
        enc = h.get("content-encoding", "").strip().lower()
        if enc not in ("", "identity", "gzip"):
            return _err(415, f"content encoding {enc!r} is not accepted; hint: gzip or none", ch)
        declared = h.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body:
            return _err(413, f"request body is over {max_body} bytes", ch)
        try:
            data = await _read_body(chunks, max_body, max_decompressed, enc == "gzip")
        except _TooLargeError as exc:
            return _err(413, str(exc), ch)
        except _BadBodyError as exc:
            return _err(400, str(exc), ch)
        if not data:
            return _err(400, "empty body; hint: send one wire batch per request", ch)
        if site_key is not None:
            got = _peek_site_key(data)
            if got is not None and got != site_key:
                return _err(403, f"site key {got!r} is not this collector's", ch)
        loop = asyncio.get_running_loop()
        job = _Job(data, loop, loop.create_future())
        try:
            writer.q.put_nowait(job)
        except queue.Full:
            return _err(429, "write queue is full; retry shortly", {**ch, "Retry-After": "1"})
        try:
            outcome = await job.future
        except Exception as exc:
            return _err(503, f"store cannot be written: {exc}", {**ch, "Retry-After": "5"})
        if outcome.ok:
            return 204, ch, b""
        status = 409 if outcome.code == 19 else 400
        return _err(status, outcome.reason or "bad batch", ch, code=outcome.code, quarantined=True)

    async def post_batch(request: Request) -> Response:
        status, headers, body = await ingest(request.headers, request.stream())
        return Response(
            body,
            status_code=status,
            headers=headers,
            media_type="application/json" if body else None,
        )

    async def fast_ingest(scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /v1/batch`` straight on ASGI, without Starlette's request machinery: the
        hot path, taken for every batch."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                msg = await receive()
                if msg["type"] != "http.request":
                    return
                body = msg.get("body", b"")
                if body:
                    yield body
                if not msg.get("more_body", False):
                    return

        status, hdrs, body = await ingest(headers, chunks())
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in hdrs.items()]
        if body:
            raw.append((b"content-type", b"application/json"))
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    async def snippet(request: Request) -> Response:
        p = snippet_path(
            "cemreplay-help.min.js" if request.url.path == "/v1/help.js" else "cemreplay.min.js"
        )
        if p is None:
            return PlainTextResponse(
                "// cemreplay snippet is not built; hint: cd js-snippet && npm ci && "
                "npm run build\n",
                status_code=404,
                media_type="application/javascript",
            )
        return Response(
            p.read_bytes(),
            media_type="application/javascript",
            headers={"Cache-Control": "public, max-age=300"},
        )

    async def dictionary(request: Request) -> Response:
        """``GET /v1/dictionary?site=KEY``: the site's latest dictionary, 204 when none."""
        origin = request.headers.get("origin")
        if not origin_ok(origin):
            return _error(403, f"origin {origin} is not allowed")
        ch = cors(origin)
        site = request.query_params.get("site")
        if site is None:
            return _error(
                400, "the site parameter is missing; hint: GET /v1/dictionary?site=SITE_KEY", ch
            )
        if len(site.encode("utf-8")) > MAX_ID_BYTES:
            return _error(400, f"site key is over {MAX_ID_BYTES} bytes", ch)
        if site_key is not None and site != site_key:
            return _error(403, f"site key {site!r} is not this collector's", ch)
        body = board.fresh(site)
        if body is False:
            body = await run_in_threadpool(board.get, site)
        if body is None:
            return Response(status_code=204, headers={**ch, **_NO_DICT_CACHE})
        assert isinstance(body, bytes)
        return Response(body, media_type="application/json", headers={**ch, **_DICT_CACHE})

    async def live_poll(request: Request) -> Response:
        """``GET /v1/live/<session_id>?k=SITE_KEY&after=N``: the session's live signals."""
        origin = request.headers.get("origin")
        if not origin_ok(origin):
            return _error(403, f"origin {origin} is not allowed")
        ch = {**cors(origin), **_NO_STORE}
        if answer is None:
            return _error(404, "live signals are off; hint: cemreplay serve --live", ch)
        given = request.query_params.get("k")
        if site_key is not None and given != site_key:
            return _error(403, f"site key {given!r} is not this collector's", ch)
        after = request.query_params.get("after", "0")
        if not after.isdigit():
            return _error(400, f"after must be a signal number, got {after!r}", ch)
        sid = request.path_params["session_id"]
        return JSONResponse(
            {"session_id": sid, "signals": answer.poll(sid, int(after))}, headers=ch
        )

    async def healthz(request: Request) -> Response:
        ok = writer.thread is not None and writer.thread.is_alive() and writer.failing is None
        extra: dict[str, Any] = {}
        if analyzer is not None:
            extra["live"] = analyzer.stats()
        if sender is not None:
            extra["webhook"] = sender.stats()
        elif (wh := getattr(analyzer, "webhook_stats", None)) is not None and (
            got := wh()
        ) is not None:
            extra["webhook"] = got  # the live worker process's sender
        if learner.thread is not None:
            extra["dictionary"] = {
                "interval_s": learner.interval_s,
                "runs": learner.runs,
                "learned": learner.learned,
                "error": learner.error,
            }
        return JSONResponse(
            {
                "ok": ok,
                "queued": writer.q.qsize(),
                "stored": writer.stored,
                "commits": writer.commits,
                "error": writer.failing,
                **extra,
            },
            status_code=200 if ok else 503,
            headers=_NO_STORE,
        )

    # -- lookups (token)

    def authorized(request: Request) -> Response | None:
        """None when the request carries the token, else the response to send."""
        wants_html = not request.url.path.startswith("/api/")
        if token is None:
            msg = "session lookup is off; hint: start the collector with --token SECRET"
            return (
                HTMLResponse(_page("Lookup is off", f"<p>{escape(msg)}</p>"), 403)
                if wants_html
                else _error(403, msg)
            )
        given = request.query_params.get("token")
        if given is not None and hmac.compare_digest(given.encode(), token.encode()):
            rest = {k: v for k, v in request.query_params.items() if k != "token"}
            url = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            r = RedirectResponse(url, status_code=303)
            r.set_cookie(
                _COOKIE,
                token,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
                path="/",
            )
            return r
        auth = request.headers.get("authorization", "")
        cand = (
            auth[7:].strip()
            if auth.lower().startswith("bearer ")
            else request.cookies.get(_COOKIE, "")
        )
        if cand and hmac.compare_digest(cand.encode(), token.encode()):
            return None
        msg = "this page needs the lookup token; hint: open it once with ?token=SECRET"
        hdr = {"WWW-Authenticate": "Bearer", **_NO_STORE}
        return (
            HTMLResponse(_page("Token needed", f"<p>{escape(msg)}</p>"), 401, hdr)
            if wants_html
            else _error(401, msg, hdr)
        )

    async def search(request: Request) -> Response:
        if (deny := authorized(request)) is not None:
            return deny
        q = request.query_params.get("q", "").strip()
        form = (
            "<form method=get action='/'><input name=q autofocus placeholder='session id "
            f"or visitor id' value='{escape(q, quote=True)}'> <button>Look up</button></form>"
        )
        if not q:
            return HTMLResponse(_page("cemreplay session lookup", form), headers=_NO_STORE)
        found = await run_in_threadpool(store.sessions, session_id=q, limit=1)
        if found.height:
            return RedirectResponse(f"/sessions/{quote(q, safe='')}", status_code=303)
        rows = await run_in_threadpool(store.sessions, visitor=q, limit=200)
        if rows.height == 0:
            body = form + f"<p>No session or visitor <code>{escape(q)}</code>.</p>"
            return HTMLResponse(_page("cemreplay session lookup", body), headers=_NO_STORE)
        trs = "".join(
            f"<tr><td><a href='/sessions/{quote(r['session_id'], safe='')}'>"
            f"{escape(r['session_id'])}</a></td><td>{_ms_iso(r['first_ts'])}</td>"
            f"<td>{r['pages'] if r['pages'] is not None else ''}</td><td>{r['events']}</td>"
            f"<td>{_score(r['score'])}</td></tr>"
            for r in rows.iter_rows(named=True)
        )
        body = (
            form + f"<p>Visitor <code>{escape(q)}</code>: {rows.height} session(s)</p>"
            "<table><tr><th>session</th><th>started (UTC)</th><th>pages</th><th>events</th>"
            f"<th>score</th></tr>{trs}</table>"
        )
        return HTMLResponse(_page("cemreplay session lookup", body), headers=_NO_STORE)

    async def session_page(request: Request) -> Response:
        if (deny := authorized(request)) is not None:
            return deny
        sid = request.path_params["session_id"]
        try:
            render_html = importlib.import_module("cemreplay.replay").render_html
        except ImportError:
            return HTMLResponse(
                _page("Replay unavailable", "<p>cemreplay.replay is not installed.</p>"), 501
            )

        def work() -> str:
            v = store.session_view(sid)
            return str(render_html(v.events, v.findings, session_id=sid))

        try:
            html = await run_in_threadpool(work)
        except UnknownSessionError as exc:
            return HTMLResponse(
                _page("No such session", f"<p>{escape(str(exc))}</p>"), 404, headers=_NO_STORE
            )
        return HTMLResponse(html, headers=_NO_STORE)

    async def session_api(request: Request) -> Response:
        if (deny := authorized(request)) is not None:
            return deny
        sid = request.path_params["session_id"]

        def work() -> dict[str, Any]:
            from cemreplay.timeline import to_json

            v = store.session_view(sid)
            return {
                "session": v.info,
                "timeline": to_json(
                    v.events, v.findings, session_id=sid, score=v.info.get("score")
                ),
            }

        try:
            data = await run_in_threadpool(work)
        except UnknownSessionError as exc:
            return _error(404, str(exc), _NO_STORE)
        except CemReplayError as exc:
            return _error(422, str(exc), _NO_STORE)
        return Response(
            json.dumps(data, default=str), media_type="application/json", headers=_NO_STORE
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if sender is not None:
            sender.start()
        if analyzer is not None:
            analyzer.start()
        writer.start()
        learner.start()
        try:
            yield
        finally:
            await run_in_threadpool(learner.stop)
            await run_in_threadpool(writer.stop)
            if analyzer is not None:
                await run_in_threadpool(analyzer.stop)
            if sender is not None:
                await run_in_threadpool(sender.stop)
            store.close()

    app = _CollectorApp(
        routes=[
            Route("/v1/batch", post_batch, methods=["POST"]),
            Route("/v1/batch", preflight, methods=["OPTIONS"]),
            Route("/v1/dictionary", dictionary, methods=["GET"]),
            Route("/v1/snippet.js", snippet, methods=["GET"]),
            Route("/v1/help.js", snippet, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/v1/live/{session_id:path}", live_poll, methods=["GET"]),
            Route("/", search, methods=["GET"]),
            Route("/sessions/{session_id:path}", session_page, methods=["GET"]),
            Route("/api/sessions/{session_id:path}", session_api, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.writer = writer
    app.state.dictionaries = learner
    app.state.live = analyzer
    app.state.answer = answer
    app.state.webhook = sender
    app.fast_ingest = fast_ingest
    return app


class _CollectorApp(Starlette):
    """Starlette, with ``POST /v1/batch`` answered before the middleware and router."""

    fast_ingest: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.fast_ingest is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == "/v1/batch"
        ):
            await self.fast_ingest(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


#: The worked example of docs/wire-format.md: a valid two-event batch.
_EXAMPLE: Final = bytes.fromhex(
    "9d01a16ba27631a2733100cf0000018bcfe5680000"
    "92a12faa627574746f6e2362757902c4020103c40300f403"
    "c40d8014a00b0200b712cf0a800102c403010002"
)


def _warm_up() -> None:
    """Compile the decoder's kernels now rather than on the first request."""
    from cemreplay import ingest

    ingest.prepare([_EXAMPLE])


def serve(
    db_path: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    site_key: str | None = None,
    allow_origins: Sequence[str] = (),
    token: str | None = None,
    log: Callable[[str], None] | None = None,
    show_token: bool = False,
    live: LiveConfig | None = None,
    dictionary_interval_s: float = DEFAULT_DICTIONARY_INTERVAL_S,
) -> None:
    """Run the collector under uvicorn until interrupted (SIGINT/SIGTERM drain the queue)."""
    import uvicorn

    app = create_app(
        db_path,
        site_key=site_key,
        allow_origins=allow_origins,
        token=token,
        live=live,
        dictionary_interval_s=dictionary_interval_s,
    )
    _warm_up()
    if log is not None:
        shown = host if ":" not in host else f"[{host}]"
        log(f"cemreplay collector on http://{shown}:{port} (store {db_path})")
        if token is not None:
            shown_token = token if show_token else "<your token>"
            log(f"session lookup: http://{shown}:{port}/?token={shown_token}")
        else:
            log("session lookup is off (no --token)")
        if live is not None:
            hook = f", webhook {live.webhook}" if live.webhook else ""
            log(f"live signals on (GET /v1/live/<session_id>{hook})")
            logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


def new_token() -> str:
    """A random lookup token."""
    return secrets.token_urlsafe(24)
