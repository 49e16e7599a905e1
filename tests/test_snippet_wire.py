"""The snippet's encoder against cemreplay's decoder, through a shared fixture.

``js-snippet/scripts/fixture.mjs`` encodes a known event list with the snippet's own
``src/wire.js`` into ``tests/fixtures/snippet_batches.msgpack`` and writes the rows a decoder
must read back into ``tests/fixtures/snippet_events.json``; its one version-3 batch names the
site dictionary in ``tests/fixtures/snippet_dictionary.json``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import msgpack
import polars as pl
import pytest

from cemreplay.errors import DecodeError
from cemreplay.schema import EVENT_SCHEMA
from cemreplay.wire import Dictionary, decode, decode_report

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
BATCHES = FIXTURES / "snippet_batches.msgpack"
EVENTS = FIXTURES / "snippet_events.json"
DICTIONARY = FIXTURES / "snippet_dictionary.json"


def dictionaries() -> list[Dictionary]:
    return [Dictionary.from_json(DICTIONARY.read_bytes())]


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
    got = decode(load_batches(), engine=engine, dictionaries=dictionaries())  # type: ignore[arg-type]
    assert got.schema == EVENT_SCHEMA
    want = json.loads(EVENTS.read_text(encoding="utf-8"))
    assert as_rows(got) == sorted(want, key=lambda r: (r["session_id"], r["batch"], r["i"]))


def test_fixture_covers_the_hard_parts() -> None:
    batches = load_batches()
    envelopes = [msgpack.unpackb(b) for b in batches]
    assert [len(e) for e in envelopes] == [13, 13, 13, 13, 14]
    # a later batch refers back to strings sent by an earlier one (str_base > 0, no resend)
    assert envelopes[1][6] == len(envelopes[0][7]) and "button#buy" not in envelopes[1][7]
    assert envelopes[0][5] > 2**32  # base_ts needs uint 64
    assert any(len(s.encode()) > 255 for s in envelopes[1][7])  # a str 16
    assert envelopes[1][8] > 255  # more events than a bin 8 of a byte per event would hold
    # the snippet writes wire version 2, and version 3 once it has the site's dictionary
    assert [e[0] for e in envelopes] == [2, 2, 2, 2, 3]
    words = dictionaries()[0].strings
    assert envelopes[4][13] == 7 and envelopes[4][6] == 3  # names it; own entries only
    assert envelopes[4][7] == [
        "999 99 999",
        "https://shop.example/cart",
    ]  # dictionary ones not sent
    assert "locale" in words and "locale" in envelopes[3][7]  # sent before it arrived
    assert len(envelopes[1][9]) < envelopes[1][8] / 4  # kinds in runs (mostly mouse moves)
    rows = json.loads(EVENTS.read_text(encoding="utf-8"))
    assert any(r["a"] == 10**9 for r in rows)  # integers are clamped to +-1e9
    assert any(r["kind"] == 13 and r["t"] < rows[r["i"] - 1]["t"] for r in rows)  # negative delta


def test_batches_survive_duplicates_and_disorder() -> None:
    batches = load_batches()
    got = decode(
        [batches[4], batches[2], batches[1], batches[0], batches[1], batches[3]],
        dictionaries=dictionaries(),
    )
    assert got.height == len(json.loads(EVENTS.read_text(encoding="utf-8")))


def test_a_batch_naming_a_dictionary_not_given_is_set_aside() -> None:
    batches = load_batches()
    with pytest.raises(DecodeError, match="dictionary 7"):
        decode(batches)
    report = decode_report(batches)
    assert [q.index for q in report.quarantined] == [4]
    want = [
        r
        for r in json.loads(EVENTS.read_text(encoding="utf-8"))
        if (r["session_id"], r["batch"]) != ("S3", 1)
    ]
    assert as_rows(report.events) == sorted(
        want, key=lambda r: (r["session_id"], r["batch"], r["i"])
    )


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
    assert (tmp_path / "snippet_dictionary.json").read_text() == DICTIONARY.read_text()
