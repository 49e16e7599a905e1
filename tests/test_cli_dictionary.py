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
    with SQLiteStore(db) as st:
        got = st.latest_dictionary("demo")
    want = wire.learn_dictionary(events, site_key="demo", id=1)
    assert want is not None and got is not None and got.strings == want.strings
    size = sum(len(s.encode()) for s in want.strings)
    assert cap.out.splitlines() == [
        "learned a new dictionary",
        f"site demo: dictionary {got.id}, {len(want.strings):,} entries, {size:,} bytes of "
        f"strings, {len(got.to_json()):,} bytes as served",
    ]
    assert "200/200 sessions" in cap.err  # the progress bar
    assert main(["dictionary", "--db", db, "--site", "demo", "--learn", "--no-progress"]) == 0
    cap = capsys.readouterr()
    assert cap.out.startswith(f"unchanged: the latest\nsite demo: dictionary {got.id},")
    assert cap.err == ""
    assert (
        main(
            [
                "dictionary",
                "--db",
                db,
                "--site",
                "demo",
                "--learn",
                "--sessions",
                "5",
                "--min-visitors",
                "1000",
                "--no-progress",
            ]
        )
        == 0
    )
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


def test_export_batch_files_with_a_dictionary_file(tmp_path: Path, capsys):
    import msgpack

    events = synth.generate(sessions=30, seed=4).events
    d = wire.learn_dictionary(events, site_key="demo", id=1, min_visitors=3)
    assert d is not None
    src = tmp_path / "batches.msgpack"
    src.write_bytes(msgpack.packb(wire.encode(events, dictionary=d)))
    (tmp_path / "d.json").write_bytes(d.to_json())  # as GET /v1/dictionary serves it
    args = ["export", "--batches", str(src), "--partitions", "2"]
    assert main([*args, "--parquet", str(tmp_path / "a")]) == 2
    assert "dictionary 1 of site 'demo'" in capsys.readouterr().err
    assert (
        main([*args, "--parquet", str(tmp_path / "b"), "--dictionary", str(tmp_path / "d.json")])
        == 0
    )
    assert "exported 30 sessions" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text('{"site": "demo"}')
    assert (
        main([*args, "--parquet", str(tmp_path / "c"), "--dictionary", str(tmp_path / "bad.json")])
        == 2
    )
    assert f"dictionary file {tmp_path / 'bad.json'}" in capsys.readouterr().err
    assert (
        main([*args, "--parquet", str(tmp_path / "c"), "--dictionary", str(tmp_path / "none.json")])
        == 2
    )
    assert "cannot read dictionary file" in capsys.readouterr().err
