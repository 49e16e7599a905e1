"""decode on several threads (cemreplay.wire.parallel): the same report as one thread."""

from __future__ import annotations

import random
import threading

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings

from cemreplay import synth, wire
from cemreplay.errors import ConfigError
from cemreplay.wire import _codes as C
from cemreplay.wire import parallel
from cemreplay.wire.decode import DecodeReport
from tests.test_wire_errors import BAD, good_fields, pack
from tests.test_wire_fuzz import DICT, mutated


@pytest.fixture(autouse=True)
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every input is worth all its threads here (the default keeps small inputs on one)."""
    monkeypatch.setattr(parallel, "MIN_BYTES_PER_THREAD", 1)


def same(a: DecodeReport, b: DecodeReport) -> None:
    assert a.events.equals(b.events)
    assert a.events.schema == b.events.schema
    assert a.batches.equals(b.batches)
    assert a.quarantined == b.quarantined
    assert a.duplicates == b.duplicates


def messy() -> list[bytes]:
    """Synthetic traffic shuffled, with repeats, conflicts and bad batches mixed in; half the
    sessions in v3 with the dictionary :data:`DICT`, a few in v3 naming a dictionary not
    given."""
    events = synth.generate(sessions=40, seed=3).events
    sid = events["session_id"].cast(pl.String)
    good = (
        wire.encode(events.filter(sid < "B"))
        + wire.encode(events.filter((sid >= "B") & (sid < "X")), dictionary=DICT)
        + wire.encode(events.filter(sid >= "X"), dictionary=wire.Dictionary("demo", 8, ("x",)))
    )
    rng = random.Random(5)
    out = [*good, *rng.sample(good, 10)]  # exact repeats: kept once
    f = good_fields()
    out += [
        pack(f),
        pack([*f[:5], 1_700_000_000_999, *f[6:]]),  # same session and seq, other bytes
        pack([*good_fields(seq=1)[:2], "v2", *good_fields(seq=1)[3:]]),  # visitor changes
        pack([*good_fields(seq=2)[:7], ["/x", "button#buy"], *good_fields(seq=2)[8:]]),
        pack([f[0], "k" * 120, "v" * 120, "s-long", *f[4:]]),  # session past the head
        pack([f[0], "k" * 120, "v" * 120, "s-long", 1, *f[5:]]),
        pack([f[0], "k", "v", b"\xff\xfe".decode("latin-1"), *f[4:]]),  # a non-ASCII session_id
    ]
    bad_utf8 = bytearray(pack(good_fields(session="s\x7f")))
    bad_utf8[bad_utf8.index(b"s\x7f") + 1] = 0xFF  # session_id not UTF-8
    out += [bytes(bad_utf8), *(data for _, data, _ in BAD)]
    rng.shuffle(out)
    return out


@pytest.mark.parametrize("threads", [2, 3, 5])
def test_threads_give_the_one_thread_report(threads: int) -> None:
    batches = messy()
    one = wire.decode_report(batches, dictionaries=[DICT])
    assert one.quarantined and one.duplicates >= 5  # the mix has all of them
    assert {q.code for q in one.quarantined} >= {C.UNKNOWN_DICTIONARY, C.DUPLICATE_CONFLICT}
    assert sum(1 for b in batches if b[1:2] == b"\x03") > 20  # v3 batches
    assert len(parallel.session_parts(batches, threads)) == threads  # really split
    many = wire.decode_report(batches, threads=threads, dictionaries=[DICT])
    same(many, one)
    assert set(many.events.n_chunks("all")) == {1}  # one chunk, as one thread gives
    with pytest.warns(UserWarning):
        assert wire.decode(
            batches, errors="quarantine", threads=threads, dictionaries=[DICT]
        ).equals(one.events)


def test_parts_hold_whole_sessions_in_order() -> None:
    batches = messy()
    parts = parallel.session_parts(batches, 4)
    seen = sorted(int(k) for p in parts for k in p)
    assert seen == list(range(len(batches)))
    last = None
    for p in parts:
        assert list(p) == sorted(p)  # input order within a part
        report = wire.decode_report([batches[k] for k in p])
        names = report.events["session_id"].cast(pl.String).unique().sort().to_list()
        if names:
            assert last is None or last < names[0]  # every session after the last part's
            last = names[-1]


def test_the_session_is_read_past_the_head() -> None:
    f = good_fields()
    batch = pack([f[0], "k" * 120, "v" * 120, "s-long", *f[4:]])
    assert batch.index(b"s-long") > parallel.HEAD
    buf, off, length = parallel._spans([batch, b"\x93"], np.array([len(batch), 1]))
    assert bytes(buf[off[0] : off[0] + length[0]]) == b"s-long"
    assert length[1] == -1


def test_small_input_stays_on_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "MIN_BYTES_PER_THREAD", 1 << 30)
    monkeypatch.setattr(parallel, "session_parts", None)  # would fail if called
    batches = wire.encode(synth.generate(sessions=3, seed=1).events)
    same(wire.decode_report(batches, threads=4), wire.decode_report(batches))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_threads_must_be_a_positive_int(bad: object) -> None:
    with pytest.raises(ConfigError, match="threads must be"):
        wire.decode([pack(good_fields())], threads=bad)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=10_000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_batches(batches: list[bytes]) -> None:
    same(
        wire.decode_report(batches, threads=3, dictionaries=[DICT]),
        wire.decode_report(batches, dictionaries=[DICT]),
    )


def test_good_parts_decode_into_one_set_of_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every part writes its slice of the same columns: the table is made from them, with no
    copy to join the parts (the shared columns are the ones the table is built from)."""
    made: list[dict[str, np.ndarray]] = []
    real = parallel.events_table

    def spy(cols: dict[str, np.ndarray]) -> pl.DataFrame:
        made.append(cols)
        return real(cols)

    monkeypatch.setattr(parallel, "events_table", spy)
    batches = wire.encode(synth.generate(sessions=30, seed=2).events)
    made_by: list[parallel._Shared] = []
    real_shared = parallel._Shared

    def shared(parts: int) -> parallel._Shared:
        made_by.append(real_shared(parts))
        return made_by[-1]

    monkeypatch.setattr(parallel, "_Shared", shared)
    report = wire.decode_report(batches, threads=3)
    same(report, wire.decode_report(batches))
    assert len(made) == 1 and len(made_by) == 1
    views = made_by[0].views
    assert all(v is not None for v in views)
    # each part's slice is a view of the one column the table was made from
    assert all(np.shares_memory(v["t"], made[0]["t"]) for v in views if v)  # type: ignore[index]
    assert sum(len(v["t"]) for v in views if v) == report.events.height


