"""docs/wire-format.md is the contract: its worked example and kinds table must hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cemreplay import wire
from cemreplay.schema import FIELDS, SLOTS, EventKind

DOC = Path(__file__).resolve().parents[1] / "docs" / "wire-format.md"


def worked_examples() -> dict[int, bytes]:
    """The byte-by-byte examples of the page, by wire version."""
    text = DOC.read_text()
    out = {}
    for start in [m.end() for m in re.finditer("```\n(?=9[de])", text)]:
        block = text[start : text.index("```", start)]
        hexes = []
        for line in block.splitlines():
            # the hex bytes are the leading run of 2-digit hex groups on each line
            m = re.match(r"((?:[0-9a-f]{2} )*[0-9a-f]{2})(?:\s{2,}|$)", line)
            assert m, line
            hexes.append(m.group(1))
        data = bytes.fromhex(" ".join(hexes))
        out[data[1]] = data
    return out


#: The dictionary of the version-3 example: site "k"'s dictionary 1
EXAMPLE_DICTIONARY = wire.Dictionary("k", 1, ("button#buy",))


def test_the_page_has_an_example_per_version() -> None:
    assert sorted(worked_examples()) == [1, 2, 3]


@pytest.mark.parametrize("version", [1, 2, 3])
@pytest.mark.parametrize("engine", ["numba", "python"])
def test_worked_example_decodes_as_the_doc_says(version: int, engine: str) -> None:
    data = worked_examples()[version]
    dicts = [EXAMPLE_DICTIONARY] if version == 3 else []
    events = wire.decode([data], engine=engine, dictionaries=dicts)  # type: ignore[arg-type]
    assert events.select("kind", "t", "x", "y", "a", "b").rows() == [
        (1, 1_700_000_000_000, 1280, 720, 1, 0),
        (3, 1_700_000_000_250, 100, 40, 64, 1),
    ]
    assert events["target"].cast(str).to_list() == ["/", "button#buy"]
    assert events["text"].to_list() == [None, None]
    assert events["session_id"].cast(str).to_list() == ["s1", "s1"]
    # and the encoder writes exactly these bytes
    if version == 3:
        assert wire.encode(events, site_key="k", dictionary=EXAMPLE_DICTIONARY) == [data]
        # the example's element 13 names a dictionary: without it, the batch is set aside
        (q,) = wire.decode_report([data], engine=engine).quarantined  # type: ignore[arg-type]
        assert (q.code, q.detail, q.offset, q.site_key) == (23, 1, len(data) - 1, "k")
    else:
        assert wire.encode(events, site_key="k", version=version) == [data]


def kinds_table() -> str:
    head = "| kind | name | " + " | ".join(SLOTS) + " |"
    rule = "|---|---|" + "---|" * len(SLOTS)
    rows = [
        f"| {k.value} | {k.name} | "
        + " | ".join(FIELDS[k].get(s, "") for s in SLOTS).replace("  ", " ")
        + " |"
        for k in EventKind
    ]
    return "\n".join([head, rule, *rows])


def test_kinds_table_matches_schema() -> None:
    text = DOC.read_text()
    start = text.index("<!-- kinds-table:start -->") + len("<!-- kinds-table:start -->\n")
    end = text.index("<!-- kinds-table:end -->")
    documented = [" ".join(r.split()) for r in text[start:end].strip().splitlines()]
    expected = [" ".join(r.split()) for r in kinds_table().splitlines()]
    assert documented == expected
