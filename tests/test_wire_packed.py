"""Batches handed to the decoder back to back in one buffer (``wire.PackedBatches``), and the
interning keys of the decoder's string tables."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cemreplay import wire
from cemreplay.errors import ConfigError
from tests.test_wire_errors import GOOD, good_fields, good_fields_v2, pack
from tests.wire_strategies import event_tables


def packed(batches: list[bytes], prefix: bytes = b"") -> wire.PackedBatches:
    offsets = np.cumsum([len(prefix)] + [len(b) for b in batches])
    return wire.PackedBatches(prefix + b"".join(batches), offsets)


@settings(max_examples=40, deadline=None)
@given(events=event_tables(), prefix=st.binary(max_size=20), version=st.sampled_from([1, 2, 0]))
def test_packed_decodes_like_a_list(events: pl.DataFrame, prefix: bytes, version: int) -> None:
    """Same table from the buffer as from the list, by both engines, whatever lies before
    the first batch (the offsets say where batches are), and with no bytes after the last
    one (the kernels read the last strings byte by byte there). Version 0 here: v3 with
    a site dictionary."""
    d = wire.Dictionary("demo", 3, ("/", "button#buy", "Æøå ✓", "a" * 300))
    batches = (
        wire.encode(events, dictionary=d) if version == 0 else wire.encode(events, version=version)
    )
    p = packed(batches, prefix)
    assert wire.decode(p, dictionaries=[d]).equals(events)
    assert wire.decode(p, engine="python", dictionaries=[d]).equals(events)
    as_array = wire.PackedBatches(np.frombuffer(p.data, np.uint8), list(p.offsets))
    assert wire.decode(as_array, dictionaries=[d]).equals(events)


def test_packed_quarantine_names_the_same_batches() -> None:
    bad = bytes(pack(good_fields(session="s9"))[:-1])  # cut short
    batches = [GOOD, bad, pack(good_fields_v2(session="s2")), GOOD]
    fast = wire.decode_report(packed(batches))
    ref = wire.decode_report(batches, engine="python")
    assert fast.quarantined == ref.quarantined
    assert [q.index for q in fast.quarantined] == [1]
    assert fast.duplicates == ref.duplicates == 1
    assert fast.events.equals(ref.events)


@pytest.mark.parametrize(
    ("offsets", "fragment"),
    [
        ([0, 5, 3], "offsets[1] > offsets[2]"),
        ([0, 99], "within the 10 bytes"),
        ([], "n + 1 integer offsets"),
        ([[0, 1]], "n + 1 integer offsets"),
        ([0.0, 1.0], "n + 1 integer offsets"),
    ],
)
def test_packed_offsets_are_checked(offsets: list[object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        wire.decode(wire.PackedBatches(b"0123456789", offsets))  # type: ignore[arg-type]


def test_packed_with_no_batches() -> None:
    assert wire.decode(wire.PackedBatches(b"", [0])).height == 0
    assert len(wire.PackedBatches(b"", [0])) == len(wire.PackedBatches(b"", [], [])) == 0
    assert len(wire.PackedBatches(b"", [])) == 0  # no offsets at all: arrays() says so
    with pytest.raises(ConfigError, match="n \\+ 1 integer offsets"):
        wire.PackedBatches(b"", []).arrays()


@settings(max_examples=30, deadline=None)
@given(events=event_tables(), gap=st.binary(max_size=9), data=st.data())
def test_packed_with_lengths_decodes_the_batches_it_names(
    events: pl.DataFrame, gap: bytes, data: st.DataObject
) -> None:
    """With ``lengths``, ``offsets`` are starts: any of the buffer's batches, in any order,
    with other bytes between them, decode as the list of those batches (both engines, the
    same table and the same quarantine: a subset may leave a session's string undefined;
    a batch's ``index`` is its place among the starts)."""
    batches = wire.encode(events)
    buf = gap.join(batches) + gap
    starts = np.cumsum([0] + [len(b) + len(gap) for b in batches[:-1]])
    order = data.draw(st.permutations(range(len(batches))))
    pick = order[: data.draw(st.integers(0, len(batches)))]
    p = wire.PackedBatches(buf, starts[pick], [len(batches[k]) for k in pick])
    chosen = [batches[k] for k in pick]
    assert len(p) == len(chosen)
    want = wire.decode_report(chosen)
    for engine in ("numba", "python"):
        got = wire.decode_report(p, engine=engine)  # type: ignore[arg-type]
        assert got.events.equals(want.events)
        assert got.quarantined == want.quarantined
    cut = wire.PackedBatches(buf, starts[pick], [len(batches[k]) - 1 for k in pick])
    assert [q.index for q in wire.decode_report(cut).quarantined] == list(range(len(pick)))


@pytest.mark.parametrize(
    ("starts", "lengths", "fragment"),
    [
        ([0, 5], [5], "as many (a start and a length per batch), got 2 and 1"),
        ([0, 8], [5, 3], "batch 1 (offset 8, length 3) does not lie within the 10 bytes"),
        ([0, -1], [5, 1], "batch 1 (offset -1, length 1)"),
        ([0, 2], [5, -1], "batch 1 (offset 2, length -1)"),
        ([[0]], [[1]], "offsets must be n integers when lengths are given"),
        ([0], [1.5], "lengths must be n integers when lengths are given"),
    ],
)
def test_packed_starts_and_lengths_are_checked(
    starts: list[object], lengths: list[object], fragment: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        wire.decode(wire.PackedBatches(b"0123456789", starts, lengths))  # type: ignore[arg-type]


def test_interning_keys_compare_every_byte_of_long_strings() -> None:
    """Strings over 24 bytes are keyed by their first 16 and last 8 bytes; two that differ
    only in between must still get two ids (and equal ones one)."""
    from tests.test_wire_roundtrip import _interned

    base = bytes(range(65, 65 + 40))
    mid = base[:20] + b"#" + base[21:]  # differs at byte 20: neither in w0, w1 nor wt
    assert _interned([base, mid, base, mid]) == ([0, 1, 0, 1], [base, mid])
    edge = [b"a" * n for n in (15, 16, 17, 24, 25)] + [b"a" * 16 + b"b" * 9]
    assert _interned(edge + edge) == ([*range(6), *range(6)], edge)
