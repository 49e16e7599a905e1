"""The wire contract: kinds are append-only and every layout is consistent."""

from __future__ import annotations

from cemreplay.schema import FIELDS, LAYOUT, SLOTS, EventKind, js_constants, slot_mask

# Numbers once given never change meaning. Append new kinds here; never edit a line.
FROZEN = {
    "PAGE_VIEW": 1,
    "ATTRIBUTE": 2,
    "CLICK": 3,
    "MOUSE_MOVE": 4,
    "SCROLL": 5,
    "FOCUS": 6,
    "BLUR": 7,
    "CHANGE": 8,
    "SUBMIT": 9,
    "VALIDATION_ERROR": 10,
    "JS_ERROR": 11,
    "NETWORK_FAILURE": 12,
    "MUTATION": 13,
    "REQUEST": 14,
    "VISIBILITY_HIDDEN": 15,
    "VISIBILITY_VISIBLE": 16,
    "PAGE_LEAVE": 17,
    "RESIZE": 18,
    "MILESTONE": 19,
    "GEOMETRY": 20,
}


def test_kinds_are_append_only() -> None:
    current = {k.name: k.value for k in EventKind}
    for name, number in FROZEN.items():
        assert current.get(name) == number, f"{name} must stay {number}"
    assert sorted(current.values()) == list(range(1, len(current) + 1))


def test_every_kind_has_a_layout() -> None:
    assert set(FIELDS) == set(EventKind)
    for k in EventKind:
        assert set(FIELDS[k]) <= set(SLOTS)
        assert LAYOUT[k] == slot_mask(k)
    assert LAYOUT[0] == -1


def test_js_constants_carry_every_kind() -> None:
    js = js_constants()
    for k in EventKind:
        assert f"  {k.name}: {k.value}," in js
    assert f"export const LAYOUT = [{', '.join(map(str, LAYOUT))}];" in js
