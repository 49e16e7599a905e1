"""Fuzz: random and mutated bytes give a DecodeError or a table, never another exception or a
hang, and the numba decoder always agrees with the reference."""

from __future__ import annotations

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cemreplay import wire
from cemreplay.errors import DecodeError
from tests.wire_strategies import event_tables

FUZZ = settings(max_examples=300, deadline=2_000, suppress_health_check=[HealthCheck.too_slow])


def agree(batches: list[bytes]) -> None:
    fast = wire.decode_report(batches)
    ref = wire.decode_report(batches, engine="python")
    assert fast.quarantined == ref.quarantined
    assert fast.events.equals(ref.events)
    assert fast.duplicates == ref.duplicates
    for engine in ("numba", "python"):
        try:
            wire.decode(batches, engine=engine)  # type: ignore[arg-type]
        except DecodeError:
            assert fast.quarantined
        else:
            assert not fast.quarantined


@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=4))
def test_random_bytes(batches: list[bytes]) -> None:
    agree(batches)


@st.composite
def mutated(draw: st.DrawFn) -> list[bytes]:
    events: pl.DataFrame = draw(event_tables(max_sessions=2))
    batches = wire.encode(events, version=draw(st.sampled_from([1, 2])))
    if not batches:
        return [draw(st.binary(max_size=50))]
    out = []
    for b in batches:
        data = bytearray(b)
        for _ in range(draw(st.integers(0, 3))):
            op = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
            pos = draw(st.integers(0, max(0, len(data) - 1)))
            if op == "flip" and data:
                data[pos] ^= 1 << draw(st.integers(0, 7))
            elif op == "cut":
                del data[pos:]
            elif op == "insert":
                data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
            elif data:
                del data[pos]
        out.append(bytes(data))
    return out


@FUZZ
@given(mutated())
def test_mutated_batches(batches: list[bytes]) -> None:
    agree(batches)
