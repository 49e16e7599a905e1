"""Live analysis in a worker process (cemreplay.live_process): the same findings and signals
as a batch run, a clean start and stop, a worker that dies or a collector that goes away."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from cemreplay.detectors import detect
from cemreplay.errors import ConfigError
from cemreplay.live import DEFAULT_RULES, AnswerChannel, LiveAnalyzer, LiveConfig, Signal
from cemreplay.live_process import LiveProcess, WorkerSpec, _backoff
from cemreplay.store import SQLiteStore
from cemreplay.synth import generate
from cemreplay.wire import encode
from tests.live_support import struggling
from tests.test_live_webhook import MSGPACK


def _spec(db: Path, **kw: object) -> WorkerSpec:
    cfg = LiveConfig(DEFAULT_RULES, log=False, max_age_ms=None, baseline_refresh_s=None,
                     process=False, answer=False, **kw)  # type: ignore[arg-type]
    return WorkerSpec(str(db), cfg)


def _gone(pid: int, timeout_s: float = 15.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie is gone too: it only waits for its parent to reap it
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except OSError:  # reaped between the two looks (ESRCH, ENOENT): gone
            return True
        time.sleep(0.05)
    return False


def test_the_worker_stores_what_a_batch_run_stores_and_sends_the_signals_back(tmp_path: Path):
    traffic = generate(sessions=300, seed=7).events
    batches = encode(traffic, site_key="k") + encode(struggling(), site_key="k")
    got: list[Signal] = []
    answer = AnswerChannel()
    with SQLiteStore(tmp_path / "live.db") as st:
        proc = LiveProcess(_spec(tmp_path / "live.db", batch_window_s=0.05), [got.append, answer])
        proc.start()
        try:
            half = len(batches) // 2  # two commits, the second adds to sessions of the first
            for part in (batches[:half], batches[half:]):
                outs = st.put_batches(part)
                proc.notify([o.session_id for o in outs if o.status == "stored" and o.session_id])
            assert proc.wait_idle(60)
            stats = proc.stats()
        finally:
            proc.stop()
        live_found = st.findings().sort("session_id", "t", "kind")
        live_index = st.sessions(limit=None).sort("session_id")
    # the same batches analyzed at once by the in-process analyzer (with the same baselines:
    # none, as the worker had no refresh)
    with SQLiteStore(tmp_path / "batch.db") as st:
        st.put_batches(batches)
        ref = LiveAnalyzer(st, max_age_ms=None, baseline_refresh_s=None)
        ref.process(st.sessions(limit=None)["session_id"].to_list())
        batch_found = st.findings().sort("session_id", "t", "kind")
        batch_index = st.sessions(limit=None).sort("session_id")
    assert live_found.height > 100
    assert live_found.drop("found_ms", strict=False).equals(
        batch_found.drop("found_ms", strict=False)
    )
    assert live_index.drop("updated_ms", strict=False).equals(
        batch_index.drop("updated_ms", strict=False)
    )
    # and what detect() finds on all events, kind by kind
    direct = detect(pl.concat([traffic, struggling()], how="vertical_relaxed"))
    assert sorted(live_found["kind"].cast(pl.String).value_counts().rows()) == sorted(
        direct["kind"].cast(pl.String).value_counts().rows()
    )
    # every signal came back to this process once, S1 and S2 among them
    keys = [(s.session_id, s.rule) for s in got]
    assert len(keys) == len(set(keys)) == stats["signals"]
    assert {("S1", "failed_submit>=2/same"), ("S2", "rage_click->error_click<30s")} <= set(keys)
    assert [s["rule"] for s in answer.poll("S1")] == ["failed_submit>=2/same"]
    assert stats["pending"] == 0 and stats["errors"] == 0 and stats["worker"] == "running"
    assert stats["analyzed"] >= stats["signals"] > 0


def test_start_and_stop_leave_no_process(tmp_path: Path):
    SQLiteStore(tmp_path / "s.db").close()
    proc = LiveProcess(_spec(tmp_path / "s.db"))
    proc.start()
    pid = proc._proc.pid
    assert not _gone(pid, 0.5)
    t0 = time.monotonic()
    proc.stop()
    assert time.monotonic() - t0 < 15
    assert _gone(pid)
    assert proc.stats()["worker"] == "stopped"
    proc.stop()  # twice is fine


def test_the_worker_exits_when_the_collector_goes_away(tmp_path: Path):
    SQLiteStore(tmp_path / "s.db").close()
    proc = LiveProcess(_spec(tmp_path / "s.db"))
    proc.start()
    pid = proc._proc.pid
    try:
        proc.notify(["nothing-stored"])
        assert proc.wait_idle(30)
        # what the OS does to the pipe when the collector dies, however abruptly
        assert proc._to_worker is not None
        proc._to_worker.close()
        proc._to_worker = None
        assert _gone(pid)
    finally:
        proc.stop()


def test_a_dead_worker_is_reported_and_ingest_never_waits(tmp_path: Path):
    SQLiteStore(tmp_path / "s.db").close()
    proc = LiveProcess(_spec(tmp_path / "s.db", restart=False), max_pending=1_000)
    proc.start()
    try:
        assert proc.wait_idle(30)
        os.kill(proc._proc.pid, signal.SIGKILL)
        end = time.monotonic() + 15
        while proc.stats()["worker"] != "exited" and time.monotonic() < end:
            time.sleep(0.02)
        assert proc.stats()["worker"] == "exited"
        assert proc.stats()["last_exit"] == -signal.SIGKILL and proc.stats()["restarts"] == 0
        time.sleep(1.0)  # more than the first backoff: still not restarted
        assert proc.stats()["worker"] == "exited" and proc.stats()["restarts"] == 0
        t0 = time.monotonic()
        for k in range(200):
            proc.notify([f"s{k}-{j}" for j in range(50)])
        assert time.monotonic() - t0 < 1.0
        # a hand-over the forwarding thread took before it found the pipe broken is counted
        # once its send fails: wait for that (bounded), then count
        end = time.monotonic() + 5
        while proc._inflight and time.monotonic() < end:
            time.sleep(0.01)
        assert proc.stats()["dropped"] >= 200 * 50 - 1_000
        assert not proc.wait_idle(0.2)
    finally:
        proc.stop(drain_s=0.5)


def test_bad_settings_are_refused(tmp_path: Path):
    with pytest.raises(ConfigError):
        LiveProcess(_spec(tmp_path / "s.db"), max_pending=0)
    with SQLiteStore(tmp_path / "s.db") as st, pytest.raises(ConfigError):
        LiveAnalyzer(st, batch_window_s=-1)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_serve_live_leaves_no_worker_behind(tmp_path: Path, how: signal.Signals):
    """``cemreplay serve --live`` stopped (SIGTERM) or killed (SIGKILL): its worker goes too."""
    import httpx

    from tests.test_collector_crash import start_server

    proc, url = start_server(tmp_path / "s.db", tmp_path / "server.log", "--live")
    try:
        end = time.monotonic() + 60
        while (health := httpx.get(f"{url}/healthz", timeout=5).json())["live"]["worker"] != (
            "running"
        ) and time.monotonic() < end:
            time.sleep(0.1)
        assert health["live"]["worker"] == "running"
        workers = _children(proc.pid)
        assert workers, "no worker process"
        proc.send_signal(how)
        proc.wait(timeout=30)
        for pid in workers:
            assert _gone(pid), f"worker {pid} outlived the collector"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def _until(cond: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_a_killed_worker_is_restarted_and_misses_no_acknowledged_batch(tmp_path: Path):
    """SIGKILL the worker while it holds a session (in its batch window): a new worker comes
    back, catches up on that session (still dirty in the store) and analyzes what comes next;
    a clean stop then leaves no process and restarts nothing."""
    from starlette.testclient import TestClient

    from cemreplay.collector import create_app

    batches = encode(struggling(), site_key="k")
    s1 = [b for b in batches if b"\xa2S1" in b]
    s2 = [b for b in batches if b"\xa2S2" in b]
    assert s1 and s2 and not set(s1) & set(s2)
    live = LiveConfig(log=False, max_age_ms=None, baseline_refresh_s=None, batch_window_s=3.0)
    db = tmp_path / "c.db"
    with TestClient(create_app(db, live=live, site_key="k")) as c:
        lp = c.app.state.live  # type: ignore[attr-defined]
        assert isinstance(lp, LiveProcess)
        assert _until(lambda: c.get("/healthz").json()["live"]["worker"] == "running")
        first = lp._proc.pid
        for b in s1:  # acknowledged just before the kill
            assert c.post("/v1/batch", content=b, headers=MSGPACK).status_code == 204
        # S1 reached the worker, which holds it for its 3 s window
        assert _until(lambda: not lp._pending and lp._worker.get("pending") == 1, 10)
        os.kill(first, signal.SIGKILL)
        assert _until(lambda: c.get("/healthz").json()["live"]["restarts"] == 1, 20)
        assert _gone(first)
        health = c.get("/healthz").json()["live"]
        assert health["worker"] == "running" and health["last_exit"] == -signal.SIGKILL
        second = lp._proc.pid
        assert second != first
        for b in s2:  # acknowledged after the restart
            assert c.post("/v1/batch", content=b, headers=MSGPACK).status_code == 204
        assert lp.wait_idle(30)
        assert [s["rule"] for s in c.get("/v1/live/S1?k=k").json()["signals"]] == [
            "failed_submit>=2/same"
        ]
        assert [s["rule"] for s in c.get("/v1/live/S2?k=k").json()["signals"]] == [
            "rage_click->error_click<30s"
        ]
        assert c.get("/healthz").json()["live"]["signals"] == 2
    # a clean stop: the worker is gone and nothing restarts it
    assert _gone(second)
    time.sleep(2 * 0.5 + 0.5)  # longer than the next backoff would be
    st = lp.stats()
    assert st["worker"] == "stopped" and st["restarts"] == 1 and lp._proc is None
    with SQLiteStore(db) as store:
        found = set(store.findings()["session_id"].cast(pl.String).to_list())
        assert {"S1", "S2"} <= found
        assert store.dirty_session_ids() == []


def test_restarts_back_off_and_stop_ends_a_backoff(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    SQLiteStore(tmp_path / "s.db").close()
    proc = LiveProcess(_spec(tmp_path / "s.db", restart_max_s=30.0))
    proc.start()
    pids = []
    try:
        with caplog.at_level("WARNING", logger="cemreplay.live"):
            for k in (1, 2):
                assert proc.wait_idle(30)
                pids.append(proc._proc.pid)
                os.kill(pids[-1], signal.SIGKILL)
                assert _until(lambda k=k: proc.stats()["restarts"] == k, 20)
            assert proc.wait_idle(30)
            pids.append(proc._proc.pid)
            os.kill(pids[-1], signal.SIGKILL)
            assert _until(lambda: proc.stats()["worker"] == "restarting", 10)
        lines = [r.getMessage() for r in caplog.records if "restarting it" in r.getMessage()]
        # 0.5 s, then doubled (each worker lived less than restart_max_s)
        assert [ln.split(" in ")[1] for ln in lines] == [
            "0.5 s (restart 1)", "1.0 s (restart 2)", "2.0 s (restart 3)"
        ]
        assert all("(code -9)" in ln for ln in lines)
        t0 = time.monotonic()
        proc.stop()  # during the backoff: no restart, at once
        assert time.monotonic() - t0 < 5
    finally:
        proc.stop()
    time.sleep(2.5)  # longer than the backoff stop() ended
    assert proc.stats()["worker"] == "stopped" and proc.stats()["restarts"] == 2
    assert proc._proc is None and all(_gone(p) for p in pids)


def test_a_worker_that_fails_to_start_is_tried_again_until_one_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    import subprocess

    got: list[Signal] = []
    with SQLiteStore(tmp_path / "s.db") as st:
        ids = sorted({o.session_id for o in st.put_batches(encode(struggling(), site_key="k"))
                      if o.session_id})
        proc = LiveProcess(_spec(tmp_path / "s.db", restart_max_s=30.0), [got.append])
        proc.start()
        real, fails = subprocess.Popen, [2]

        def flaky(*args: object, **kw: object) -> object:
            if fails[0]:
                fails[0] -= 1
                raise OSError("out of processes")
            return real(*args, **kw)  # type: ignore[call-overload]

        try:
            assert proc.wait_idle(30)
            first = proc._proc.pid
            monkeypatch.setattr(subprocess, "Popen", flaky)
            with caplog.at_level("WARNING", logger="cemreplay.live"):
                os.kill(first, signal.SIGKILL)
                assert _until(lambda: proc.stats()["restarts"] == 1, 30)
            assert fails == [0] and proc.stats()["worker"] == "running"
            lines = [r.getMessage() for r in caplog.records if "trying again" in r.getMessage()]
            assert [ln.split(" in ")[1] for ln in lines] == ["1.0 s", "2.0 s"]
            proc.notify(ids)  # the worker that finally started analyzes
            assert proc.wait_idle(30)
            assert sorted(s.session_id for s in got) == ["S1", "S2"]
        finally:
            proc.stop()
    assert _gone(first) and proc._proc is None


def test_stop_during_failed_restarts_ends_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import subprocess

    SQLiteStore(tmp_path / "s.db").close()
    proc = LiveProcess(_spec(tmp_path / "s.db"))
    proc.start()
    calls = [0]

    def broken(*args: object, **kw: object) -> object:
        calls[0] += 1
        raise OSError("out of processes")

    try:
        assert proc.wait_idle(30)
        monkeypatch.setattr(subprocess, "Popen", broken)
        os.kill(proc._proc.pid, signal.SIGKILL)
        assert _until(lambda: calls[0] >= 1, 20)
    finally:
        proc.stop()
    assert proc.stats()["worker"] == "stopped"
    n = calls[0]
    time.sleep(2.5)  # longer than the next backoffs: no more attempts after stop
    assert calls[0] == n


def test_bad_restart_settings_are_refused(tmp_path: Path):
    with pytest.raises(ConfigError, match="restart_max_s"):
        LiveProcess(_spec(tmp_path / "s.db", restart_max_s=0.1))
    with pytest.raises(ConfigError, match="catch_up"):
        LiveProcess(_spec(tmp_path / "s.db", catch_up=-1))


def test_the_backoff_doubles_up_to_its_cap_and_resets_after_a_long_run():
    deaths, delays = 0, []
    for _ in range(9):  # each worker lived 1 s
        deaths, d = _backoff(deaths, 1.0, 30.0)
        delays.append(d)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert _backoff(deaths, 30.0, 30.0) == (1, 0.5)  # ran fine for restart_max_s: reset
    assert _backoff(10**6, 1.0, 30.0)[1] == 30.0  # no overflow however many deaths


def test_a_restarted_worker_does_not_repeat_a_signal_already_sent(tmp_path: Path):
    got: list[Signal] = []
    with SQLiteStore(tmp_path / "s.db") as st:
        outs = st.put_batches(encode(struggling(), site_key="k"))
        ids = sorted({o.session_id for o in outs if o.session_id})
        proc = LiveProcess(_spec(tmp_path / "s.db"), [got.append])
        proc.start()
        try:
            proc.notify(ids)
            assert proc.wait_idle(30)
            assert sorted(s.session_id for s in got) == ["S1", "S2"]
            os.kill(proc._proc.pid, signal.SIGKILL)
            assert _until(lambda: proc.stats()["restarts"] == 1, 20)
            proc.notify(ids)  # analyzed again by the new worker: the same findings
            assert proc.wait_idle(30)
            assert proc.stats()["analyzed"] >= 2 * len(ids)
        finally:
            proc.stop()
    assert sorted(s.session_id for s in got) == ["S1", "S2"]
