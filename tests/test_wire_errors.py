"""Bad input: every fault is a DecodeError naming the batch and offset; nothing good is lost."""

from __future__ import annotations

from typing import Any

import msgpack
import polars as pl
import pytest

from cemreplay import wire
from cemreplay.errors import DecodeError, WireVersionError
from cemreplay.schema import EVENT_SCHEMA

ENGINES = ["numba", "python"]


def good_fields(session: str = "s1", seq: int = 0) -> list[Any]:
    """A valid batch as a msgpack list: page view of "/" then a click on "button#buy"."""
    return [
        1,
        "k",
        "v1",
        session,
        seq,
        1_700_000_000_000,
        0,
        ["/", "button#buy"],
        2,
        bytes([1, 3]),
        bytes([0x00, 0xF4, 0x03]),
        bytes.fromhex("8014a00b0200b712cf0a800102"),
        bytes([1, 0, 2]),
    ]


def good_fields_v2(session: str = "s1", seq: int = 0) -> list[Any]:
    """The same two events in wire format v2 (docs/wire-format.md, the v2 worked example)."""
    f = good_fields(session, seq)
    f[0] = 2
    f[9] = bytes([0x01, 0x03])  # runs: PAGE_VIEW x1, CLICK x1
    f[10] = bytes([0x01, 0xFB, 0x01])  # steps + 1: 0, 250
    f[11] = bytes.fromhex("8014a00b0200c80150800102")  # changes per kind, from 0
    return f


def pack(fields: list[Any]) -> bytes:
    return msgpack.packb(fields, use_bin_type=True)


def with_field(k: int, value: Any, **kw: Any) -> bytes:
    f = good_fields(**kw)
    f[k] = value
    return pack(f)


GOOD = pack(good_fields(session="s0"))  # its own session: faults below are not duplicates

# (name, batch bytes, expected reason fragment)
BAD: list[tuple[str, bytes, str]] = [
    ("empty", b"", "truncated"),
    ("truncated", GOOD[:-3], "truncated"),
    ("a map", msgpack.packb({"v": 1}), "not a msgpack array of 13"),
    ("12 elements", pack(good_fields()[:12]), "not a msgpack array of 13"),
    ("trailing", GOOD + b"\x00", "bytes follow"),
    ("version as str", with_field(0, "1"), "version has the wrong msgpack type"),
    ("negative seq", with_field(4, -1), "seq is out of range"),
    ("float ts", with_field(5, 1.5), "base_ts has the wrong msgpack type"),
    ("ts too big", with_field(5, 2**60), "base_ts is out of range"),
    ("ext type", with_field(3, msgpack.ExtType(5, b"xx")), "session_id has the wrong msgpack type"),
    ("empty session", with_field(3, ""), "session_id is empty"),
    ("long id", with_field(2, "v" * 129), "visitor_id is longer than the limit"),
    ("oversized string", with_field(7, ["x" * 5000]), "strings[0] is longer than the limit"),
    ("bin where str", with_field(7, [b"/"]), "strings[0] has the wrong msgpack type"),
    ("kinds as str", with_field(9, "\x01\x03"), "kinds has the wrong msgpack type"),
    ("count claims more", with_field(8, 50_000), "kinds must hold exactly n bytes"),
    ("too many events", with_field(8, 70_000), "n holds more items"),
    ("unknown kind", with_field(9, bytes([1, 250])), "event 1 has an unknown kind"),
    ("cut varint", with_field(10, bytes([0x00, 0xF4])), "a varint in times is cut short"),
    ("leftover", with_field(12, bytes([1, 0, 2, 0])), "refs has bytes left over"),
    (
        "index out of range",
        with_field(12, bytes([1, 0, 9])),
        "refers past the batch's string table",
    ),
    ("bin where site key", with_field(1, b"k"), "site_key has the wrong msgpack type"),
    (
        "negative time",
        pack([*good_fields()[:5], 0, *good_fields()[6:10], bytes([1, 0]), *good_fields()[11:]]),
        "time is outside",
    ),
]


def with_field_v2(k: int, value: Any) -> bytes:
    f = good_fields_v2()
    f[k] = value
    return pack(f)


GOOD_V2 = pack(good_fields_v2(session="s0"))
INTS_V2 = good_fields_v2()[11]

