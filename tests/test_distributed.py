"""The Dask run equals the single-machine run, row for row, also when a worker dies mid-run."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

pytest.importorskip("distributed")

import cloudpickle
from distributed import Client

from cemreplay import synth
from cemreplay.detectors import detect
from cemreplay.distributed import (
    REPORT_KINDS,
    analyze_parquet,
    local_client,
    merge_reports,
    page_report,
    tasks,
    write_result,
)
from cemreplay.export import export_events, partitions, read_partition
from cemreplay.journeys import sessions
from cemreplay.schema import EventKind
from cemreplay.score import score

# The chaos reader below must reach the workers by value (they need not import tests/).
cloudpickle.register_pickle_by_value(sys.modules[__name__])

SESSIONS = 3_000


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, Path]:
    events = synth.generate(sessions=SESSIONS, seed=11).events
    out = tmp_path_factory.mktemp("export") / "pq"
    third = events["session_id"].unique().sort().to_list()[SESSIONS // 3]
    # Two chunks, each of whole sessions, as a store's iter_events gives them.
    chunks = [
        events.filter(pl.col("session_id").cast(pl.String) < third),
        events.filter(pl.col("session_id").cast(pl.String) >= third),
    ]
    export_events(chunks, out, partitions=4)
    return events, out


@pytest.fixture(scope="module")
def whole(data: tuple[pl.DataFrame, Path]) -> dict[str, pl.DataFrame]:
    events, _ = data
    found = detect(events)
    return {"findings": found, "sessions": sessions(events), "scores": score(found)}


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with local_client(2) as c:
        yield c


def check_same(result: Any, whole: dict[str, pl.DataFrame]) -> None:
    assert result.findings.height > 500
    assert set(result.findings["kind"]) >= {"excessive_scroll", "quick_back", "funnel_abandon"}
    for name in ("findings", "sessions", "scores"):
        assert_frame_equal(getattr(result, name), whole[name])


def test_export_keeps_sessions_whole(data: tuple[pl.DataFrame, Path]) -> None:
    events, out = data
    parts = [read_partition(p) for p in partitions(out)]
    assert len(parts) > 8  # 4 buckets x several days
    assert sum(p.height for p in parts) == events.height
    seen: set[str] = set()
    for p in parts:
        ids = set(p["session_id"].cast(pl.String).unique())
        assert not ids & seen, "a session is in two partitions"
        seen |= ids
    assert parts[0].schema == events.schema
    # Without the merged baselines the partitions judge pages by themselves alone.
    alone = pl.concat([detect(p) for p in parts]).sort(
        "session_id", "t", "kind", "page_view", "target", maintain_order=True
    )
    assert not alone.equals(detect(events))


def test_dask_equals_single_machine(
    data: tuple[pl.DataFrame, Path],
    whole: dict[str, pl.DataFrame],
    client: Client,
    tmp_path: Path,
) -> None:
    events, out = data
    ticks: list[tuple[int, int]] = []
    n = len(tasks(partitions(out), 150_000))
    assert 4 <= n < len(partitions(out))
    result = analyze_parquet(
        out, client, split_every=3, task_bytes=150_000, progress=lambda d, t: ticks.append((d, t))
    )
    check_same(result, whole)
    assert ticks[0][0] == 0 and ticks[-1][0] == ticks[-1][1] == 3 * n
    assert result.totals["partitions"].item() == len(partitions(out))
    assert result.totals["tasks"].item() == n
    # The report tables are a tree reduction of the partitions' partials; equal to the whole's.
    pages, totals = page_report(events, whole["findings"])
    assert_frame_equal(result.page_report, pages)
    assert totals["events"].item() == result.totals["events"].item() == events.height
    assert result.totals["sessions"].item() == whole["sessions"].height
    assert result.totals["findings"].item() == whole["findings"].height
    assert result.page_report["findings"].sum() == whole["findings"].height
    files = write_result(result, tmp_path / "res")
    assert_frame_equal(pl.read_parquet(files[0]), result.findings)


def test_reports_merge_in_any_grouping(data: tuple[pl.DataFrame, Path]) -> None:
    events, _ = data
    found = detect(events)
    first = pl.col("session_id").cast(pl.String).str.contains(r"^[0-9A-H]")
    halves = [events.filter(first), events.filter(~first)]
    parts = [
        page_report(
            h, found.filter(pl.col("session_id").is_in(h["session_id"].cast(pl.String).implode()))
        )
        for h in halves
    ]
    pages, totals = merge_reports(parts)
    want_pages, want_totals = page_report(events, found)
    # The page report against direct counts, for its first page.
    top = want_pages.row(0, named=True)
    views = events.filter(
        (pl.col("kind") == int(EventKind.PAGE_VIEW))
        & (pl.col("target").cast(pl.String) == top["page_url"])
    )
    on_top = found.filter(pl.col("page_url") == top["page_url"])
    assert top["page_views"] == views.height and top["sessions"] == views["session_id"].n_unique()
    assert top["findings"] == on_top.height == sum(top[k] for k in REPORT_KINDS)
    assert top["struggling_sessions"] == on_top["session_id"].n_unique()
    assert want_pages["page_views"].sum() == (events["kind"] == int(EventKind.PAGE_VIEW)).sum()
    assert_frame_equal(pages, want_pages)
    assert_frame_equal(totals.drop("partitions"), want_totals.drop("partitions"))


class DieOnce:
    """A partition reader that kills its worker process the first time it reads the chosen
    partition (a marker file remembers), as a crash or an OOM kill would."""

    def __init__(self, marker: Path, victim: Path) -> None:
        self.marker, self.victim = marker, victim

    def __call__(self, path: Path) -> pl.DataFrame:
        if path == self.victim and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os._exit(1)
        return read_partition(path)


def test_a_worker_killed_mid_run(
    data: tuple[pl.DataFrame, Path],
    whole: dict[str, pl.DataFrame],
    client: Client,
    tmp_path: Path,
) -> None:
    _, out = data
    marker = tmp_path / "killed"
    victim = partitions(out)[3]
    before = set(client.scheduler_info()["workers"])
    result = analyze_parquet(out, client, reader=DieOnce(marker, victim), task_bytes=1)
    assert marker.exists(), "the worker was killed"
    check_same(result, whole)
    client.wait_for_workers(2, timeout=30)
    assert set(client.scheduler_info()["workers"]) != before  # the nanny started a new one


def test_cli_export_then_analyze_on_a_scheduler(
    client: Client, tmp_path: Path, capsys: Any
) -> None:
    from cemreplay import wire
    from cemreplay.cli import main
    from cemreplay.store import open_store

    db = tmp_path / "s.db"
    with open_store(db) as st:
        st.put_batches(wire.encode(synth.generate(sessions=300, seed=5).events))
        events = st.events()
    pq, res = tmp_path / "pq", tmp_path / "res"
    assert main(["export", "--db", str(db), "--parquet", str(pq), "--partitions", "3"]) == 0
    assert "exported 300 sessions" in capsys.readouterr().out
    assert main(["export", "--db", str(db), "--parquet", str(pq)]) == 2  # not empty: refused
    assert "not empty" in capsys.readouterr().err
    address = client.scheduler.address
    argv = ["analyze", "--parquet", str(pq), "--scheduler", address, "--out", str(res)]
    assert main(argv) == 0
    cap = capsys.readouterr()
    assert "300 sessions" in cap.out and " tasks " in cap.err
    assert_frame_equal(pl.read_parquet(res / "findings.parquet"), detect(events))
    assert_frame_equal(pl.read_parquet(res / "sessions.parquet"), sessions(events))
    assert main(["analyze", "--db", str(db), "--local-workers", "2"]) == 2
    with pytest.raises(SystemExit):
        main(["analyze", "--db", str(db), "--parquet", str(pq)])
    assert main(["analyze", "--parquet", str(tmp_path)]) == 2  # not an export
    assert "not a finished cemreplay export" in capsys.readouterr().err


def test_a_store_of_v3_batches_through_export_and_dask(client: Client, tmp_path: Path) -> None:
    """Batches sent in wire version 3 (naming the site's dictionary) are stored, exported and
    analysed on the cluster as their events: the same findings as analysing them at once."""
    from cemreplay import wire
    from cemreplay.export import export_store
    from cemreplay.store import open_store

    events = synth.generate(sessions=600, seed=12).events
    d = wire.learn_dictionary(events, site_key="demo", id=7, min_visitors=5)
    assert d is not None and len(d.strings) > 20
    batches = wire.encode(events, site_key="demo", dictionary=d)
    assert all(b[1] == 3 for b in batches)  # every batch names the dictionary
    db = tmp_path / "s.db"
    with open_store(db) as st:
        st.put_dictionary(d)
        assert all(o.ok for o in st.put_batches(batches, scrub=False))
    export_store(db, tmp_path / "pq", partitions=3, chunk_visitors=100)
    result = analyze_parquet(tmp_path / "pq", client, task_bytes=100_000)
    # the cluster saw the decoded events (the dictionary's strings, not references)
    stored = pl.concat([read_partition(p) for p in partitions(tmp_path / "pq")])
    assert stored.height == events.height
    assert set(stored["target"].cast(pl.String).drop_nulls()) == set(
        events["target"].cast(pl.String).drop_nulls()
    )
    found = detect(events)
    assert found.height > 50
    assert_frame_equal(result.findings, found)
    assert_frame_equal(result.scores, score(found))
