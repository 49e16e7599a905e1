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


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=60, deadline=None)
@given(events=event_tables())
def test_round_trip(events: pl.DataFrame, engine: str) -> None:
    out = wire.decode(wire.encode(events), engine=engine)  # type: ignore[arg-type]
    assert out.schema == EVENT_SCHEMA
    assert out.equals(events)


@settings(max_examples=60, deadline=None)
@given(events=event_tables(), seed=st.integers(0, 2**32))
def test_order_and_repeats_do_not_matter(events: pl.DataFrame, seed: int) -> None:
    batches = wire.encode(events)
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


def test_strings_are_sent_once_per_session() -> None:
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
    batches = wire.encode(pl.DataFrame(rows, schema=EVENT_SCHEMA))
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
