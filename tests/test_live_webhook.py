"""Signed webhooks and the collector's live path: signatures a receiver can check, retries,
bounded queues, and a receiver that is down or slow costing ingest nothing."""

from __future__ import annotations

import json
import socket
import time
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from cemreplay.collector import create_app
from cemreplay.errors import ConfigError
from cemreplay.live import LiveConfig
from cemreplay.webhook import (
    ID_HEADER,
    SIGNATURE_HEADER,
    SignatureError,
    WebhookSender,
    sign,
    verify,
)
from cemreplay.wire import encode
from tests.live_support import receiver, struggling

MSGPACK = {"content-type": "application/msgpack"}


def test_sign_and_verify():
    body = b'{"session_id":"S1"}'
    h = sign(body, "s3cret", timestamp=1_000)
    assert verify(body, h, "s3cret", now=1_100) == 1_000
    with pytest.raises(SignatureError, match="no signature matches"):
        verify(body + b" ", h, "s3cret", now=1_100)
    with pytest.raises(SignatureError, match="no signature matches"):
        verify(body, h, "other", now=1_100)
    with pytest.raises(SignatureError, match="from now"):
        verify(body, h, "s3cret", now=1_000 + 301)
    for bad in (None, "", "v1=abc", "t=1000", "t=x,v1=abc"):
        with pytest.raises(SignatureError):
            verify(body, bad, "s3cret", now=1_000)
    # a rotation: two signatures, either secret verifies
    both = sign(body, ["old", "new"], timestamp=1_000)
    assert verify(body, both, "old", now=1_000) == verify(body, both, "new", now=1_000)
    with pytest.raises(ConfigError):
        sign(body, "")
    with pytest.raises(ConfigError):
        WebhookSender("ftp://x/hook")


def test_sender_retries_a_failing_receiver_and_signs_every_attempt():
    with receiver(fail_first=2) as rec:
        s = WebhookSender(rec.url, "k", backoff_s=0.02).start()
        try:
            sid = s.send({"a": 1})
            assert rec.wait(1)
        finally:
            s.stop()
        headers, body, _ = rec.got[0]
        assert json.loads(body) == {"a": 1}
        assert headers[ID_HEADER] == sid
        verify(body, headers[SIGNATURE_HEADER], "k")
        assert rec.calls == 3 and s.retries == 2 and s.sent == 1 and s.failed == 0


def _closed_port() -> int:
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return int(sk.getsockname()[1])  # nothing listens once closed


def test_sender_gives_up_on_a_receiver_that_is_down_and_never_blocks():
    s = WebhookSender(f"http://127.0.0.1:{_closed_port()}/hook", "k", max_queue=5,
                      backoff_s=0.01, max_attempts=3, timeout_s=0.5).start()
    try:
        t0 = time.perf_counter()
        for k in range(50):
            s.send({"k": k})
        assert time.perf_counter() - t0 < 0.5  # queueing only
        # At most max_queue wait and one per delivery thread is in flight; the rest is dropped.
        assert s.queued <= 5 and s.dropped >= 50 - 5 - s.workers
        end = time.monotonic() + 20
        while (s.queued or s.failed + s.dropped < 50) and time.monotonic() < end:
            time.sleep(0.02)
        assert s.sent == 0 and s.failed + s.dropped == 50 and s.retries > 0
    finally:
        s.stop(drain_s=0)


def _client(db: Path, live: LiveConfig | None, **kw: object) -> TestClient:
    return TestClient(create_app(db, live=live, **kw))  # type: ignore[arg-type]


def _post_all(c: TestClient, batches: list[bytes]) -> list[float]:
    lat = []
    for b in batches:
        t0 = time.perf_counter()
        r = c.post("/v1/batch", content=b, headers=MSGPACK)
        lat.append(time.perf_counter() - t0)
        assert r.status_code == 204
    return lat


