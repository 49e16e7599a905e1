"""The end-to-end pipeline and its out-of-core runs give what the stages give over all input.

Chunked runs use tiny chunks (tens of visitors) so that many chunks, and chunk edges, occur.
With ``baselines="chunk"`` the two kinds that compare a page view with every page view of its
URL (``excessive_scroll``, ``quick_back``) use each chunk's own baselines and are left out.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from cemreplay import detect, pipeline, score, synth, wire
from cemreplay.errors import ConfigError, DecodeError
from cemreplay.journeys import sessions
from cemreplay.outofcore import (
    BatchFileError,
    read_file,
    read_results,
    run_dir,
    run_store,
    write_file,
)
from cemreplay.store import open_store

BASELINE_KINDS = ["excessive_scroll", "quick_back"]


@pytest.fixture(scope="module")
def traffic() -> tuple[list[bytes], tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]]:
    events = synth.generate(sessions=200, seed=7).events
    batches = wire.encode(events)
    decoded = wire.decode(batches)
    found = detect(decoded)
    return batches, (sessions(decoded), found, score(found))


def check_same(got: tuple[pl.DataFrame, ...], want: tuple[pl.DataFrame, ...], exact: bool) -> None:
    ses, found, scores = got
    assert_frame_equal(ses, want[0])
    if exact:
        assert_frame_equal(found, want[1])
        assert_frame_equal(scores, want[2])
        return
    keep = ~pl.col("kind").is_in(BASELINE_KINDS)
    assert_frame_equal(found.filter(keep), want[1].filter(keep))
    assert found.height > 100


def test_plan_chunks_keeps_each_visitor_whole(traffic):
    batches, _ = traffic
    plan = pipeline.plan_chunks(batches, chunk_bytes=5_000)
    assert len(plan) > 10
    assert sorted(k for c in plan for k in c) == list(range(len(batches)))
    owner = {}
    for n, chunk in enumerate(plan):
        for k in chunk:
            v = pipeline.visitor_key(batches[k])
            assert v
            assert owner.setdefault(v, n) == n, "a visitor was cut between chunks"


def _plan_by_dict(batches, chunk_bytes):
    """plan_chunks' rule read plainly: visitors by first batch, closed at chunk_bytes."""
    groups: dict[bytes, list[int]] = {}
    for k, b in enumerate(batches):
        groups.setdefault(pipeline.visitor_key(b), []).append(k)
    out, cur, size = [], [], 0
    for idx in groups.values():
        cur += idx
        size += sum(len(batches[k]) for k in idx)
        if size >= chunk_bytes:
            out, cur, size = [*out, cur], [], 0
    return [*out, cur] if cur else out


@pytest.mark.parametrize("chunk_bytes", [1, 5_000, 40_000, 10**9])
def test_plan_chunks_is_the_plain_rule(traffic, chunk_bytes):
    batches, _ = traffic
    odd = [b"", b"\x9d\x01garbage", b"\x93\x01\x02\x03", batches[3][:9], batches[5][:20]]
    mixed = [*batches[:30], *odd, *batches[30:], odd[1]]
    assert pipeline.plan_chunks(mixed, chunk_bytes) == _plan_by_dict(mixed, chunk_bytes)
    assert pipeline.plan_chunks([], chunk_bytes) == []


def test_visitor_key_of_garbage_is_empty():
    assert pipeline.visitor_key(b"") == b""
    assert pipeline.visitor_key(b"\x9d\x01\xc0") == b""
    assert pipeline.visitor_key(b"\x93\x01\x02\x03") == b""


@pytest.mark.parametrize("mode", ["serial", "thread", "overlap", "inmemory"])
def test_run_in_tiny_chunks_equals_the_stages(traffic, mode):
    batches, want = traffic
    got = pipeline.run(batches, mode=mode, workers=2, chunk_bytes=12_000)
    assert got.chunks > 5 and got.exact
    assert got.events == want[0]["events"].sum()
    check_same((got.sessions, got.findings, got.scores), want, True)


@pytest.mark.parametrize("mode", ["serial", "overlap", "process"])
def test_progress_counts_each_chunk_once(traffic, mode):
    batches, want = traffic
    calls: list[tuple[int, int]] = []
    got = pipeline.run(
        batches,
        mode=mode,
        workers=2,
        chunk_bytes=30_000,
        progress=lambda d, n: calls.append((d, n)),
    )
    assert got.chunks > 2
    assert calls == [(k, got.chunks) for k in range(1, got.chunks + 1)]
    check_same((got.sessions, got.findings, got.scores), want, True)


def test_chunk_baselines_differ_only_in_the_baseline_kinds(traffic):
    batches, want = traffic
    got = pipeline.run(batches, mode="serial", chunk_bytes=12_000, baselines="chunk")
    assert not got.exact
    check_same((got.sessions, got.findings, got.scores), want, False)
    with pytest.raises(ConfigError, match="baselines must be"):
        pipeline.run(batches, mode="serial", baselines="some")


