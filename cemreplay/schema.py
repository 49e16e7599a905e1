"""The wire contract and the event table: the single source of truth.

Everything that crosses a boundary is defined here: the wire version, the event
kinds, which generic fields each kind carries and what they mean, the click
flag bits, and the polars schema of the event table. The JS snippet's constants
are generated from this module (``python -m cemreplay.schema --js``) and a test
fails if the two drift apart.

Kinds are **append-only**: a number, once given, keeps its meaning forever.

The event table
---------------
One row per event, in canonical order: by ``session_id`` (lexical), then by the
order the snippet recorded them (``batch``, ``i``). Every kind uses the same
columns; what ``x``, ``y``, ``a``, ``b``, ``target`` and ``text`` mean depends on
``kind`` (see :data:`FIELDS`). Integer fields a kind does not use are 0, string
fields a kind does not use are null. :func:`cemreplay.events.view` renames the
generic columns to their meaning for one kind.
"""

from __future__ import annotations

import sys
from enum import IntEnum, IntFlag
from typing import Final

import polars as pl

#: The wire format version this library (and the snippet) writes without a site dictionary.
WIRE_VERSION: Final = 2
#: The version written with a site dictionary (version 2 plus one envelope element).
DICTIONARY_WIRE_VERSION: Final = 3
#: Versions the decoder accepts (stores keep older batches; one decode may mix versions).
SUPPORTED_WIRE_VERSIONS: Final = frozenset({1, 2, 3})

#: Hard limits a decoder enforces (a batch over them is malformed).
MAX_EVENTS_PER_BATCH: Final = 65_535
MAX_STRINGS_PER_BATCH: Final = 65_535
MAX_STRING_BYTES: Final = 4_096
MAX_ID_BYTES: Final = 128
MAX_BATCH_BYTES: Final = 4 * 1024 * 1024


class EventKind(IntEnum):
    """What happened. Append-only: never renumber, never reuse."""

    PAGE_VIEW = 1
    ATTRIBUTE = 2
    CLICK = 3
    MOUSE_MOVE = 4
    SCROLL = 5
    FOCUS = 6
    BLUR = 7
    CHANGE = 8
    SUBMIT = 9
    VALIDATION_ERROR = 10
    JS_ERROR = 11
    NETWORK_FAILURE = 12
    MUTATION = 13
    REQUEST = 14
    VISIBILITY_HIDDEN = 15
    VISIBILITY_VISIBLE = 16
    PAGE_LEAVE = 17
    RESIZE = 18
    MILESTONE = 19
    GEOMETRY = 20


class ClickFlag(IntFlag):
    """Bits of a click's ``a`` field. Bits 0-1 hold the mouse button (0 left, 1 middle, 2 right)."""

    BUTTON_MASK = 0b11
    CTRL = 1 << 2
    SHIFT = 1 << 3
    ALT = 1 << 4
    META = 1 << 5
    #: button, a[href], input/select/textarea/label, [role=button|link|tab|...], [onclick]
    INTERACTIVE = 1 << 6
    #: a text-like input, textarea or contenteditable: clicks there place a caret
    TEXT_INPUT = 1 << 7
    #: a link with target=_blank or download: the response happens elsewhere
    NEW_CONTEXT = 1 << 8
    #: the element or an ancestor carries data-cem-no-rage
    NO_RAGE = 1 << 9
    #: a[href]
    LINK = 1 << 10
    #: what was clicked is not known (imported recordings without a DOM snapshot): the other
    #: element bits are then 0 because nobody knows, not because the element is plain text
    UNKNOWN_ELEMENT = 1 << 11

    #: any modifier key held
    MODIFIERS = CTRL | SHIFT | ALT | META


class DeviceClass(IntEnum):
    """A page view's ``a`` field: the device class the snippet inferred."""

    UNKNOWN = 0
    DESKTOP = 1
    TABLET = 2
    MOBILE = 3


class NavigationType(IntEnum):
    """A page view's ``b`` field: how the page was reached."""

    LOAD = 0
    PUSH = 1
    HASH = 2
    POP = 3
    RELOAD = 4


