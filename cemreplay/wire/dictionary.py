"""Per-site string dictionaries (wire version 3).

Most of the strings a session sends (element selectors, URLs, attribute keys, messages) are the
same on every visit to a site. A site's dictionary is a numbered list of them, learned from
what the site's visitors sent and served to its visitors once: a version-3 batch names its
dictionary (envelope element 13) and its references ``1..D`` are dictionary entries, the
session's own string table following (``D + 1 ..``). See docs/wire-format.md, "Version 3".

Privacy: :func:`learn_dictionary` keeps only strings sent by at least ``min_visitors``
different visitors (20 by default), so nothing particular to a few visitors is ever handed to
another visitor.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import polars as pl

from cemreplay.errors import ConfigError
from cemreplay.events import check
from cemreplay.schema import LAYOUT, MAX_ID_BYTES, MAX_STRING_BYTES, MAX_STRINGS_PER_BATCH

__all__ = ["COUNTS_SCHEMA", "Dictionary", "index_dictionaries", "learn_dictionary", "string_counts"]

#: Dictionary ids are envelope uints below 2^32; 0 means "no dictionary".
MAX_DICTIONARY_ID = (1 << 32) - 1
#: Entries of one dictionary at most (as many as one batch's string table).
MAX_DICTIONARY_ENTRIES = MAX_STRINGS_PER_BATCH


def _utf8(value: str, what: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            f"{what} is not encodable as UTF-8 (a lone surrogate); hint: pass real text"
        ) from None


@dataclass(frozen=True)
class Dictionary:
    """One site's string dictionary: immutable, named by ``(site_key, id)``.

    Attributes
    ----------
    site_key:
        The site it belongs to, as batches carry it (0..128 UTF-8 bytes).
    id:
        Its number, ``1 .. 2**32 - 1``; ids are per site and never reused for other strings.
    strings:
        The entries (at most 65,535, each at most 4,096 UTF-8 bytes, no two equal): a v3
        reference ``r`` in ``1..len(strings)`` means ``strings[r - 1]``. A list is taken and
        kept as a tuple.

    Raises
    ------
    ConfigError
        On construction, naming the field that is wrong.

    Examples
    --------
    >>> d = Dictionary("k", 1, ("/", "button#buy"))
    >>> d.to_json()
    b'{"site":"k","id":1,"strings":["/","button#buy"]}'
    >>> Dictionary.from_json(d.to_json()) == d
    True
    """

    site_key: str
    id: int
    strings: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.site_key, str):
            raise ConfigError(
                f"Dictionary.site_key must be a str, got {type(self.site_key).__name__}"
            )
        if len(_utf8(self.site_key, "Dictionary.site_key")) > MAX_ID_BYTES:
            raise ConfigError(
                f"Dictionary.site_key is longer than {MAX_ID_BYTES} UTF-8 bytes; hint: use "
                "the site key the snippet sends"
            )
        if isinstance(self.id, bool) or not isinstance(self.id, int):
            raise ConfigError(f"Dictionary.id must be an int, got {type(self.id).__name__}")
        if not 1 <= self.id <= MAX_DICTIONARY_ID:
            raise ConfigError(
                f"Dictionary.id must be in 1..{MAX_DICTIONARY_ID}, got {self.id} "
                "(0 means no dictionary on the wire)"
            )
        strings: Any = self.strings
        if isinstance(strings, str) or not isinstance(strings, tuple | list):
            raise ConfigError(
                f"Dictionary.strings must be a tuple of str, got {type(strings).__name__}"
            )
        if isinstance(strings, list):
            strings = tuple(strings)
            object.__setattr__(self, "strings", strings)
        if len(strings) > MAX_DICTIONARY_ENTRIES:
            raise ConfigError(
                f"Dictionary.strings holds {len(strings)} entries, more than "
                f"{MAX_DICTIONARY_ENTRIES}; hint: learn_dictionary(max_entries=) caps it"
            )
        seen: set[str] = set()
        for k, s in enumerate(strings):
            if not isinstance(s, str):
                raise ConfigError(f"Dictionary.strings[{k}] must be a str, got {type(s).__name__}")
            if len(_utf8(s, f"Dictionary.strings[{k}]")) > MAX_STRING_BYTES:
                raise ConfigError(
                    f"Dictionary.strings[{k}] is longer than {MAX_STRING_BYTES} UTF-8 bytes "
                    "(the wire's limit for one string)"
                )
            if s in seen:
                raise ConfigError(
                    f"Dictionary.strings[{k}] ({s[:40]!r}) is there twice; hint: each entry "
                    "once (a reference names one entry)"
                )
            seen.add(s)

    @property
    def key(self) -> tuple[str, int]:
        """``(site_key, id)``: what a batch names."""
        return self.site_key, self.id

    def to_json(self) -> bytes:
        """The dictionary as compact UTF-8 JSON, ``{"site": .., "id": .., "strings": [..]}``:
        what the collector serves and the store keeps."""
        body = {"site": self.site_key, "id": self.id, "strings": list(self.strings)}
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | bytearray | memoryview | str) -> Dictionary:
        """Read what :meth:`to_json` writes (other keys are ignored).

        Raises
        ------
        ConfigError
            If ``data`` is not JSON, not an object, or a field is missing or wrong (named).
        """
        try:
            text = data if isinstance(data, str) else bytes(data).decode("utf-8")
            body: Any = json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(f"dictionary JSON cannot be read: {exc}") from None
        if not isinstance(body, dict):
            raise ConfigError(
                f"dictionary JSON must be an object, got {type(body).__name__}; hint: "
                '{"site": "KEY", "id": 1, "strings": [...]}'
            )
        for name in ("site", "id", "strings"):
            if name not in body:
                raise ConfigError(f"dictionary JSON has no {name!r} field")
        if not isinstance(body["strings"], list):
            raise ConfigError(
                f"dictionary JSON field 'strings' must be a list, got "
                f"{type(body['strings']).__name__}"
            )
        return cls(body["site"], body["id"], tuple(body["strings"]))


def index_dictionaries(dictionaries: Iterable[Dictionary]) -> dict[tuple[str, int], Dictionary]:
    """``dictionaries`` by ``(site_key, id)``; the same one twice is fine.

    Raises
    ------
    ConfigError
        If an item is not a :class:`Dictionary`, or two share a site and id but not their
        strings (ids are never reused).
    """
    if isinstance(dictionaries, Dictionary):
        dictionaries = (dictionaries,)
    out: dict[tuple[str, int], Dictionary] = {}
    for d in dictionaries:
        if not isinstance(d, Dictionary):
            raise ConfigError(
                f"dictionaries= takes cemreplay.wire.Dictionary objects, got "
                f"{type(d).__name__}; hint: Dictionary.from_json(data)"
            )
        other = out.setdefault(d.key, d)
        if other.strings != d.strings:
            raise ConfigError(
                f"dictionaries= holds two different dictionaries {d.id} of site "
                f"{d.site_key!r}; hint: a dictionary id is never reused"
            )
    return out


#: The schema of :func:`string_counts`' table.
COUNTS_SCHEMA = pl.Schema({"s": pl.String(), "visitors": pl.Int64(), "refs": pl.Int64()})


def string_counts(events: pl.DataFrame | Iterable[pl.DataFrame]) -> pl.DataFrame:
    """How many distinct visitors sent each string, and how often it was referred to: what
    :func:`learn_dictionary` learns from (:data:`COUNTS_SCHEMA`: ``s``, ``visitors``,
    ``refs``).

    The strings are those of the ``target`` and ``text`` columns in the slots their kinds
    send. ``events`` is an event table, or an iterable of them (chunks, in any split, such
    as :meth:`cemreplay.store.SQLiteStore.iter_events` gives): each chunk is reduced to its
    distinct (string, visitor) pairs before the next is read, so memory holds one chunk and
    the pairs, not all the events.

    >>> from cemreplay import synth
    >>> ev = synth.generate(sessions=60, seed=1).events
    >>> whole = string_counts(ev)
    >>> halves = string_counts([ev.head(ev.height // 2), ev.tail(ev.height - ev.height // 2)])
    >>> whole.sort("s").equals(halves.sort("s"))
    True
    """
    # one table, or anything that is not an iterable of them (check() then says what it is)
    many = isinstance(events, Iterable) and not isinstance(events, pl.DataFrame)
    chunks: Iterable[Any] = events if many else [events]
    sends = {
        column: [k for k, m in enumerate(LAYOUT) if m >= 0 and m & bit]
        for column, bit in (("target", 16), ("text", 32))
    }
    pairs: list[pl.DataFrame] = []
    for chunk in chunks:
        check(chunk, where="string_counts(events)")
        pairs.append(
            pl.concat(
                [
                    chunk.lazy()
                    .filter(pl.col("kind").is_in(kinds))
                    .select("visitor_id", pl.col(column).alias("s"))
                    .drop_nulls("s")
                    for column, kinds in sends.items()
                ]
            )
            .group_by("s", "visitor_id")
            .agg(pl.len().cast(pl.Int64).alias("refs"))
            .collect()
        )
    if not pairs:
        return pl.DataFrame(schema=COUNTS_SCHEMA)
    return (
        pl.concat(pairs)
        .lazy()
        .group_by("s", "visitor_id")  # a visitor in two chunks counts once
        .agg(pl.col("refs").sum())
        .group_by("s")
        .agg(pl.len().cast(pl.Int64).alias("visitors"), pl.col("refs").sum())
        .select(pl.col("s").cast(pl.String), "visitors", "refs")
        .collect()
    )


def learn_dictionary(
    events: pl.DataFrame | Iterable[pl.DataFrame] | None = None,
    *,
    site_key: str,
    id: int,
    min_visitors: int = 20,
    max_entries: int = 4096,
    max_bytes: int = 32768,
    counts: pl.DataFrame | None = None,
) -> Dictionary | None:
    """Learn a site's dictionary from its decoded events.

    The strings of the ``target`` and ``text`` columns (in the slots their kinds send) sent by
    at least ``min_visitors`` distinct ``visitor_id``s, most distinct visitors first (ties:
    more references first, then the string), cut at ``max_entries`` entries and at
    ``max_bytes`` UTF-8 bytes in all (the list stops at the first string that would pass it).

    Parameters
    ----------
    events:
        An event table (``cemreplay.schema.EVENT_SCHEMA``) of one site's sessions, or an
        iterable of them (chunks: see :func:`string_counts`).
    site_key, id:
        The dictionary's name (see :class:`Dictionary`).
    min_visitors:
        A string is kept only when this many different visitors sent it (privacy: nothing
        particular to a few visitors is ever handed to another visitor).
    max_entries, max_bytes:
        Caps on the dictionary's entries and its strings' total UTF-8 bytes.
    counts:
        Instead of ``events``: their :func:`string_counts` (to learn again without reading
        the events again).

    Returns
    -------
    Dictionary or None
        ``None`` when no string qualifies.

    Raises
    ------
    ConfigError
        If an option is out of range, or not exactly one of ``events`` and ``counts`` is given.

    Examples
    --------
    >>> from cemreplay import synth
    >>> ev = synth.generate(sessions=60, seed=1).events
    >>> d = learn_dictionary(ev, site_key="demo", id=1, min_visitors=10)
    >>> "locale" in d.strings
    True
    """
    for name, value, lo, hi in (
        ("min_visitors", min_visitors, 1, None),
        ("max_entries", max_entries, 1, MAX_DICTIONARY_ENTRIES),
        ("max_bytes", max_bytes, 0, None),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ConfigError(f"learn_dictionary({name}=) must be an int >= {lo}, got {value!r}")
        if hi is not None and value > hi:
            raise ConfigError(f"learn_dictionary({name}=) must be at most {hi}, got {value}")
    if (events is None) == (counts is None):
        raise ConfigError("learn_dictionary() takes events or counts=, exactly one of them")
    if counts is None:
        assert events is not None
        counts = string_counts(events)
    elif counts.schema != COUNTS_SCHEMA:
        raise ConfigError(
            f"learn_dictionary(counts=) must be a string_counts() table ({dict(COUNTS_SCHEMA)}), "
            f"got {dict(counts.schema)}"
        )
    top = (
        counts.lazy()
        .filter(pl.col("visitors") >= min_visitors)
        .with_columns(pl.col("s").str.len_bytes().alias("bytes"))
        .filter(pl.col("bytes") <= MAX_STRING_BYTES)
        .sort(["visitors", "refs", "s"], descending=[True, True, False])
        .head(max_entries)
        .filter(pl.col("bytes").cum_sum() <= max_bytes)
        .collect()
    )
    if top.height == 0:
        return None
    return Dictionary(site_key, id, tuple(top["s"].to_list()))
