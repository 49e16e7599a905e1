"""A support rep's one-session lookup (`cemreplay show`, `cemreplay replay`) in a fresh process:
importing the CLI loads no numba, and a small session's kernels run as Python (numba neither
imported nor started) with exactly the output of the compiled kernels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from cemreplay import cli
from cemreplay.store import SQLiteStore
from cemreplay.synth import generate
from cemreplay.wire import encode

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A store of synthetic sessions (not analyzed, so `show` runs the detectors) and the id
    of the one with the most findings."""
    traffic = generate(sessions=60, seed=4)
    path = tmp_path_factory.mktemp("lookup") / "s.db"
    with SQLiteStore(path) as st:
        st.put_batches(encode(traffic.events))
    busiest = traffic.truth["session_id"].cast(pl.String).value_counts(sort=True)[0, 0]
    return str(path), str(busiest)


def _fresh(code: str, env: dict[str, str] | None = None) -> str:
    """Run ``code`` in a fresh interpreter (no NUMBA_DISABLE_JIT unless ``env`` sets it)."""
    base = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), base.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", code], env={**base, **(env or {})}, capture_output=True,
        text=True, timeout=300, check=True,
    )
    return out.stdout


def test_importing_the_cli_and_the_package_loads_no_numba():
    got = _fresh(
        "import sys, cemreplay, cemreplay.cli, cemreplay.errors\n"
        "print('numba' in sys.modules)\n"
        "print(cemreplay.EventKind.CLICK.name, callable(cemreplay.score))\n"
        "import cemreplay.score, cemreplay.pipeline\n"
        "print(callable(cemreplay.score), cemreplay.detect.__module__)\n"
    )
    assert got.split("\n")[:3] == ["False", "CLICK True", "True cemreplay.detectors"]


def _show_in_fresh_process(db: str, sid: str, env: dict[str, str] | None = None) -> dict:
    out = _fresh(
        "import json, io, contextlib\n"
        "from cemreplay.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        f"    rc = main(['show', {sid!r}, '--db', {db!r}, '--format', 'json'])\n"
        "import sys, cemreplay._jit\n"
        "print(json.dumps({'rc': rc, 'jit_off': cemreplay._jit.DISABLED,"
        " 'numba': 'numba' in sys.modules, 'view': json.loads(buf.getvalue())}))\n",
        env,
    )
    return json.loads(out)


def test_a_small_session_is_shown_with_interpreted_kernels_and_the_same_result(store):
    db, sid = store
    fast = _show_in_fresh_process(db, sid)
    compiled = _show_in_fresh_process(db, sid, {"NUMBA_DISABLE_JIT": "0"})
    assert fast["rc"] == compiled["rc"] == 0
    assert fast["jit_off"] and not compiled["jit_off"]
    assert not fast["numba"] and compiled["numba"]  # interpreted: numba not even imported
    assert fast["view"]["findings"], "the chosen session should have findings to compare"
    assert fast["view"] == compiled["view"]


def test_what_counts_as_a_small_session(store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    db, sid = store
    assert cli._small_session(db, sid)
    assert not cli._small_session(db, "no-such-session")
    assert not cli._small_session(str(tmp_path / "missing.db"), sid)
    (tmp_path / "not-a-store.db").write_bytes(b"plain text, not SQLite" * 100)
    assert not cli._small_session(str(tmp_path / "not-a-store.db"), sid)
    with SQLiteStore(db) as st:
        n = st.session_events(sid).height
    monkeypatch.setattr(cli, "LOOKUP_INTERPRETED_EVENTS", n)
    assert cli._small_session(db, sid)
    monkeypatch.setattr(cli, "LOOKUP_INTERPRETED_EVENTS", n - 1)
    assert not cli._small_session(db, sid)


def test_the_lookup_switch_leaves_a_process_that_already_loaded_numba_alone(store):
    db, sid = store
    assert "numba" in sys.modules  # this test process decoded and detected already
    before = os.environ.get("NUMBA_DISABLE_JIT")
    assert cli._interpret_small_lookup(db, sid) is False
    assert os.environ.get("NUMBA_DISABLE_JIT") == before


def test_njit_when_the_jit_is_off_keeps_functions_as_they_are():
    from cemreplay import _jit

    def f(x: int) -> int:
        return x + 1

    assert _jit._as_is(f) is f and _jit._as_is(cache=True, nogil=True)(f) is f
    assert [_jit._disabled(v) for v in (None, "", "0", "1", "2", "yes")] == [
        False, False, False, True, True, False
    ]
