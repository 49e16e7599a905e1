"""Round trips and invariances of the wire codec, numba kernel against the reference."""

from __future__ import annotations

import random

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cemreplay import wire
from cemreplay.events import assign_batches
from cemreplay.schema import EVENT_SCHEMA
from tests.wire_strategies import canonical, event_tables

ENGINES = ["numba", "python"]
VERSIONS = [1, 2]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=60, deadline=None)
@given(events=event_tables())
def test_round_trip(events: pl.DataFrame, engine: str, version: int) -> None:
    out = wire.decode(wire.encode(events, version=version), engine=engine)  # type: ignore[arg-type]
    assert out.schema == EVENT_SCHEMA
    assert out.equals(events)


@settings(max_examples=60, deadline=None)
@given(events=event_tables(), seed=st.integers(0, 2**32))
def test_versions_mix_in_one_decode(events: pl.DataFrame, seed: int) -> None:
    """A store holds v1 batches next to v2 ones: each batch decodes by its own version, and a
    session's string table spans batches of both versions."""
    rng = random.Random(seed)
    v1, v2 = wire.encode(events, version=1), wire.encode(events, version=2)
    assert [b[1] for b in v1] == [1] * len(v1) and [b[1] for b in v2] == [2] * len(v2)
    mixed = [rng.choice(pair) for pair in zip(v1, v2, strict=True)]
    rng.shuffle(mixed)
    fast = wire.decode_report(mixed)
    ref = wire.decode_report(mixed, engine="python")
    assert fast.events.equals(events)
    assert ref.events.equals(events)
    assert fast.quarantined == ref.quarantined == []


@pytest.mark.parametrize("version", VERSIONS)
@settings(max_examples=40, deadline=None)
@given(events=event_tables(), seed=st.integers(0, 2**32))
def test_order_and_repeats_do_not_matter(events: pl.DataFrame, seed: int, version: int) -> None:
    batches = wire.encode(events, version=version)
    rng = random.Random(seed)
    shuffled = batches + rng.sample(batches, k=len(batches) // 2)
    rng.shuffle(shuffled)
    fast = wire.decode_report(shuffled)
    ref = wire.decode_report(shuffled, engine="python")
    assert fast.events.equals(events)
    assert ref.events.equals(events)
    assert fast.duplicates == ref.duplicates == len(batches) // 2
    assert fast.quarantined == ref.quarantined == []
    assert fast.batches.equals(ref.batches)


@pytest.mark.parametrize("version", VERSIONS)
def test_strings_are_sent_once_per_session(version: int) -> None:
    rows = [
        dict(
            session_id="s",
            visitor_id="v",
            t=1000 + k,
            batch=k // 2,
            i=k % 2,
            kind=3,
            x=k,
            y=k,
            a=64,
            b=1,
            target="button#buy",
            text=None,
        )
        for k in range(6)
    ]
    batches = wire.encode(pl.DataFrame(rows, schema=EVENT_SCHEMA), version=version)
    assert len(batches) == 3
    assert batches[0].count(b"button#buy") == 1
    assert all(b"button#buy" not in b for b in batches[1:])
    # A later batch alone cannot resolve the reference: it needs the defining batch.
    report = wire.decode_report(batches[1:])
    assert {q.reason for q in report.quarantined} == {
        "event 0 refers to a string no batch of this session defines"
    }
    assert wire.decode(batches[::-1]).height == 6


def test_assign_batches_then_round_trip() -> None:
    rows = [
        dict(
            session_id="s",
            visitor_id="v",
            t=1_000 * k,
            batch=0,
            i=0,
            kind=4,
            x=k,
            y=2 * k,
            a=0,
            b=0,
            target=None,
            text=None,
        )
        for k in range(40)
    ]
    events = assign_batches(pl.DataFrame(rows, schema=EVENT_SCHEMA), max_events=7, flush_ms=9_000)
    # 9 s windows hold 9, 9, 9, 9 and 4 events; each splits into chunks of at most 7.
    assert events["batch"].max() == 8
    assert events.group_by("batch").len()["len"].max() == 7
    assert wire.decode(wire.encode(events)).equals(canonical(events))


def test_empty_input() -> None:
    assert wire.decode([]).equals(pl.DataFrame(schema=EVENT_SCHEMA))
    assert wire.encode(pl.DataFrame(schema=EVENT_SCHEMA)) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_null_strings_decode_as_null_beside_real_ones(version: int) -> None:
    """The decoder writes a null target/text as ``NULL_CODE`` and relies on polars reading a
    code it does not know as null (``cat.to(strict=False)``); a polars that read it as some
    string, or rejected it, would break every table with a click on nothing."""
    from cemreplay.wire import _kernels as K

    assert K.NULL_CODE == 2**32 - 1
    rows = [  # a page view, a click on nothing, a click on a button, a JS error (no source)
        (1, "/home", "Home"),
        (3, None, None),
        (3, "button#pay", None),
        (11, None, "TypeError: x"),
    ]
    events = pl.DataFrame(
        [
            dict(session_id="s", visitor_id="v", t=1000 + 10 * k, batch=0, i=k, kind=kind,
                 x=0, y=0, a=0, b=0, target=target, text=text)
            for k, (kind, target, text) in enumerate(rows)
        ],
        schema=EVENT_SCHEMA,
    )
    out = wire.decode(wire.encode(events, version=version))
    assert out["target"].cast(pl.String).to_list() == events["target"].cast(pl.String).to_list()
    assert out["text"].cast(pl.String).to_list() == events["text"].cast(pl.String).to_list()
    assert out["target"].null_count() == 2
    assert out["text"].null_count() == 2


def test_v2_is_smaller_on_the_generator_mix() -> None:
    """What v2 changed is for size: kinds in runs, unsigned time steps, per-kind deltas."""
    from cemreplay import synth

    events = synth.generate(sessions=20, seed=3).events
    v1 = sum(map(len, wire.encode(events, version=1)))
    v2 = sum(map(len, wire.encode(events, version=2)))
    assert v2 < 0.95 * v1
    assert wire.decode(wire.encode(events)).equals(events)


def test_encode_refuses_unknown_versions() -> None:
    with pytest.raises(ValueError, match="writes wire versions"):
        wire.encode(pl.DataFrame(schema=EVENT_SCHEMA), version=4)


def _interned(strings: list[bytes], pad: bytes = b"") -> tuple[list[int], list[bytes]]:
    import numpy as np

    from cemreplay.wire import _kernels as K

    blob = pad + b"".join(strings)
    off = np.cumsum([len(pad)] + [len(s) for s in strings])[:-1].astype(np.int64)
    length = np.array([len(s) for s in strings], dtype=np.int64)
    ids, first = K.intern_bytes(np.frombuffer(blob, np.uint8), off, length)
    return ids.tolist(), [strings[f] for f in first.tolist()]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.text(alphabet="ab", max_size=40).map(str.encode), max_size=80),
    st.binary(max_size=3),
)
def test_interning_is_exact(strings: list[bytes], pad: bytes) -> None:
    """The decoder's string interning gives equal ids exactly to equal byte strings."""
    seen: dict[bytes, int] = {}
    want = [seen.setdefault(s, len(seen)) for s in strings]
    assert _interned(strings, pad) == (want, list(seen))


def test_interning_tells_apart_strings_that_differ_in_one_byte() -> None:
    a = b"x" * 30
    b = b"x" * 9 + b"y" + b"x" * 20
    many = [f"s{i}".encode() for i in range(3000)]  # makes the table grow twice
    assert _interned([a, b, a, *many, b]) == ([0, 1, 0, *range(2, 3002), 1], [a, b, *many])