def test_run_in_one_chunk_is_exact_for_every_kind(traffic):
    batches, want = traffic
    got = pipeline.run(batches, mode="serial")
    assert got.chunks == 1 and got.exact
    check_same((got.sessions, got.findings, got.scores), want, True)


def test_run_on_worker_processes(traffic):
    batches, want = traffic
    with pipeline.Pool(2, mode="process") as pool:
        got = pipeline.run(batches, pool=pool, chunk_bytes=20_000)
    assert len(got.peak_rss) == 3  # the parent and both workers took part
    check_same((got.sessions, got.findings, got.scores), want, got.exact)
    assert got.exact


def test_inmemory_decodes_each_chunk_once(traffic, monkeypatch):
    """One chunk per thread by default, each decoded once (the page baselines come from the
    decoded chunks, not from a second decode), and the stages' results, every kind exact."""
    batches, want = traffic
    decoded: list[int] = []
    real = pipeline.decode_report

    def counting(chunk, **kw):
        decoded.append(len(chunk))
        return real(chunk, **kw)

    monkeypatch.setattr(pipeline, "decode_report", counting)
    got = pipeline.run(batches, mode="inmemory", workers=2)
    assert got.chunks == 2 and got.exact
    assert len(decoded) == 2 and sum(decoded) == len(batches)
    check_same((got.sessions, got.findings, got.scores), want, True)
    one = pipeline.run(batches, mode="inmemory", workers=2, baselines="chunk")
    assert not one.exact
    check_same((one.sessions, one.findings, one.scores), want, False)


@pytest.mark.parametrize("mode", ["serial", "overlap", "inmemory"])
def test_bad_batch_is_named_by_its_input_position(traffic, mode):
    batches, _ = traffic
    bad = [*batches[:40], b"\x9d\x01garbage", *batches[40:]]
    with pytest.raises(DecodeError, match="batch 40"):
        pipeline.run(bad, mode=mode, chunk_bytes=40_000)
    got = pipeline.run(bad, mode=mode, chunk_bytes=40_000, errors="quarantine")
    assert [q.index for q in got.quarantined] == [40]


@pytest.mark.parametrize("mode", ["serial", "overlap", "inmemory", "process"])
def test_v3_batches_with_their_dictionary_give_the_stages_results(traffic, mode):
    """Wire v3 batches (a site dictionary learned from the traffic) analyse as their v2
    twins when the run is given the dictionary (in every mode: process workers get it
    too); without it every one of them is a bad batch."""
    batches, want = traffic
    events = wire.decode(batches)
    d = wire.learn_dictionary(events, site_key="demo", id=2, min_visitors=5)
    assert d is not None and len(d.strings) > 20
    v3 = wire.encode(events, dictionary=d)
    assert sum(map(len, v3)) < 0.9 * sum(map(len, batches))
    got = pipeline.run(v3, mode=mode, workers=2, chunk_bytes=12_000, dictionaries=[d])
    assert got.chunks > 5 and got.exact and not got.quarantined
    check_same((got.sessions, got.findings, got.scores), want, True)
    with pytest.raises(DecodeError, match="dictionary 2 of site 'demo'"):
        pipeline.run(v3, mode=mode, workers=2, chunk_bytes=12_000)
    none = pipeline.run(v3, mode="serial", chunk_bytes=12_000, errors="quarantine")
    assert len(none.quarantined) == len(v3) and none.events == 0


def test_overlap_one_pass_differs_only_in_the_baseline_kinds(traffic):
    batches, want = traffic
    got = pipeline.run(batches, mode="overlap", chunk_bytes=12_000, baselines="chunk")
    assert got.chunks > 5 and not got.exact
    check_same((got.sessions, got.findings, got.scores), want, False)


def test_every_thread_keeps_job_order_and_raises_the_first_error():
    with pipeline.Pool(2, mode="overlap", warm=False) as pool:
        assert pipeline.every_thread(pool, lambda k: k * k, [(k,) for k in range(50)]) == [
            k * k for k in range(50)
        ]

        def boom(k: int) -> int:
            if k == 7:
                raise ValueError("job 7")
            return k

        with pytest.raises(ValueError, match="job 7"):
            pipeline.every_thread(pool, boom, [(k,) for k in range(50)])


def test_pipeline_threads_run_their_detectors_on_one_thread():
    """Inside the pipeline's threads the detectors do not split their kernels again (the
    outer threads already keep the cores busy); elsewhere they still do."""
    from cemreplay.detectors import _parallel

    with _parallel.threads(2, min_rows=10):
        assert len(_parallel.row_parts(100)) == 2
        with pipeline.Pool(2, mode="overlap", warm=False) as pool:
            seen = pipeline.every_thread(
                pool, lambda k: len(_parallel.row_parts(100)), [(k,) for k in range(8)]
            )
        assert seen == [1] * 8
        assert len(_parallel.row_parts(100)) == 2
        with pipeline.Pool(1, mode="serial", warm=False) as one:
            assert pipeline.every_thread(one, lambda: len(_parallel.row_parts(100)), [()]) == [2]


