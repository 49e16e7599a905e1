"""Reasons a batch is rejected: one code table shared by the numba decoder and the reference.

Precedence when a batch has several faults (both decoders follow it, so they reject the same
batches for the same reasons): envelope faults first (in byte order, then UTF-8 of its strings
in order), then faults between batches of one session (conflicting duplicate, visitor change,
conflicting string definition), then faults in the event sections (event by event: kind, time,
integer fields, string references; then leftover bytes), including references to string table
entries no accepted batch of the session defines.
"""

from __future__ import annotations

from typing import Final

#: Envelope element names, by position.
ELEMENTS: Final = (
    "version",
    "site_key",
    "visitor_id",
    "session_id",
    "seq",
    "base_ts",
    "str_base",
    "strings",
    "n",
    "kinds",
    "times",
    "ints",
    "refs",
    "dict",
)

OK: Final = 0
TRUNCATED: Final = 1  # detail: element index being read
NOT_ENVELOPE: Final = 2  # top level is not an array of 13 or 14 (detail: the version, when
# the count is wrong for it; else -1)
WRONG_TYPE: Final = 3  # detail: element index (14 + j: strings[j])
OUT_OF_RANGE: Final = 4  # detail: element index
TRAILING: Final = 5
VERSION: Final = 6  # detail: the version read
STRING_TOO_LONG: Final = 7  # detail: element index (14 + j: strings[j])
TOO_MANY: Final = 8  # detail: element index (7 strings, 8 n)
KINDS_LENGTH: Final = 9
UNKNOWN_KIND: Final = 10  # detail: event index
BAD_VARINT: Final = 11  # detail: section (10 times, 11 ints, 12 refs)
LEFTOVER: Final = 12  # detail: section
TIME_RANGE: Final = 13  # detail: event index
REF_RANGE: Final = 14  # detail: event index
UTF8: Final = 15  # detail: element index (14 + j: strings[j])
UNDEFINED_REF: Final = 16  # detail: event index
STRING_CONFLICT: Final = 17  # detail: table entry index
VISITOR_CHANGE: Final = 18
DUPLICATE_CONFLICT: Final = 19
EMPTY_ID: Final = 20  # detail: element index
COORD_RANGE: Final = 21  # detail: event index
KIND_RUNS: Final = 22  # v2: the kind runs do not add up to n events
UNKNOWN_DICTIONARY: Final = 23  # v3: detail: the dictionary id the decode was not given


#: ``detail`` of a fault in string table entry j is ``STRINGS_DETAIL + j``
STRINGS_DETAIL: Final = 14


def element_name(detail: int) -> str:
    if detail >= STRINGS_DETAIL:
        return f"strings[{detail - STRINGS_DETAIL}]"
    if 0 <= detail < len(ELEMENTS):
        return ELEMENTS[detail]
    return "envelope"


def message(code: int, detail: int, site_key: str | None = None) -> str:
    """A sentence for a code and its detail (and the batch's site, for a dictionary fault),
    without location (the caller adds it)."""
    name = element_name(detail)
    texts = {
        TRUNCATED: f"batch is truncated while reading {name}",
        NOT_ENVELOPE: (
            f"a wire version {detail} batch must be an array of {14 if detail == 3 else 13} "
            "elements (versions 1 and 2 have 13, version 3 has 14)"
            if detail > 0
            else "batch is not a msgpack array of 13 elements (wire format v1/v2) or 14 (v3)"
        ),
        WRONG_TYPE: f"{name} has the wrong msgpack type",
        OUT_OF_RANGE: f"{name} is out of range",
        TRAILING: "bytes follow the end of the batch",
        VERSION: f"wire version {detail} is not supported",
        STRING_TOO_LONG: f"{name} is longer than the limit",
        TOO_MANY: f"{name} holds more items than a batch may",
        KINDS_LENGTH: "kinds must hold exactly n bytes (n claims more or fewer events than sent)",
        UNKNOWN_KIND: f"event {detail} has an unknown kind",
        BAD_VARINT: f"a varint in {name} is cut short or over 32 bits",
        LEFTOVER: f"{name} has bytes left over after the last event",
        TIME_RANGE: f"event {detail}'s time is outside 0..2^53",
        REF_RANGE: f"event {detail} refers past the batch's string table",
        UTF8: f"{name} is not valid UTF-8",
        UNDEFINED_REF: f"event {detail} refers to a string no batch of this session defines",
        STRING_CONFLICT: f"string table entry {detail} is defined differently by another batch",
        VISITOR_CHANGE: "visitor_id differs from the session's earlier batches",
        DUPLICATE_CONFLICT: "another batch has the same session_id and seq but other content",
        EMPTY_ID: f"{name} is empty",
        COORD_RANGE: f"event {detail}'s x, y, a or b leaves the 32-bit range",
        KIND_RUNS: "the kind runs do not add up to n events (n claims more or fewer than sent)",
        UNKNOWN_DICTIONARY: (
            f"the batch names dictionary {detail} of site {site_key!r}, which this decode "
            "was not given"
        ),
    }
    return texts.get(code, f"malformed batch (code {code})")