# Faults only version 2 can have, and the v1 faults again in v2 batches.
BAD_V2: list[tuple[str, bytes, str]] = [
    ("v2 truncated", GOOD_V2[:-3], "truncated"),
    ("v2 runs short of n", with_field_v2(9, bytes([0x01])), "kind runs do not add up to n"),
    ("v2 runs past n", with_field_v2(9, bytes([0x01, 0x23])), "kind runs do not add up to n"),
    ("v2 run after n", with_field_v2(9, bytes([0x01, 0x03, 0x03])), "kind runs do not add up"),
    ("v2 count claims more", with_field_v2(8, 50_000), "kind runs do not add up to n"),
    ("v2 kind 0", with_field_v2(9, bytes([0x00, 0x03])), "event 0 has an unknown kind"),
    ("v2 unknown kind", with_field_v2(9, bytes([0x01, 0x1F])), "event 1 has an unknown kind"),
    ("v2 cut time", with_field_v2(10, bytes([0x01, 0xFB])), "a varint in times is cut short"),
    ("v2 cut step back", with_field_v2(10, bytes([0x01, 0x00])), "a varint in times is cut"),
    (
        "v2 varint over 32 bits",
        with_field_v2(11, bytes([0xFF, 0xFF, 0xFF, 0xFF, 0x7F]) + INTS_V2[2:]),
        "a varint in ints is cut short or over 32 bits",
    ),
    (
        "v2 six-byte varint",
        with_field_v2(12, bytes([1, 0, 0x82, 0x80, 0x80, 0x80, 0x80, 0])),
        "over 32 bits",
    ),
    ("v2 ints short", with_field_v2(11, INTS_V2[:-1]), "a varint in ints is cut short"),
    ("v2 leftover", with_field_v2(12, bytes([1, 0, 2, 0])), "refs has bytes left over"),
    ("v2 index out of range", with_field_v2(12, bytes([1, 0, 9])), "past the batch's string table"),
    (
        "v2 step back before 0",
        pack([*good_fields_v2()[:5], 3, *good_fields_v2()[6:10], bytes([0x00, 0x05, 0x01]),
              *good_fields_v2()[11:]]),
        "time is outside",
    ),
]
CASES = [(1, *b) for b in BAD] + [(2, *b) for b in BAD_V2]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("version", "name", "data", "fragment"), CASES, ids=[f"v{c[0]}-{c[1]}" for c in CASES]
)
def test_bad_batch_raises_decode_error(
    engine: str, version: int, name: str, data: bytes, fragment: str
) -> None:
    good = GOOD if version == 1 else GOOD_V2
    with pytest.raises(DecodeError) as info:
        wire.decode([good, data], engine=engine)  # type: ignore[arg-type]
    assert fragment in str(info.value), name
    assert info.value.batch == 1
    assert "batch 1" in str(info.value)
    assert "hint:" in str(info.value)


@pytest.mark.parametrize(
    ("version", "name", "data", "fragment"), CASES, ids=[f"v{c[0]}-{c[1]}" for c in CASES]
)
def test_quarantine_keeps_the_good_batches(
    version: int, name: str, data: bytes, fragment: str
) -> None:
    good = GOOD if version == 1 else GOOD_V2
    other = pack(good_fields(session="s2"))  # a v1 batch: versions mix in one decode
    fast = wire.decode_report([good, data, other])
    ref = wire.decode_report([good, data, other], engine="python")
    assert fast.quarantined == ref.quarantined
    assert [q.index for q in fast.quarantined] == [1]
    assert fragment in fast.quarantined[0].reason
    assert fast.events.equals(ref.events)
    assert fast.events["session_id"].cast(pl.String).unique().sort().to_list() == ["s0", "s2"]
    assert fast.events.height == 4


def test_invalid_utf8_in_a_string_entry() -> None:
    raw = bytearray(pack(good_fields()))
    at = raw.index(b"button")
    raw[at] = 0xFF
    for engine in ENGINES:
        report = wire.decode_report([bytes(raw)], engine=engine)  # type: ignore[arg-type]
        (q,) = report.quarantined
        assert q.reason == "strings[1] is not valid UTF-8"
        assert q.offset == at
        assert q.session_id is None


def test_offset_points_at_the_fault() -> None:
    data = with_field(9, bytes([1, 250]))
    with pytest.raises(DecodeError) as info:
        wire.decode([data])
    assert info.value.offset is not None
    assert data[info.value.offset] == 250