class ErrorSource(IntEnum):
    """A validation error's ``a`` field: how the error was seen."""

    NATIVE = 0
    ARIA = 1
    API = 2


#: Attribute keys (``ATTRIBUTE`` events, ``target`` = key, ``text`` = value) the snippet sends
#: right after a page view when they are set or change. Other keys are allowed.
SEGMENT_KEYS: Final = (
    "locale",
    "timezone",
    "utm_campaign",
    "utm_source",
    "utm_medium",
    "country",
)

# Field slots. The order here is the order fields appear on the wire.
SLOTS: Final = ("x", "y", "a", "b", "target", "text")
INT_SLOTS: Final = ("x", "y", "a", "b")
STR_SLOTS: Final = ("target", "text")
#: Slots delta-coded on the wire. Version 1: x and y, against the previous event in the batch
#: that has them. Version 2: every integer slot, against the previous event of the same kind.
DELTA_SLOTS: Final = ("x", "y")

#: For each kind, the meaning of each slot it uses. A slot not listed is not sent.
FIELDS: Final[dict[EventKind, dict[str, str]]] = {
    EventKind.PAGE_VIEW: {
        "x": "viewport_width",
        "y": "viewport_height",
        "a": "device_class",
        "b": "navigation_type",
        "target": "url",
        "text": "referrer",
    },
    EventKind.ATTRIBUTE: {"target": "key", "text": "value"},
    EventKind.CLICK: {"x": "x", "y": "y", "a": "flags", "b": "detail", "target": "selector"},
    EventKind.MOUSE_MOVE: {"x": "x", "y": "y"},
    EventKind.SCROLL: {
        "x": "scroll_x",
        "y": "scroll_y",
        "a": "page_height",
        "b": "viewport_height",
    },
    EventKind.FOCUS: {"target": "field"},
    EventKind.BLUR: {"a": "length", "target": "field", "text": "shape"},
    EventKind.CHANGE: {"a": "length", "target": "field", "text": "shape"},
    EventKind.SUBMIT: {"target": "form"},
    EventKind.VALIDATION_ERROR: {"a": "error_source", "target": "field", "text": "message"},
    EventKind.JS_ERROR: {"target": "source", "text": "message"},
    EventKind.NETWORK_FAILURE: {"a": "status", "target": "url", "text": "method"},
    EventKind.MUTATION: {"a": "nodes"},
    EventKind.REQUEST: {"target": "url"},
    EventKind.VISIBILITY_HIDDEN: {},
    EventKind.VISIBILITY_VISIBLE: {},
    EventKind.PAGE_LEAVE: {},
    EventKind.RESIZE: {"x": "width", "y": "height"},
    EventKind.MILESTONE: {"a": "value", "target": "name"},
    EventKind.GEOMETRY: {"x": "x", "y": "y", "a": "width", "b": "height", "target": "selector"},
}

#: Kinds that count as a response to a click (for dead-click detection).
RESPONSE_KINDS: Final = frozenset(
    {
        EventKind.MUTATION,
        EventKind.REQUEST,
        EventKind.PAGE_VIEW,
        EventKind.SCROLL,
        EventKind.FOCUS,
        EventKind.PAGE_LEAVE,
    }
)


def slot_mask(kind: EventKind) -> int:
    """Bit ``j`` set when slot ``SLOTS[j]`` is sent for ``kind``."""
    used = FIELDS[kind]
    return sum(1 << j for j, slot in enumerate(SLOTS) if slot in used)


#: ``LAYOUT[k]`` is the slot mask of kind ``k``; -1 for numbers that are no kind (yet).
LAYOUT: Final[tuple[int, ...]] = tuple(
    slot_mask(EventKind(k)) if k in EventKind._value2member_map_ else -1
    for k in range(max(EventKind) + 1)
)