def batch_dir(batches, root: Path) -> tuple[Path, list[list[int]]]:
    """The batches as a batch directory, a file per chunk of a few visitors."""
    plan = pipeline.plan_chunks(batches, chunk_bytes=12_000)
    src = root / "in"
    src.mkdir()
    for n, chunk in enumerate(plan):
        write_file(src / f"part-{n:04d}.cemb", [batches[k] for k in chunk])
    return src, plan


def test_batch_directory_in_bounded_chunks_equals_the_stages(traffic, tmp_path: Path):
    batches, want = traffic
    src, plan = batch_dir(batches, tmp_path)
    got = run_dir(src, pool=pipeline.Pool(mode="serial"))
    assert got.chunks == len(plan) > 5 and got.exact
    check_same((got.sessions, got.findings, got.scores), want, True)
    with pipeline.Pool(2, mode="overlap", warm=False) as pool:  # its threads take the files
        threaded = run_dir(src, pool=pool)
    check_same((threaded.sessions, threaded.findings, threaded.scores), want, True)
    out = tmp_path / "out"
    written = run_dir(src, out=out, pool=pipeline.Pool(mode="serial"), files_per_chunk=2)
    assert written.findings.height == 0 and written.events == got.events
    check_same(read_results(out), want, written.exact)
    # the first step's tables are gone once each chunk is finished
    parts = (len(plan) + 1) // 2
    assert sorted(p.name.split("-")[0] for p in out.iterdir()) == sorted(
        ["findings", "scores", "sessions"] * parts
    )


def test_batch_directory_files_are_read_once(traffic, tmp_path: Path, monkeypatch):
    """Exact baselines without a second pass over the files: each is read (and decoded)
    once, and the results are the stages'."""
    import cemreplay.outofcore as ooc

    batches, want = traffic
    src, plan = batch_dir(batches, tmp_path)
    reads: list[str] = []
    real = ooc.read_file

    def counting(path):
        reads.append(str(path))
        return real(path)

    monkeypatch.setattr(ooc, "read_file", counting)
    for out in (None, tmp_path / "out"):
        reads.clear()
        got = run_dir(src, out=out, pool=pipeline.Pool(mode="serial"))
        assert got.exact and sorted(reads) == sorted(set(reads)) and len(reads) == len(plan)
        check_same(
            read_results(out) if out else (got.sessions, got.findings, got.scores), want, True
        )


def test_truncated_batch_file_is_refused(tmp_path: Path):
    p = tmp_path / "a.cemb"
    write_file(p, [b"abc", b"defg"])
    p.write_bytes(p.read_bytes()[:-2])
    with pytest.raises(BatchFileError, match="runs past the end"):
        read_file(p)


def test_store_in_visitor_chunks_equals_the_stages_over_its_events(traffic, tmp_path: Path):
    batches, _ = traffic
    with open_store(tmp_path / "s.db") as st:
        st.put_batches(batches)
        events = st.events()
    found = detect(events)
    want = (sessions(events), found, score(found))
    got = run_store(tmp_path / "s.db", chunk_visitors=25, pool=pipeline.Pool(mode="serial"))
    assert got.chunks > 5 and got.exact
    check_same((got.sessions, got.findings, got.scores), want, True)
    out = tmp_path / "out"
    run_store(tmp_path / "s.db", chunk_visitors=60, out=out, pool=pipeline.Pool(mode="serial"))
    check_same(read_results(out), want, True)


def test_inmemory_frees_its_copy_of_the_input_once_decoded(traffic, monkeypatch):
    """``inmemory`` copies the input into one buffer; once the last chunk is decoded nothing
    holds it, so it is gone before the tables are prepared (memory: it is the input's size
    again, beside the decoded tables)."""
    import weakref

    batches, want = traffic
    copies: list[weakref.ref] = []
    alive_at_prepare: list[bool] = []
    real_flatten, real_prepare = pipeline._flatten, pipeline.prepare

    def flatten(items):
        buf, starts, lens = real_flatten(items)
        copies.append(weakref.ref(buf))
        return buf, starts, lens

    def prepare(events):
        alive_at_prepare.append(copies[-1]() is not None)
        return real_prepare(events)

    monkeypatch.setattr(pipeline, "_flatten", flatten)
    monkeypatch.setattr(pipeline, "prepare", prepare)
    got = pipeline.run(batches, mode="inmemory", workers=1)
    assert got.chunks == 1 and len(copies) == 1
    assert alive_at_prepare == [False]
    check_same((got.sessions, got.findings, got.scores), want, True)
