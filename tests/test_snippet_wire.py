"""The snippet's encoder against cemreplay's decoder, through a shared fixture.

``js-snippet/scripts/fixture.mjs`` encodes a known event list with the snippet's own
``src/wire.js`` into ``tests/fixtures/snippet_batches.msgpack`` and writes the rows a decoder
must read back into ``tests/fixtures/snippet_events.json``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import msgpack
import polars as pl
import pytest

from cemreplay.schema import EVENT_SCHEMA
from cemreplay.wire import decode

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
BATCHES = FIXTURES / "snippet_batches.msgpack"
EVENTS = FIXTURES / "snippet_events.json"


def load_batches(path: Path = BATCHES) -> list[bytes]:
    batches = msgpack.unpackb(path.read_bytes())
    assert isinstance(batches, list)
    return [bytes(b) for b in batches]


def as_rows(df: pl.DataFrame) -> list[dict[str, object]]:
    return (
        df.with_columns(pl.col(pl.Categorical).cast(pl.String))
        .sort("session_id", "batch", "i")
        .to_dicts()
    )


@pytest.mark.parametrize("engine", ["numba", "python"])
def test_decoder_reads_what_the_snippet_encoded(engine: str) -> None:
    got = decode(load_batches(), engine=engine)  # type: ignore[arg-type]
    assert got.schema == EVENT_SCHEMA
    want = json.loads(EVENTS.read_text(encoding="utf-8"))
    assert as_rows(got) == sorted(want, key=lambda r: (r["session_id"], r["batch"], r["i"]))


def test_fixture_covers_the_hard_parts() -> None:
    batches = load_batches()
    envelopes = [msgpack.unpackb(b) for b in batches]
    assert [len(e) for e in envelopes] == [13, 13, 13]
    # a later batch refers back to strings sent by an earlier one (str_base > 0, no resend)
    assert envelopes[1][6] == len(envelopes[0][7]) and "button#buy" not in envelopes[1][7]
    assert envelopes[0][5] > 2**32  # base_ts needs uint 64
    assert any(len(s.encode()) > 255 for s in envelopes[1][7])  # a str 16
    assert envelopes[1][8] > 255  # more events than a bin 8 of a byte per event would hold
    assert [e[0] for e in envelopes] == [2, 2, 2]  # the snippet writes wire version 2
    assert len(envelopes[1][9]) < envelopes[1][8] / 4  # kinds in runs (mostly mouse moves)
    rows = json.loads(EVENTS.read_text(encoding="utf-8"))
    assert any(r["a"] == 10**9 for r in rows)  # integers are clamped to +-1e9
    assert any(r["kind"] == 13 and r["t"] < rows[r["i"] - 1]["t"] for r in rows)  # negative delta


def test_batches_survive_duplicates_and_disorder() -> None:
    batches = load_batches()
    got = decode([batches[2], batches[1], batches[0], batches[1]])
    assert got.height == len(json.loads(EVENTS.read_text(encoding="utf-8")))


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_fixture_is_what_the_snippet_encoder_writes_today(tmp_path: Path) -> None:
    subprocess.run(
        ["node", "scripts/fixture.mjs", f"{tmp_path}/"],
        cwd=ROOT / "js-snippet",
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert (tmp_path / "snippet_batches.msgpack").read_bytes() == BATCHES.read_bytes(), (
        "src/wire.js now encodes differently: run `npm run fixture` in js-snippet if intended"
    )
    assert (tmp_path / "snippet_events.json").read_text() == EVENTS.read_text()
