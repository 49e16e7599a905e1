"""The collector's HTTP contract: statuses for every kind of bad request, CORS, the site key,
the token on lookup routes, and that the server keeps serving after each."""

from __future__ import annotations

import gzip
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from cemreplay.collector import create_app
from cemreplay.store import SQLiteStore
from tests.batches import batch, envelope, pack

MSGPACK = {"content-type": "application/msgpack"}
SHOP = "https://shop.example"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "c.db"


def client(db: Path, **kw: object) -> TestClient:
    kw.setdefault("token", "s3cret")
    return TestClient(create_app(db, **kw))  # type: ignore[arg-type]


@pytest.fixture
def c(db: Path) -> Iterator[TestClient]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with client(db, allow_origins=[SHOP], max_body=64 * 1024,
                    max_decompressed=256 * 1024) as tc:
            yield tc


def stored(db: Path) -> list[tuple[str, int]]:
    with SQLiteStore(db) as st:
        con = st._con()
        return [tuple(r) for r in con.execute("SELECT session_id, seq FROM batches ORDER BY 1, 2")]


def still_serving(c: TestClient, sid: str) -> None:
    assert c.post("/v1/batch", content=batch(sid), headers=MSGPACK).status_code == 204


def test_a_batch_is_stored_before_204_and_retries_are_204(c, db):
    for _ in range(3):
        r = c.post("/v1/batch", content=batch("s1"), headers=MSGPACK)
        assert r.status_code == 204 and r.content == b""
    assert stored(db) == [("s1", 0)]
    health = c.get("/healthz").json()
    assert health["ok"] and health["stored"] == 1


@pytest.mark.parametrize("ctype", ["application/msgpack", "application/octet-stream",
                                   "text/plain;charset=UTF-8", None])
def test_accepted_content_types(c, db, ctype):
    headers = {} if ctype is None else {"content-type": ctype}
    assert c.post("/v1/batch", content=batch("s1"), headers=headers).status_code == 204


def test_gzip_body(c, db):
    r = c.post("/v1/batch", content=gzip.compress(batch("g1")),
               headers={**MSGPACK, "content-encoding": "gzip"})
    assert r.status_code == 204
    assert stored(db) == [("g1", 0)]


def test_out_of_order_and_duplicate_over_http(c, db):
    for k in (2, 0, 1, 0, 2):
        assert c.post("/v1/batch", content=batch("s1", k), headers=MSGPACK).status_code == 204
    assert stored(db) == [("s1", 0), ("s1", 1), ("s1", 2)]


@pytest.mark.parametrize(
    "body, words",
    [
        (b"\xc1\xc1", "not a msgpack array"),
        (batch("m1")[:-3], "truncated"),
        (batch("m1") + b"junk", "bytes follow"),
        (pack(envelope("m1", 0, [(7, 0, {"target": 9})])), "refers past"),
        (pack([1, "k", "v", "s", -1, 0, 0, [], 0, b"", b"", b"", b""]), "out of range"),
        (pack([1, "k", "v", "s", 0, 0, 0, ["x" * 5000], 0, b"", b"", b"", b""]), "longer"),
        (pack([1, "k", "v", "s", 0, 0, 0, [], 3, b"\x01", b"", b"", b""]), "kinds"),
        (pack({"a": 1}), "not a msgpack array"),
        (b"\x9d" + b"\xc0" * 13, "wrong msgpack type"),
    ],
)
def test_bad_batches_get_400_with_a_reason_and_are_quarantined(c, db, body, words):
    r = c.post("/v1/batch", content=body, headers=MSGPACK)
    assert r.status_code == 400
    data = r.json()
    assert words in data["error"] and data["quarantined"] is True
    with SQLiteStore(db) as st:
        assert st.quarantine().height == 1
    still_serving(c, "after-bad")


def test_conflicting_retry_gets_409(c, db):
    assert c.post("/v1/batch", content=batch("s1"), headers=MSGPACK).status_code == 204
    r = c.post("/v1/batch", content=batch("s1", moves=9), headers=MSGPACK)
    assert r.status_code == 409 and "same session_id and seq" in r.json()["error"]


def test_transport_faults(c, db):
    big = b"\x00" * (64 * 1024 + 1)
    assert c.post("/v1/batch", content=big, headers=MSGPACK).status_code == 413
    bomb = gzip.compress(b"\x00" * (50 << 20))  # 50 MiB of zeros in ~50 KB
    assert len(bomb) < 64 * 1024
    r = c.post("/v1/batch", content=bomb, headers={**MSGPACK, "content-encoding": "gzip"})
    assert r.status_code == 413 and "decompressed" in r.json()["error"]
    r = c.post("/v1/batch", content=b"not gzip at all",
               headers={**MSGPACK, "content-encoding": "gzip"})
    assert r.status_code == 400 and "gzip" in r.json()["error"]
    r = c.post("/v1/batch", content=gzip.compress(batch("x"))[:-6],
               headers={**MSGPACK, "content-encoding": "gzip"})
    assert r.status_code == 400 and "cut short" in r.json()["error"]
    assert c.post("/v1/batch", content=batch("x"),
                  headers={"content-type": "application/json"}).status_code == 415
    assert c.post("/v1/batch", content=batch("x"),
                  headers={**MSGPACK, "content-encoding": "br"}).status_code == 415
    assert c.post("/v1/batch", content=b"", headers=MSGPACK).status_code == 400
    assert c.get("/v1/batch").status_code == 405
    assert stored(db) == []
    still_serving(c, "after-transport")


