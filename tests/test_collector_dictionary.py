"""The collector's side of the site dictionaries: ``GET /v1/dictionary``, version 3 batches
validated with the store's dictionaries, a batch naming a missing one quarantined with a clear
answer, and the periodic re-learn on its own thread."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from cemreplay import synth, wire
from cemreplay.collector import _StopLearningError, create_app
from cemreplay.errors import ConfigError
from cemreplay.ingest import UNKNOWN_DICTIONARY
from cemreplay.store import SQLiteStore
from cemreplay.wire import Dictionary

SITE = "demo"
SHOP = "https://shop.example"
MSGPACK = {"content-type": "application/msgpack"}


@pytest.fixture(scope="module")
def traffic() -> tuple[pl.DataFrame, pl.DataFrame]:
    ev = synth.generate(sessions=300, seed=5).events
    ids = ev["session_id"].unique(maintain_order=True).to_list()
    return (ev.filter(pl.col("session_id").is_in(ids[:200])),
            ev.filter(pl.col("session_id").is_in(ids[200:])))


@pytest.fixture(scope="module")
def learned(traffic) -> Dictionary:
    d = wire.learn_dictionary(traffic[0], site_key=SITE, id=1)
    assert d is not None
    return d


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "c.db"


def app_client(db: Path, **kw: object) -> Iterator[TestClient]:
    kw.setdefault("dictionary_interval_s", 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with TestClient(create_app(db, **kw)) as tc:  # type: ignore[arg-type]
            yield tc


@pytest.fixture
def c(db: Path) -> Iterator[TestClient]:
    yield from app_client(db, allow_origins=[SHOP])


def test_the_endpoint(c, db, learned):
    r = c.get("/v1/dictionary")
    assert r.status_code == 400 and "site parameter is missing" in r.json()["error"]
    assert c.get("/v1/dictionary", params={"site": "x" * 129}).status_code == 400
    r = c.get("/v1/dictionary", params={"site": SITE}, headers={"origin": SHOP})
    assert r.status_code == 204 and r.content == b""
    assert r.headers["access-control-allow-origin"] == SHOP
    r = c.get("/v1/dictionary", params={"site": SITE}, headers={"origin": "https://evil.example"})
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    # put through the collector's store: answered at once, from memory afterwards
    store: SQLiteStore = c.app.state.store
    store.put_dictionary(learned)
    r = c.get("/v1/dictionary", params={"site": SITE}, headers={"origin": SHOP})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "public, max-age=3600"
    assert r.headers["access-control-allow-origin"] == SHOP
    assert r.content == learned.to_json() and Dictionary.from_json(r.content) == learned
    two = Dictionary(SITE, 2, learned.strings[:3])
    store.put_dictionary(two)
    assert c.get("/v1/dictionary", params={"site": SITE}).content == two.to_json()
    asked: list[str] = []
    real = store.latest_dictionary

    def counting(site: str) -> Dictionary | None:
        asked.append(site)
        return real(site)

    store.latest_dictionary = counting  # type: ignore[method-assign]
    for _ in range(3):  # answered from memory: the store is not asked
        assert c.get("/v1/dictionary", params={"site": SITE}).content == two.to_json()
    assert asked == []
    assert c.get("/v1/dictionary", params={"site": "other"}).status_code == 204


def test_a_bound_site_key_refuses_other_sites(db, learned):
    with SQLiteStore(db) as st:
        st.put_dictionary(learned)
    for tc in app_client(db, site_key=SITE):
        assert tc.get("/v1/dictionary", params={"site": SITE}).status_code == 200
        r = tc.get("/v1/dictionary", params={"site": "theirs"})
        assert r.status_code == 403 and "not this collector's" in r.json()["error"]


def test_version_3_batches_are_accepted_and_decode_to_what_was_encoded(c, db, traffic, learned):
    c.app.state.store.put_dictionary(learned)
    # 20 sessions (about 200 batches): each request waits for its own durable commit here
    ids = traffic[1]["session_id"].unique(maintain_order=True).to_list()
    later = traffic[1].filter(pl.col("session_id").is_in(ids[:20]))
    batches = wire.encode(later, dictionary=learned)
    for b in batches:
        r = c.post("/v1/batch", content=b, headers={**MSGPACK, "origin": SHOP})
        assert r.status_code == 204, r.text
    with SQLiteStore(db) as st:  # a store object of its own reads the dictionary from disk
        assert st.events().equals(later)
        assert st.quarantine().height == 0


def test_a_missing_dictionary_is_a_clear_400_and_the_batch_is_kept(c, db, traffic, learned):
    store: SQLiteStore = c.app.state.store
    store.put_dictionary(learned)
    later = traffic[1]
    one, two = later["session_id"].unique(maintain_order=True).to_list()[:2]
    first = later.filter(pl.col("session_id") == one)
    foreign = Dictionary(SITE, 7, learned.strings)
    orphan = wire.encode(first, dictionary=foreign)
    r = c.post("/v1/batch", content=orphan[0], headers=MSGPACK)
    assert r.status_code == 400
    body = r.json()
    assert body["quarantined"] is True and body["code"] == UNKNOWN_DICTIONARY
    assert SITE in body["error"] and "7" in body["error"]
    # other batches go on being stored
    ok = wire.encode(later.filter(pl.col("session_id") == two), dictionary=learned)
    assert all(c.post("/v1/batch", content=b).status_code == 204 for b in ok)
    with SQLiteStore(db) as st:
        assert st.quarantine().height == 1
        assert st.put_dictionary(foreign) == 1  # ...and the quarantined one once it is put
        assert st.quarantine().height == 0
        assert st.session_events(one).equals(wire.decode(orphan[:1], dictionaries=[foreign]))


def test_periodic_relearn_runs_off_the_loop_and_stops_with_the_app(db, traffic, learned):
    with SQLiteStore(db) as st:
        st.put_batches(wire.encode(traffic[0]))
    app = create_app(db, dictionary_interval_s=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with TestClient(app) as tc:
            learner = app.state.dictionaries
            assert learner.thread is not None and learner.thread.name == "cemreplay-dictionary"
            deadline = time.monotonic() + 60
            r = tc.get("/v1/dictionary", params={"site": SITE})
            while r.status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.05)
                r = tc.get("/v1/dictionary", params={"site": SITE})
            got = Dictionary.from_json(r.content)
            assert r.status_code == 200 and got.strings == learned.strings
            assert abs(got.id - time.time()) < 120  # ids come from the clock
            health = tc.get("/healthz").json()["dictionary"]
            assert health["learned"] == 1 and health["runs"] >= 1 and health["error"] is None
            thread = learner.thread
    assert learner.thread is None and not thread.is_alive()
    with SQLiteStore(db) as st:
        assert st.dictionaries() == [got]  # later passes found nothing new


def test_relearn_off_and_bad_intervals(db):
    app = create_app(db, dictionary_interval_s=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with TestClient(app) as tc:
            assert app.state.dictionaries.thread is None
            assert "dictionary" not in tc.get("/healthz").json()
        # a pass in progress stops at its next decode step once the app stops
        learner = app.state.dictionaries
        learner.stopping.set()
        with pytest.raises(_StopLearningError):
            app.state.store.learn_dictionary(SITE, progress=learner._check)
    for bad in (-1, float("nan"), "1", True):
        with pytest.raises(ConfigError, match="dictionary_interval_s"):
            create_app(db, dictionary_interval_s=bad)  # type: ignore[arg-type]


def test_the_answer_board_holds_a_bounded_number_of_sites(tmp_path, monkeypatch):
    """Asking for many sites (a scan of made-up keys) cannot grow the in-memory answers
    without bound: past the limit they are dropped and asked of the store again, and every
    answer stays right."""
    from cemreplay import collector

    monkeypatch.setattr(collector, "_MAX_DICT_SITES", 3)
    with SQLiteStore(tmp_path / "s.db") as st:
        d = Dictionary("real", 5, ("button#buy", "/checkout"))
        st.put_dictionary(d)
        board = collector._Board(st)
        assert board.get("real") == d.to_json()
        for k in range(10):
            assert board.get(f"made-up-{k}") is None
            assert len(board._answers) <= 3
        # the real site's answer was dropped with the others, and is asked again, right
        assert board.fresh("real") is False
        assert board.get("real") == d.to_json()
        assert board.fresh("real") == d.to_json()
