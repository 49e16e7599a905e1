"""``cemreplay dictionary``: show, learn (with progress), unchanged on a second learn."""

from __future__ import annotations

from pathlib import Path

from cemreplay import synth, wire
from cemreplay.cli import main
from cemreplay.store import SQLiteStore


def test_show_and_learn(tmp_path: Path, capsys):
    db = str(tmp_path / "s.db")
    events = synth.generate(sessions=200, seed=3).events
    with SQLiteStore(db) as st:
        st.put_batches(wire.encode(events))
    assert main(["dictionary", "--db", db, "--site", "demo"]) == 0
    out = capsys.readouterr().out
    assert "no dictionary" in out and "--learn" in out
    assert main(["dictionary", "--db", db, "--site", "demo", "--learn"]) == 0
    cap = capsys.readouterr()
    want = wire.learn_dictionary(events, site_key="demo", id=1)
    assert want is not None
    size = sum(len(s.encode()) for s in want.strings)
    assert cap.out.splitlines() == [
        "learned a new dictionary",
        f"site demo: dictionary 1, {len(want.strings):,} entries, {size:,} bytes of strings, "
        f"{len(want.to_json()):,} bytes as served",
    ]
    assert "200/200 sessions" in cap.err  # the progress bar
    assert main(["dictionary", "--db", db, "--site", "demo", "--learn", "--no-progress"]) == 0
    cap = capsys.readouterr()
    assert cap.out.startswith("unchanged: the latest\nsite demo: dictionary 1,") and cap.err == ""
    assert main(["dictionary", "--db", db, "--site", "demo", "--learn", "--sessions", "5",
                 "--min-visitors", "1000", "--no-progress"]) == 0
    assert "unchanged: the latest" in capsys.readouterr().out  # nothing qualifies: keep it
    assert main(["dictionary", "--db", db, "--site", "elsewhere", "--learn"]) == 0
    assert "no dictionary (no string was sent by 20" in capsys.readouterr().out


def test_errors(tmp_path: Path, capsys):
    assert main(["dictionary", "--db", str(tmp_path / "none.db"), "--site", "k"]) == 2
    assert "no store at" in capsys.readouterr().err
    db = str(tmp_path / "s.db")
    SQLiteStore(db).close()
    assert main(["dictionary", "--db", db, "--site", "k", "--learn", "--min-visitors", "0"]) == 2
    assert "min_visitors must be an int >= 1" in capsys.readouterr().err
