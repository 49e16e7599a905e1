"""Export to partitioned Parquet: from wire batch files and from event tables."""

from __future__ import annotations

from pathlib import Path

import msgpack
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from cemreplay import synth, wire
from cemreplay.cli import main
from cemreplay.errors import ConfigError, DecodeError
from cemreplay.export import export_batches, export_events, partitions, read_partition

STR = ["session_id", "visitor_id", "target", "text"]


def canon(events: pl.DataFrame) -> pl.DataFrame:
    return events.with_columns(pl.col(c).cast(pl.String) for c in STR).sort(
        "session_id", "batch", "i"
    )


def test_batch_files_and_arrays_export_and_read_back(tmp_path: Path, capsys) -> None:
    events = synth.generate(sessions=40, seed=3).events
    batches = wire.encode(events)
    src = tmp_path / "batches"
    (src / "sub").mkdir(parents=True)
    half = len(batches) // 2
    for k, b in enumerate(batches[:half]):
        (src / "sub" / f"{k:04d}.bin").write_bytes(b)
    (src / "rest.msgpack").write_bytes(msgpack.packb(batches[half:]))
    out = tmp_path / "pq"
    assert main(["export", "--batches", str(src), "--parquet", str(out), "--partitions", "3"]) == 0
    assert "exported 40 sessions" in capsys.readouterr().out
    dirs = partitions(out)
    assert {d.parent.name for d in dirs} <= {f"visitor_bucket={k}" for k in range(3)}
    back = pl.concat([read_partition(d) for d in dirs])
    assert back.schema == events.schema
    assert_frame_equal(canon(back), canon(wire.decode(batches)))


def test_v3_batch_files_export_with_their_dictionary(tmp_path: Path) -> None:
    events = synth.generate(sessions=20, seed=4).events
    d = wire.learn_dictionary(events, site_key="demo", id=1, min_visitors=3)
    assert d is not None
    src = tmp_path / "batches.msgpack"
    src.write_bytes(msgpack.packb(wire.encode(events, dictionary=d)))
    with pytest.raises(DecodeError, match="dictionary 1 of site 'demo'"):
        export_batches([src], tmp_path / "none")
    assert not (tmp_path / "none").exists()
    result = export_batches([src], tmp_path / "pq", partitions=2, dictionaries=[d])
    assert result.sessions == 20
    back = pl.concat([read_partition(p) for p in partitions(tmp_path / "pq")])
    assert_frame_equal(canon(back), canon(events))


def test_bad_input_is_refused_and_nothing_written(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x93not a batch")
    with pytest.raises(DecodeError):
        export_batches([bad], tmp_path / "pq")
    assert not (tmp_path / "pq").exists()
    with pytest.raises(ConfigError, match="no batch file"):
        export_batches([tmp_path / "missing"], tmp_path / "pq")
    with pytest.raises(ConfigError, match="partitions must be"):
        export_events([], tmp_path / "pq2", partitions=0)
    with pytest.raises(ConfigError, match="not a finished"):
        partitions(tmp_path)
    assert main(["export", "--parquet", str(tmp_path / "x")]) == 2


def test_a_session_across_midnight_stays_in_its_first_day(tmp_path: Path) -> None:
    events = synth.generate(sessions=5, seed=1).events
    sid = events["session_id"][0]
    one = events.filter(pl.col("session_id") == sid)
    # Shift the session so that it starts just before midnight UTC and runs past it.
    t0, t1 = one["t"].min(), one["t"].max()
    start = (t0 // 86_400_000 + 1) * 86_400_000 - (t1 - t0) // 2
    one = one.with_columns(t=pl.col("t") - t0 + start)
    days = pl.from_epoch(one["t"], time_unit="ms").dt.date()
    assert days.n_unique() == 2, "the session runs past midnight"
    export_events([one], tmp_path / "pq", partitions=2)
    (d,) = partitions(tmp_path / "pq")
    assert d.name == f"day={days.min()}"
    assert read_partition(d).height == one.height


def test_an_empty_export_analyses_to_empty_tables_without_a_cluster(tmp_path: Path) -> None:
    from cemreplay.distributed import analyze_parquet

    r = export_events([], tmp_path / "pq")
    assert (r.events, r.partitions) == (0, 0)
    res = analyze_parquet(tmp_path / "pq")
    assert res.findings.height == res.sessions.height == res.page_report.height == 0
    assert res.totals["events"].item() == 0
