"""Wire version 3: the per-site string dictionary (cemreplay.wire.dictionary), its encoding and
its decoding, numba kernel against the reference."""

from __future__ import annotations

import random

import msgpack
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cemreplay import synth, wire
from cemreplay.errors import ConfigError, DecodeError, SchemaError
from cemreplay.schema import EVENT_SCHEMA, EventKind
from cemreplay.wire import Dictionary, learn_dictionary, string_counts
from cemreplay.wire import _codes as C
from cemreplay.wire.dictionary import COUNTS_SCHEMA
from tests.wire_strategies import TEXT_VALUES, event_tables

ENGINES = ["numba", "python"]


# ---- Dictionary


def test_json_round_trip_and_form() -> None:
    d = Dictionary("k", 3, ("/", "Æøå ✓", ""))
    assert d.to_json() == '{"site":"k","id":3,"strings":["/","Æøå ✓",""]}'.encode()
    assert Dictionary.from_json(d.to_json()) == d
    assert Dictionary.from_json(d.to_json().decode()) == d
    assert Dictionary("k", 3, ["a"]).strings == ("a",)  # a list is kept as a tuple


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("k" * 129, 1, ()), "site_key is longer"),
        ((1, 1, ()), "site_key must be a str"),
        (("k", 0, ()), "id must be in 1.."),
        (("k", 2**32, ()), "id must be in 1.."),
        (("k", True, ()), "id must be an int"),
        (("k", 1, "ab"), "strings must be a tuple"),
        (("k", 1, ("a", 2)), r"strings\[1\] must be a str"),
        (("k", 1, ("a", "b", "a")), r"strings\[2\] \('a'\) is there twice"),
        (("k", 1, ("é" * 2049,)), r"strings\[0\] is longer than 4096"),
        (("k", 1, ("x",) * 0 + tuple(map(str, range(65_536)))), "65536 entries"),
        (("k", 1, ("\ud800",)), "UTF-8"),
    ],
)
def test_construction_names_what_is_wrong(args: tuple[object, ...], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Dictionary(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"{", "cannot be read"),
        (b"\xff", "cannot be read"),
        (b"[]", "must be an object"),
        (b'{"site":"k","strings":[]}', "no 'id' field"),
        (b'{"site":"k","id":1,"strings":"ab"}', "'strings' must be a list"),
        (b'{"site":"k","id":-1,"strings":[]}', "id must be in"),
    ],
)
def test_from_json_names_the_bad_field(data: bytes, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Dictionary.from_json(data)


# ---- learn_dictionary


def _events(rows: list[tuple[str, str, int, str | None, str | None]]) -> pl.DataFrame:
    """(session, visitor, kind, target, text) rows, one batch per session."""
    out = []
    seen: dict[str, int] = {}
    for sid, vid, kind, target, text in rows:
        i = seen[sid] = seen.get(sid, -1) + 1
        out.append(
            {"session_id": sid, "visitor_id": vid, "t": 1_000 + i, "batch": 0, "i": i,
             "kind": kind, "x": 0, "y": 0, "a": 0, "b": 0, "target": target, "text": text}
        )  # fmt: skip
    return pl.DataFrame(out, schema=EVENT_SCHEMA)


def test_learn_keeps_strings_of_enough_visitors_most_widely_sent_first() -> None:
    rows = []
    for v in range(5):  # "/wide": 5 visitors; "#b" 3 visitors but many references
        rows.append((f"s{v}", f"v{v}", EventKind.PAGE_VIEW, "/wide", None))
    for v in range(3):
        rows += [(f"s{v}", f"v{v}", EventKind.CLICK, "#b", None)] * 4
        rows.append((f"s{v}", f"v{v}", EventKind.JS_ERROR, "app.js", "boom"))  # 3 visitors
    # one visitor in many sessions sends a private string: one visitor, however often
    rows += [(f"p{k}", "v9", EventKind.CHANGE, "#email", "aaaa@aaaa.aaa") for k in range(10)]
    d = learn_dictionary(_events(rows), site_key="k", id=4, min_visitors=3)
    assert d is not None and d.key == ("k", 4)
    # 5 visitors first; then 3 visitors: more references first (#b: 12), then the string
    assert d.strings == ("/wide", "#b", "app.js", "boom")
    assert learn_dictionary(_events(rows), site_key="k", id=4, min_visitors=6) is None
    capped = learn_dictionary(_events(rows), site_key="k", id=4, min_visitors=3, max_entries=2)
    assert capped is not None and capped.strings == ("/wide", "#b")
    by_bytes = learn_dictionary(_events(rows), site_key="k", id=4, min_visitors=3, max_bytes=8)
    assert by_bytes is not None and by_bytes.strings == ("/wide", "#b")  # 5 + 2; "app.js" > 8


def test_learn_privacy_rule() -> None:
    """A string sent by one visitor (in any number of sessions) never enters a dictionary
    learned with min_visitors > 1."""
    rows = [(f"p{k}", "v9", EventKind.CHANGE, "#email", "aaaa@aaaa.aaa") for k in range(30)]
    rows += [(f"s{v}", f"v{v}", EventKind.CHANGE, "#email", "aaaa") for v in range(2)]
    d = learn_dictionary(_events(rows), site_key="k", id=1, min_visitors=2)
    assert d is not None and d.strings == ("#email", "aaaa")  # 3 and 2 visitors
    d = learn_dictionary(_events(rows), site_key="k", id=1, min_visitors=1)
    assert d is not None and "aaaa@aaaa.aaa" in d.strings  # the rule is what keeps it out


@pytest.mark.parametrize(
    "kw", [{"min_visitors": 0}, {"max_entries": 0}, {"max_entries": 65_536}, {"max_bytes": -1}]
)
def test_learn_refuses_bad_options(kw: dict[str, int]) -> None:
    with pytest.raises(ConfigError, match=next(iter(kw))):
        learn_dictionary(_events([]), site_key="k", id=1, **kw)


def test_learning_from_chunks_is_learning_from_the_whole() -> None:
    """Counted chunk by chunk (visitors spanning chunks counted once), or from counts made
    before: the same dictionary as from the whole table."""
    ev = synth.generate(sessions=400, seed=9).events
    whole = learn_dictionary(ev, site_key="k", id=3, min_visitors=5)
    assert whole is not None and len(whole.strings) > 50
    # cut by row: sessions and visitors split across chunks
    cuts = [ev.slice(k, 7_001) for k in range(0, ev.height, 7_001)]
    assert len(cuts) > 3
    from_chunks = learn_dictionary(iter(cuts), site_key="k", id=3, min_visitors=5)
    assert from_chunks == whole
    counts = string_counts(iter(cuts))
    assert counts.schema == COUNTS_SCHEMA
    assert counts.sort("s").equals(string_counts(ev).sort("s"))
    # a visitor's string counts once however many chunks (sessions) carry it
    assert counts["visitors"].max() <= ev["visitor_id"].n_unique()
    assert learn_dictionary(counts=counts, site_key="k", id=3, min_visitors=5) == whole
    assert string_counts([]).schema == COUNTS_SCHEMA
    assert learn_dictionary([], site_key="k", id=3) is None


def test_learn_takes_events_or_counts() -> None:
    ev = _events([("s1", "v1", EventKind.PAGE_VIEW, "/", None)])
    with pytest.raises(ConfigError, match="exactly one"):
        learn_dictionary(site_key="k", id=1)
    with pytest.raises(ConfigError, match="exactly one"):
        learn_dictionary(ev, counts=string_counts(ev), site_key="k", id=1)
    with pytest.raises(ConfigError, match="string_counts"):
        learn_dictionary(counts=ev, site_key="k", id=1)
    with pytest.raises(SchemaError, match="string_counts"):
        string_counts([ev, pl.DataFrame({"x": [1]})])
    with pytest.raises(SchemaError, match="expected a polars DataFrame, got int"):
        learn_dictionary(5, site_key="k", id=1)  # type: ignore[arg-type]


# ---- encode and decode


@st.composite
def dictionaries(draw: st.DrawFn, site: str = "demo") -> Dictionary:
    texts = draw(st.lists(st.sampled_from(TEXT_VALUES), unique=True, max_size=8))
    extra = draw(st.lists(st.text(max_size=5), unique=True, max_size=3))
    strings = list(dict.fromkeys(texts + extra))
    return Dictionary(site, draw(st.integers(1, 2**32 - 1)), tuple(strings))


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=60, deadline=None)
@given(events=event_tables(), d=dictionaries())
def test_round_trip_with_a_dictionary(events: pl.DataFrame, d: Dictionary, engine: str) -> None:
    batches = wire.encode(events, dictionary=d)
    assert all(msgpack.unpackb(b)[0] == 3 and msgpack.unpackb(b)[13] == d.id for b in batches)
    out = wire.decode(batches, engine=engine, dictionaries=[d])  # type: ignore[arg-type]
    assert out.equals(events)
    # no dictionary string is sent in a session table
    for b in batches:
        assert not set(msgpack.unpackb(b)[7]) & set(d.strings)


