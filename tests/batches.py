"""Hand-built wire batches for the store and collector tests (no generator, no encoder)."""

from __future__ import annotations

from typing import Any

import msgpack

from cemreplay.schema import LAYOUT, SLOTS, EventKind

BASE_TS = 1_767_225_600_000


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _zig(v: int) -> bytes:
    return _varint((v << 1) ^ (v >> 31))


def envelope(
    session_id: str,
    seq: int,
    events: list[tuple[int, int, dict[str, int]]],
    *,
    strings: list[str] | None = None,
    str_base: int = 0,
    visitor_id: str = "v1",
    site_key: str = "k",
    base_ts: int = BASE_TS,
) -> list[Any]:
    """The 13 elements of a batch. ``events``: (kind, time delta, slot values); string slots
    hold 1-based references into the session string table (0 null)."""
    kinds, times, ints, refs = bytearray(), bytearray(), bytearray(), bytearray()
    last = {"x": 0, "y": 0}
    for kind, dt, f in events:
        kinds.append(kind)
        times += _zig(dt)
        mask = LAYOUT[kind] if kind < len(LAYOUT) else 0
        for j, slot in enumerate(SLOTS):
            if not mask >> j & 1:
                continue
            v = f.get(slot, 0)
            if slot in ("x", "y"):
                ints += _zig(v - last[slot])
                last[slot] = v
            elif slot in ("a", "b"):
                ints += _zig(v)
            else:
                refs += _varint(v)
    return [1, site_key, visitor_id, session_id, seq, base_ts, str_base, list(strings or []),
            len(events), bytes(kinds), bytes(times), bytes(ints), bytes(refs)]


def pack(env: list[Any]) -> bytes:
    return bytes(msgpack.packb(env, use_bin_type=True))


def batch(
    session_id: str,
    seq: int = 0,
    *,
    url: str = "/",
    moves: int = 3,
    visitor_id: str = "v1",
    site_key: str = "k",
    message: str | None = None,
    attrs: dict[str, str] | None = None,
    base_ts: int = BASE_TS,
) -> bytes:
    """A self-contained batch: a page view of ``url`` (entry 0 of its own table, so each
    batch defines its strings from ``str_base = 0`` when seq is 0, else from a base past the
    earlier batches' entries as :func:`batch` lays them out), ``moves`` mouse moves, an
    optional JS error with ``message`` and ATTRIBUTE events for ``attrs``."""
    strings = [url]
    evs: list[tuple[int, int, dict[str, int]]] = [
        (EventKind.PAGE_VIEW, 0, {"x": 1280, "y": 720, "a": 1, "target": 1}),
    ]
    base = 100 * seq  # each seq gets a private block of entries, so batches never conflict
    for key, value in (attrs or {}).items():
        strings += [key, value]
        evs.append((EventKind.ATTRIBUTE, 0, {"target": base + len(strings) - 1,
                                              "text": base + len(strings)}))
    evs[0][2]["target"] = base + 1
    for k in range(moves):
        evs.append((EventKind.MOUSE_MOVE, 16, {"x": 10 * k, "y": 5 * k}))
    if message is not None:
        strings.append(message)
        evs.append((EventKind.JS_ERROR, 5, {"target": 0, "text": base + len(strings)}))
    return pack(envelope(session_id, seq, evs, strings=strings, str_base=base,
                         visitor_id=visitor_id, site_key=site_key,
                         base_ts=base_ts + 60_000 * seq))