@pytest.mark.parametrize("engine", ENGINES)
def test_unknown_version_names_both(engine: str) -> None:
    with pytest.raises(WireVersionError) as info:
        wire.decode([with_field(0, 7)], engine=engine)  # type: ignore[arg-type]
    assert "wire version 7" in str(info.value)
    assert "reads versions 1, 2" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_conflicts_between_batches() -> None:
    first = pack(good_fields())
    same_key_other_bytes = pack([*good_fields()[:5], 1700000000999, *good_fields()[6:]])
    other_visitor = pack([*good_fields(seq=1)[:2], "v2", *good_fields(seq=1)[3:]])
    redefines = pack([*good_fields(seq=2)[:7], ["/x", "button#buy"], *good_fields(seq=2)[8:]])
    batches = [first, same_key_other_bytes, other_visitor, redefines, first]
    fast = wire.decode_report(batches)
    ref = wire.decode_report(batches, engine="python")
    assert fast.quarantined == ref.quarantined
    reasons = {q.index: q.reason for q in fast.quarantined}
    assert reasons == {
        1: "another batch has the same session_id and seq but other content",
        2: "visitor_id differs from the session's earlier batches",
        3: "string table entry 0 is defined differently by another batch",
    }
    assert fast.duplicates == ref.duplicates == 1
    assert fast.events.height == 2


def test_decode_errors_argument() -> None:
    with pytest.warns(UserWarning, match="1 batch\\(es\\) quarantined"):
        out = wire.decode([GOOD, b"\x00"], errors="quarantine")
    assert out.height == 2
    with pytest.raises(ValueError, match="errors must be"):
        wire.decode([GOOD], errors="ignore")  # type: ignore[arg-type]


def test_schema_is_kept_when_everything_is_bad() -> None:
    report = wire.decode_report([b"\x00", b"\xc1"])
    assert report.events.schema == EVENT_SCHEMA
    assert report.events.height == 0
    assert len(report.quarantined) == 2


def test_v2_good_batch_reads_like_v1() -> None:
    for engine in ENGINES:
        v1 = wire.decode([pack(good_fields())], engine=engine)  # type: ignore[arg-type]
        v2 = wire.decode([pack(good_fields_v2())], engine=engine)  # type: ignore[arg-type]
        assert v1.equals(v2)
        assert v2.height == 2


def test_v2_offsets_point_at_the_fault() -> None:
    data = with_field_v2(9, bytes([0x01, 0x1F]))
    with pytest.raises(DecodeError) as info:
        wire.decode([data])
    assert info.value.offset is not None
    assert data[info.value.offset] == 0x1F
    for engine in ENGINES:
        (q,) = wire.decode_report([data], engine=engine).quarantined  # type: ignore[arg-type]
        assert q.offset == info.value.offset


def _varints(*values: int) -> bytes:
    out = bytearray()
    for value in values:
        v = value
        while v >= 0x80:
            out.append(v & 0x7F | 0x80)
            v >>= 7
        out.append(v)
    return bytes(out)


FAR = (1 << 32) - 3  # str_base may be any 32-bit number


def _at(seq: int, str_base: int, strings: list[str], refs: bytes) -> bytes:
    f = good_fields(seq=seq)
    f[6], f[7], f[12] = str_base, strings, refs
    return pack(f)


def test_string_tables_far_apart_cost_memory_by_entries_not_by_index() -> None:
    """A session table with entries at 0 and near 2^32 decodes like any other, in both
    engines. A table as long as the highest index would be 32 GiB: numpy refuses it on this
    machine (MemoryError) rather than filling the memory."""
    batches = [
        _at(0, 0, ["/", "button#buy"], bytes([1, 0, 2])),
        _at(1, FAR, ["/far", "button#far"], _varints(FAR + 1, 0, FAR + 2)),
        _at(2, FAR + 2, [], _varints(1, 0, FAR + 1)),  # refers back to both runs
        _at(3, FAR, ["/other"], _varints(FAR + 1, 0, 0)),  # redefines entry FAR
        _at(4, FAR + 2, [], _varints(5, 0, 1)),  # entry 4 is in the gap: nobody defines it
    ]
    fast = wire.decode_report(batches)
    ref = wire.decode_report(batches, engine="python")
    assert fast.quarantined == ref.quarantined
    assert {q.index: q.reason for q in fast.quarantined} == {
        3: f"string table entry {FAR} is defined differently by another batch",
        4: "event 0 refers to a string no batch of this session defines",
    }
    assert fast.events.equals(ref.events)
    assert fast.events["target"].to_list() == ["/", "button#buy", "/far", "button#far", "/", "/far"]
    alone = wire.decode([batches[1]])  # one far batch on its own, as the collector checks it
    assert alone["target"].to_list() == ["/far", "button#far"]