@settings(max_examples=40, deadline=None)
@given(events=event_tables(), d=dictionaries(), seed=st.integers(0, 2**32))
def test_versions_and_dictionaries_mix(events: pl.DataFrame, d: Dictionary, seed: int) -> None:
    """One decode takes v1, v2, v3 without a dictionary and v3 with either of two
    dictionaries, in any order, with repeats; both engines agree. Each session is sent with
    one dictionary or none (its string table depends on it), its batches without one in a
    random mix of v1, v2 and v3."""
    rng = random.Random(seed)
    other = Dictionary("demo", d.id % (2**32 - 1) + 1, ("zz", *d.strings[::-1]))
    plain = [wire.encode(events, version=v) for v in (1, 2, 3)]
    by_dict = [wire.encode(events, dictionary=x) for x in (d, other)]
    sessions = [msgpack.unpackb(b)[3] for b in plain[0]]
    how = {s: rng.randrange(3) for s in sessions}
    mixed = [
        rng.choice(plain)[k] if how[s] == 2 else by_dict[how[s]][k] for k, s in enumerate(sessions)
    ]
    mixed += rng.sample(mixed, k=len(mixed) // 3)
    rng.shuffle(mixed)
    fast = wire.decode_report(mixed, dictionaries=[d, other, d])
    ref = wire.decode_report(mixed, engine="python", dictionaries=[other, d])
    assert fast.quarantined == ref.quarantined == []
    assert fast.events.equals(events)
    assert ref.events.equals(events)


def test_encode_checks_the_dictionary() -> None:
    ev = pl.DataFrame(schema=EVENT_SCHEMA)
    with pytest.raises(ConfigError, match="site 'other'"):
        wire.encode(ev, dictionary=Dictionary("other", 1, ()))
    with pytest.raises(ConfigError, match="needs wire version 3"):
        wire.encode(ev, version=1, dictionary=Dictionary("demo", 1, ()))
    with pytest.raises(ConfigError, match="Dictionary"):
        wire.encode(ev, dictionary=("demo", 1))  # type: ignore[arg-type]


def test_decode_checks_dictionaries() -> None:
    with pytest.raises(ConfigError, match="two different dictionaries 1 of site 'k'"):
        wire.decode([], dictionaries=[Dictionary("k", 1, ("a",)), Dictionary("k", 1, ("b",))])
    with pytest.raises(ConfigError, match="Dictionary objects"):
        wire.decode([], dictionaries=[b"{}"])  # type: ignore[list-item]


def _two_sites() -> tuple[list[bytes], Dictionary, Dictionary]:
    from cemreplay import synth

    ev = synth.generate(sessions=6, seed=2).events
    da = Dictionary("a", 1, ("locale", "timezone", "/"))
    db = Dictionary("b", 1, ("timezone",))
    return (
        wire.encode(ev, site_key="a", dictionary=da)
        + wire.encode(
            ev.with_columns(pl.col("session_id").cast(pl.String).add("-b").cast(pl.Categorical)),
            site_key="b",
            dictionary=db,
        ),
        da,
        db,
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_unknown_dictionary_or_wrong_site_is_quarantined(engine: str) -> None:
    batches, da, db = _two_sites()
    n_a = sum(1 for b in batches if msgpack.unpackb(b)[1] == "a")
    full = wire.decode_report(batches, engine=engine, dictionaries=[da, db])  # type: ignore[arg-type]
    assert full.quarantined == []
    # site b's dictionary 1 is not site a's: a's batches are set aside, b's all kept
    for given_ in ([db], [Dictionary("b", 1, ("locale", "timezone", "/"))], []):
        r = wire.decode_report(batches, engine=engine, dictionaries=given_)  # type: ignore[arg-type]
        bad = [q for q in r.quarantined if q.code == C.UNKNOWN_DICTIONARY]
        a_bad = [q for q in bad if q.site_key == "a"]
        assert [q.index for q in a_bad] == list(range(n_a))
        if given_ == [db]:
            assert len(bad) == n_a
            assert (
                r.events.height
                == full.events.filter(
                    pl.col("session_id").cast(pl.String).str.ends_with("-b")
                ).height
            )
        q = a_bad[0]
        assert q.detail == 1 and q.session_id is not None
        data = batches[q.index]
        assert q.offset == len(data) - 1  # element 13 is the last byte (fixint 1)
    with pytest.raises(DecodeError) as info:
        wire.decode(batches, engine=engine, dictionaries=[db])  # type: ignore[arg-type]
    msg = str(info.value)
    assert "dictionary 1 of site 'a'" in msg and "batch 0" in msg
    assert f"offset {len(batches[0]) - 1}" in msg and "dictionaries=" in msg


@pytest.mark.parametrize("engine", ENGINES)
def test_ref_past_the_dictionary_and_table_is_an_error(engine: str) -> None:
    from tests.batches import pack

    d = Dictionary("k", 5, ("a", "b"))

    # a page view referring to 1 (dictionary "a"), 3 (the session's entry 0), 4 (past both)
    def batch(ref_target: int, ref_text: int, sid: str) -> bytes:
        env = [3, "k", "v", sid, 0, 1000, 0, ["own"], 1, bytes([1]), bytes([1]),
               bytes([0, 0, 0, 0]), bytes([ref_target, ref_text]), 5]  # fmt: skip
        return pack(env)

    good = batch(1, 3, "s1")
    bad = batch(1, 4, "s2")
    r = wire.decode_report([good, bad], engine=engine, dictionaries=[d])  # type: ignore[arg-type]
    assert r.events["target"].cast(str).to_list() == ["a"]
    assert r.events["text"].cast(str).to_list() == ["own"]
    (q,) = r.quarantined
    assert (q.index, q.code, q.detail) == (1, C.REF_RANGE, 0)
    assert q.offset == len(bad) - 1  # just after the bad reference (element 13 follows)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda env: env[:13], C.NOT_ENVELOPE),  # v3 with 13 elements
        (lambda env: [2, *env[1:]], C.NOT_ENVELOPE),  # v2 with 14
        (lambda env: [*env[:13], -1], C.OUT_OF_RANGE),
        (lambda env: [*env[:13], 2**32], C.OUT_OF_RANGE),
        (lambda env: [*env[:13], "1"], C.WRONG_TYPE),
        (lambda env: [4, *env[1:]], C.VERSION),
    ],
)
def test_bad_v3_envelopes(engine: str, mutate: object, code: int) -> None:
    from tests.batches import pack

    env = [3, "k", "v", "s", 0, 1000, 0, [], 1, bytes([1]), bytes([1]), bytes(4), bytes(2), 0]
    assert wire.decode([pack(env)], engine=engine).height == 1  # type: ignore[arg-type]
    (q,) = wire.decode_report([pack(mutate(env))], engine=engine).quarantined  # type: ignore[arg-type, operator]
    assert q.code == code
    if code == C.NOT_ENVELOPE:  # the count is wrong for the version read
        assert q.detail in (2, 3) and f"wire version {q.detail} batch must be" in q.reason
    if code in (C.OUT_OF_RANGE, C.WRONG_TYPE):
        assert q.detail == 13 and "dict" in q.reason
