"""The store commands end to end through cemreplay.cli.main: sessions, analyze, show,
findings (store and rrweb), replay, and exit code 2 for what goes wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cemreplay.cli import main
from cemreplay.store import SQLiteStore
from tests.batches import batch

POSTHOG = (Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "rrweb"
           / "posthog-rageclick-interactions.jsonl")


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "s.db"
    with SQLiteStore(path) as st:
        st.put_batches([
            batch("s1", 0, visitor_id="va", attrs={"locale": "fr-FR"}),
            batch("s1", 1, visitor_id="va", url="/cart", message="TypeError: x is undefined"),
            batch("s2", 0, visitor_id="vb"),
        ])
    return str(path)


def test_sessions_table_and_json(db, capsys):
    assert main(["sessions", "--db", db]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["session_id", "visitor_id"]
    assert {line.split()[0] for line in out[2:]} == {"s1", "s2"}
    assert main(["sessions", "--db", db, "--visitor", "va", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["session_id"] for r in rows] == ["s1"] and rows[0]["analyzed"] is False


def test_analyze_then_sessions_show_segments(db, capsys):
    assert main(["analyze", "--db", db]) == 0
    cap = capsys.readouterr()
    assert "analyzed 2 sessions" in cap.out
    assert "2/2 visitors" in cap.err
    assert main(["analyze", "--db", db]) == 0  # nothing changed since: no empty bars
    cap = capsys.readouterr()
    assert "analyzed 0 sessions" in cap.out and "visitors" not in cap.err
    assert main(["sessions", "--db", db, "--format", "json"]) == 0
    rows = {r["session_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["s1"]["pages"] == 2 and rows["s1"]["locale"] == "fr-FR"
    assert rows["s1"]["analyzed"] is True


def test_show_text_and_json(db, capsys):
    assert main(["show", "s1", "--db", db, "--color", "never"]) == 0
    text = capsys.readouterr().out
    assert "s1" in text and "/cart" in text and "\x1b[" not in text
    assert main(["show", "s1", "--db", db, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["session_id"] == "s1" and data["visitor_id"] == "va"


def test_findings_from_the_store(db, tmp_path, capsys):
    with SQLiteStore(db) as st:
        import polars as pl

        st.save_findings(pl.DataFrame({
            "session_id": ["s1"], "visitor_id": ["va"], "kind": ["error_click"],
            "t": [1_767_225_660_053], "page_url": ["/cart"], "target": ["button#pay"],
            "field": [None], "explanation": ["a click followed by a JS error"],
        }))
    assert main(["findings", "--db", db, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["kind"] == "error_click"
    for key in ("session_id", "visitor_id", "kind", "t", "page_url", "target", "field",
                "explanation"):
        assert key in rows[0]
    assert main(["findings", "--db", db, "--kind", "rage_click", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["findings", "--db", db]) == 0
    assert "error_click" in capsys.readouterr().out


@pytest.mark.skipif(not POSTHOG.exists(), reason="shared/fixtures not beside the repo")
def test_findings_from_an_rrweb_recording(capsys):
    assert main(["findings", "--rrweb", str(POSTHOG), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and any(r["kind"] == "rage_click" for r in rows)
    assert {"session_id", "visitor_id", "kind", "t", "page_url", "target", "field",
            "explanation"} <= set(rows[0])


def test_replay_writes_html(db, tmp_path, capsys):
    out = tmp_path / "s1.html"
    assert main(["replay", "s1", "--db", db, "-o", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert "<html" in html.lower() and "s1" in html


def test_errors_exit_2_with_a_hint(db, tmp_path, capsys):
    assert main(["show", "nope", "--db", db]) == 2
    assert "no session 'nope'" in capsys.readouterr().err
    assert main(["sessions", "--db", str(tmp_path / "missing.db")]) == 2
    assert "no store at" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()
    assert main(["sessions", "--db", db, "--since", "whenever"]) == 2
    assert "hint" in capsys.readouterr().err