@pytest.mark.parametrize("process", [True, False], ids=["worker-process", "thread"])
def test_collector_signals_reach_the_webhook_signed_and_the_answer_channel(
    tmp_path: Path, process: bool
):
    with receiver() as rec, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        live = LiveConfig(
            webhook=rec.url, webhook_secret="whsec", max_age_ms=None, process=process
        )
        with _client(tmp_path / "c.db", live, site_key="k") as c:
            _post_all(c, encode(struggling(), site_key="k"))
            assert rec.wait(2)
            sigs = {}
            for headers, body, _ in rec.got:
                verify(body, headers[SIGNATURE_HEADER], "whsec")
                d = json.loads(body)
                sigs[d["session_id"]] = d
            assert sorted(sigs) == ["S1", "S2"]
            assert sigs["S1"]["rule"] == "failed_submit>=2/same"
            assert sigs["S2"]["findings"][0]["kind"] == "rage_click"
            # a worker process sends its signals to the webhook and, on its own pipe, to the
            # collector's answer channel: the channel may have it a moment after the webhook
            end = time.monotonic() + 5
            while True:
                r = c.get("/v1/live/S1?k=k", headers={"origin": "https://shop.example"})
                assert r.status_code == 200
                got = r.json()["signals"]
                if got or time.monotonic() > end:
                    break
                time.sleep(0.02)
            assert r.headers["access-control-allow-origin"] == "https://shop.example"
            assert [s["rule"] for s in got] == ["failed_submit>=2/same"]
            assert c.get(f"/v1/live/S1?k=k&after={got[0]['n']}").json()["signals"] == []
            assert c.get("/v1/live/S3?k=k").json()["signals"] == []
            assert c.get("/v1/live/S1?k=wrong").status_code == 403
            assert c.get("/v1/live/S1?k=k&after=x").status_code == 400
            end = time.monotonic() + 2  # a worker process reports its counters every 50 ms
            while (health := c.get("/healthz").json())["webhook"]["sent"] < 2:
                if time.monotonic() > end:
                    break
                time.sleep(0.02)
            assert health["live"]["signals"] == 2 and health["webhook"]["sent"] == 2
        # without --live there is no answer channel
        with _client(tmp_path / "d.db", None) as c:
            assert c.get("/v1/live/S1").status_code == 404


@pytest.mark.parametrize("process", [True, False], ids=["worker-process", "thread"])
@pytest.mark.parametrize("mode", ["slow", "down"])
def test_a_slow_or_down_webhook_costs_ingest_nothing(tmp_path: Path, mode: str, process: bool):
    batches = encode(struggling(), site_key="k")
    many = []
    for k in range(40):  # 40 copies of the four sessions: 80 signals
        for b in batches:
            many.append(b.replace(b"\xa2S", b"\xa2" + bytes([65 + k % 26]), 1)
                        if k < 26 else b)
    with warnings.catch_warnings(), receiver(sleep_s=3.0) as slow:
        warnings.simplefilter("ignore")
        url = slow.url if mode == "slow" else f"http://127.0.0.1:{_closed_port()}/hook"
        live = LiveConfig(
            webhook=url, webhook_secret="k", max_age_ms=None, webhook_timeout_s=1.0,
            process=process,
        )
        with _client(tmp_path / "c.db", live) as c:
            lat = _post_all(c, many)
            analyzer = c.app.state.live  # type: ignore[attr-defined]
            assert analyzer.wait_idle(30)
            # Every batch was acknowledged; none waited for the receiver (3 s per request
            # when slow, refused when down; each send gives up after webhook_timeout_s = 1 s).
            # Ingest that waited for the sender would take about a second for each of the
            # signals; a loaded machine may still stall a request or two that long.
            assert analyzer.signals >= 20
            stalled = [x for x in lat if x >= 1.0]
            assert len(stalled) <= 2, stalled
            assert sorted(lat)[len(lat) // 2] < 0.25, sorted(lat)[len(lat) // 2]
            assert c.get("/healthz").json()["webhook"]["sent"] == 0


def test_the_help_add_on_is_served(tmp_path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _client(tmp_path / "c.db", None) as c:
            r = c.get("/v1/help.js")
            assert r.status_code == 200 and "/v1/live/" in r.text
            assert "cemreplayHelp" in r.text
