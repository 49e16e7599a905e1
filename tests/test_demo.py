"""`cemreplay demo` runs the real system: collector, store, analysis, lookup hints."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from cemreplay.cli import main
from cemreplay.demo import run_demo
from cemreplay.errors import ConfigError
from cemreplay.store import open_store


def test_demo_feeds_a_real_collector_and_store(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    out = io.StringIO()
    assert run_demo(sessions=25, seed=3, out=out, db=db) == 0
    text = out.getvalue()
    store = open_store(db, create=False)
    try:
        sessions = store.sessions(limit=None)
        findings = store.findings()
    finally:
        store.close()
    assert sessions.height == 25  # every session's batches went through HTTP into the store
    assert f"Store: {db}" in text
    assert "Checkout funnel" in text
    # the hint names a real session of the store, and that lookup works
    sid = text.split("cemreplay show ", 1)[1].split()[0]
    assert sid in sessions["session_id"].to_list()
    assert sid in findings["session_id"].to_list()
    assert main(["show", sid, "--db", str(db)]) == 0


def test_demo_collector_starts_with_a_token_that_starts_with_a_dash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cemreplay.demo as demo

    # secrets.token_urlsafe may begin with "-" (1 in 64): `--token -x` would be an argparse error
    monkeypatch.setattr(demo.secrets, "token_urlsafe", lambda n: "-Dash1st" + "x" * n)
    with demo._Collector(tmp_path / "demo.db") as c:
        assert c.proc is not None and c.proc.poll() is None


def test_demo_never_overwrites_a_foreign_file(tmp_path: Path) -> None:
    db = tmp_path / "precious.db"
    db.write_bytes(b"not yours")
    with pytest.raises(ConfigError, match="exists"):
        run_demo(sessions=2, out=io.StringIO(), db=db)
    assert db.read_bytes() == b"not yours"
