"""Fuzz: random and mutated bytes give a DecodeError or a table, never another exception or a
hang, and the numba decoder always agrees with the reference (with the site dictionary the
v3 batches name, and without it)."""

from __future__ import annotations

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cemreplay import wire
from cemreplay.errors import DecodeError
from cemreplay.wire import Dictionary
from tests.wire_strategies import TEXT_VALUES, event_tables

FUZZ = settings(max_examples=300, deadline=10_000, suppress_health_check=[HealthCheck.too_slow])


#: The site dictionary the mutated v3 batches name (id 7 of site "demo"), and a
#: dictionary of another site with the same id (never the one a batch names)
DICT = Dictionary("demo", 7, tuple(TEXT_VALUES[::2]))
OTHER_SITE = Dictionary("other", 7, ("/",))


def agree(batches: list[bytes]) -> None:
    for dicts in ([DICT, OTHER_SITE], []):
        fast = wire.decode_report(batches, dictionaries=dicts)
        ref = wire.decode_report(batches, engine="python", dictionaries=dicts)
        assert fast.quarantined == ref.quarantined
        assert fast.events.equals(ref.events)
        assert fast.duplicates == ref.duplicates
        for engine in ("numba", "python"):
            try:
                wire.decode(batches, engine=engine, dictionaries=dicts)  # type: ignore[arg-type]
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
    version = draw(st.sampled_from([1, 2, 3, 0]))  # 0: v3 with the dictionary
    batches = (
        wire.encode(events, dictionary=DICT)
        if version == 0
        else wire.encode(events, version=version)
    )
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