def test_hostile_batches_do_not_stop_the_server(c, db):
    hostile = [
        pack([1, "k", "v", "s", 0, 0, 2**32 - 1, [], 0, b"", b"", b"", b""]),  # huge str_base
        pack([1, "k", "v", "s", 2**64 - 1, 2**64 - 1, 0, [], 0, b"", b"", b"", b""]),
        b"\xdd\xff\xff\xff\xff",  # array of 4 billion elements, then nothing
        b"\xdb\xff\xff\xff\xff",  # str of 4 GiB announced
        b"\x9d" * 20_000,  # deep nesting
        pack([1, "k", "v", "s", 0, 0, 0, [], 60000, b"\x01" * 60000, b"", b"", b""]),
    ]
    for body in hostile:
        r = c.post("/v1/batch", content=body, headers=MSGPACK)
        assert r.status_code in (204, 400), (body[:20], r.status_code)
    still_serving(c, "after-hostile")


def test_cors(c, db):
    r = c.options("/v1/batch", headers={"origin": SHOP, "access-control-request-method": "POST",
                                         "access-control-request-headers": "content-type"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == SHOP
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "Content-Type" in r.headers["access-control-allow-headers"]
    r = c.post("/v1/batch", content=batch("o1"), headers={**MSGPACK, "origin": SHOP})
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == SHOP
    # sendBeacon: text/plain, no preflight, still checked
    evil = "https://evil.example"
    r = c.post("/v1/batch", content=batch("o2"), headers={"content-type": "text/plain",
                                                          "origin": evil})
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    assert c.options("/v1/batch", headers={"origin": evil}).status_code == 403
    assert stored(db) == [("o1", 0)]


def test_any_origin_when_no_allow_list(db):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with client(db) as tc:
            r = tc.post("/v1/batch", content=batch("o"), headers={"origin": "https://a.example"})
            assert r.status_code == 204
            assert r.headers["access-control-allow-origin"] == "https://a.example"


def test_site_key(db):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with client(db, site_key="mine") as tc:
            assert tc.post("/v1/batch", content=batch("a", site_key="mine")).status_code == 204
            r = tc.post("/v1/batch", content=batch("b", site_key="theirs"))
            assert r.status_code == 403 and "site key" in r.json()["error"]
    assert stored(db) == [("a", 0)]


def test_queue_full_is_429(db):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = create_app(db, max_queue=1)
        with TestClient(app) as tc:
            writer = app.state.writer
            writer.q.put_nowait(None)  # the writer will stop at this marker...
            writer.thread.join(timeout=30)
            writer.q.put_nowait(object())  # ...and the one slot stays taken
            r = tc.post("/v1/batch", content=batch("q"))
            assert r.status_code == 429 and r.headers["retry-after"] == "1"
            writer.q.get_nowait()
            writer.start()


def test_snippet_and_health(c):
    r = c.get("/v1/snippet.js")
    assert r.status_code in (200, 404)
    assert r.headers["content-type"].startswith("application/javascript")
    if r.status_code == 404:
        assert "not built" in r.text
    assert c.get("/healthz").json()["ok"] is True


# -- lookup ------------------------------------------------------------------------------------


def test_lookup_routes_need_the_token(c, db):
    assert c.post("/v1/batch", content=batch("s1", message="oops")).status_code == 204
    for path in ("/", "/sessions/s1", "/api/sessions/s1"):
        r = c.get(path)
        assert r.status_code == 401, path
        assert c.get(path, headers={"authorization": "Bearer wrong"}).status_code == 401
    r = c.get("/api/sessions/s1", headers={"authorization": "Bearer s3cret"})
    assert r.status_code == 200
    data = r.json()
    assert data["session"]["session_id"] == "s1"
    assert data["timeline"]["session_id"] == "s1"
    assert c.get("/api/sessions/nope", headers={"authorization": "Bearer s3cret"}
                 ).status_code == 404


def test_token_in_the_query_becomes_a_cookie(c, db):
    assert c.post("/v1/batch", content=batch("s1", visitor_id="vis")).status_code == 204
    r = c.get("/?token=s3cret&q=vis", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/?q=vis"
    assert "httponly" in r.headers["set-cookie"].lower()
    r = c.get("/?q=vis")  # the client kept the cookie
    assert r.status_code == 200 and "/sessions/s1" in r.text
    r = c.get("/?q=s1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/sessions/s1"
    r = c.get("/sessions/s1")
    assert r.status_code in (200, 501)
    if r.status_code == 200:
        assert "<html" in r.text.lower()
    r = c.get("/?q=<script>")
    assert r.status_code == 200 and "<script>" not in r.text


def test_lookup_is_off_without_a_token(db):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with TestClient(create_app(db)) as tc:
            assert tc.get("/").status_code == 403
            r = tc.get("/api/sessions/x", headers={"authorization": "Bearer "})
            assert r.status_code == 403 and "--token" in json.loads(r.text)["error"]