#: The polars schema of the event table, in column order.
EVENT_SCHEMA: Final = pl.Schema(
    {
        "session_id": pl.Categorical(),
        "visitor_id": pl.Categorical(),
        "t": pl.Int64(),
        "batch": pl.UInt32(),
        "i": pl.UInt16(),
        "kind": pl.UInt8(),
        "x": pl.Int32(),
        "y": pl.Int32(),
        "a": pl.Int32(),
        "b": pl.Int32(),
        "target": pl.Categorical(),
        "text": pl.Categorical(),
    }
)

#: The kinds of finding, their names fixed (tools, reports and the generator's ground truth
#: depend on them), in the order the detectors run: funnel_abandon last, because it names the
#: last struggle before a drop-off.
FINDING_KINDS: Final = (
    "rage_click",
    "dead_click",
    "error_click",
    "thrashed_cursor",
    "excessive_scroll",
    "quick_back",
    "form_error",
    "failed_submit",
    "field_refill",
    "form_abandon",
    "funnel_abandon",
)

#: The findings table (``cemreplay.detect``'s output, and what the store keeps): one row per
#: finding, sorted by session_id, t, kind.
FINDINGS_SCHEMA: Final = pl.Schema(
    {
        "session_id": pl.String(),
        "visitor_id": pl.String(),
        "page_view": pl.UInt32(),
        "kind": pl.String(),
        "t": pl.Int64(),
        "page_url": pl.String(),
        "target": pl.String(),
        "field": pl.String(),
        "severity": pl.Float64(),
        "count": pl.UInt32(),
        "duration_ms": pl.Int64(),
        "detail": pl.String(),
        "explanation": pl.String(),
    }
)

#: Column descriptions, for docs and ``--help`` output.
EVENT_COLUMNS: Final = {
    "session_id": "the snippet's session id (what a visitor reads out to support)",
    "visitor_id": "the snippet's visitor id (first-party, random, per browser)",
    "t": "event time, epoch milliseconds (client clock)",
    "batch": "sequence number of the batch the event came in (per session)",
    "i": "position of the event inside its batch",
    "kind": "EventKind number",
    "x": "kind-specific integer (see FIELDS), 0 when unused",
    "y": "kind-specific integer (see FIELDS), 0 when unused",
    "a": "kind-specific integer (see FIELDS), 0 when unused",
    "b": "kind-specific integer (see FIELDS), 0 when unused",
    "target": "kind-specific string: selector, field, URL, key or name; null when unused",
    "text": "kind-specific string: message, shape, referrer or value; null when unused",
}


def js_constants() -> str:
    """The snippet's generated constants module (``js-snippet/src/schema.gen.js``)."""
    lines = [
        "// Generated by `python -m cemreplay.schema --js`. Do not edit: a test checks it.",
        f"export const WIRE_VERSION = {WIRE_VERSION};",
        "export const K = {",
        *(f"  {k.name}: {k.value}," for k in EventKind),
        "};",
        "export const F = {",
        *(
            f"  {f.name}: {f.value},"
            for f in ClickFlag
            if f.name is not None and f not in (ClickFlag.MODIFIERS,)
        ),
        "};",
        "export const DEVICE = {",
        *(f"  {d.name}: {d.value}," for d in DeviceClass),
        "};",
        "export const NAV = {",
        *(f"  {n.name}: {n.value}," for n in NavigationType),
        "};",
        "export const ERR_SRC = {",
        *(f"  {e.name}: {e.value}," for e in ErrorSource),
        "};",
        "// LAYOUT[kind]: bit j set when slot j of [x, y, a, b, target, text] is sent.",
        f"export const LAYOUT = [{', '.join(str(m) for m in LAYOUT)}];",
        f"export const MAX_STRING_BYTES = {MAX_STRING_BYTES};",
        f"export const MAX_EVENTS_PER_BATCH = {MAX_EVENTS_PER_BATCH};",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - a generator entry point
    if sys.argv[1:] == ["--js"]:
        sys.stdout.write(js_constants())
    else:
        sys.stderr.write("usage: python -m cemreplay.schema --js\n")
        raise SystemExit(2)
