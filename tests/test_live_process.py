"""Live analysis in a worker process (cemreplay.live_process): the same findings and signals
as a batch run, a clean start and stop, a worker that dies or a collector that goes away."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import polars as pl
import pytest

from cemreplay.detectors import detect
from cemreplay.errors import ConfigError
from cemreplay.live import DEFAULT_RULES, AnswerChannel, LiveAnalyzer, LiveConfig, Signal
from cemreplay.live_process import LiveProcess, WorkerSpec
from cemreplay.store import SQLiteStore
from cemreplay.synth import generate
from cemreplay.wire import encode
from tests.live_support import struggling


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
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
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