def test_a_part_that_fails_first_time_gets_columns_of_its_own() -> None:
    """A bad batch makes its part decode again (fewer events than its slice): the parts are
    then joined by copying, and the table is still the one-thread table."""
    batches = wire.encode(synth.generate(sessions=30, seed=2).events)
    batches[4] = batches[4][:-2]  # truncated: quarantined in the first attempt
    many = wire.decode_report(batches, threads=3)
    assert many.quarantined[0].index == 4 and many.events.height  # (and its session)
    same(many, wire.decode_report(batches))


def test_an_error_in_one_part_does_not_leave_the_others_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = parallel.decode_columns

    def boom(buf: np.ndarray, *a: object, **kw: object) -> object:
        if len(buf) < 10**9 and threading.current_thread() is not threading.main_thread():
            raise MemoryError("no room for part")
        return real(buf, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(parallel, "decode_columns", boom)
    batches = wire.encode(synth.generate(sessions=30, seed=2).events)
    done = threading.Event()
    caught: list[BaseException] = []

    def go() -> None:
        try:
            wire.decode_report(batches, threads=3)
        except MemoryError as e:
            caught.append(e)
        finally:
            done.set()

    threading.Thread(target=go, daemon=True).start()
    assert done.wait(60), "decode_threads hung after a part failed"
    assert caught and "no room" in str(caught[0])
