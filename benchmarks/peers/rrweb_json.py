"""rrweb-style JSON: what rrweb, PostHog and Sentry store, one JSON object per event.

Each event is ``{"type": 3, "data": {"source": ..., <named fields>}, "timestamp": ...}`` with
rrweb's verbose field names (the same information cemreplay's wire carries, named per kind), and
each batch a JSON array with its session and visitor ids. Parsed with the standard library's
``json`` or with ``orjson`` (the fastest JSON library installable here), then brought to a table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
import polars as pl

from cemreplay.schema import EVENT_SCHEMA, FIELDS, EventKind

_NAMES = {int(k): v for k, v in FIELDS.items()}
_BACK = {int(k): {meaning: slot for slot, meaning in v.items()} for k, v in FIELDS.items()}


def encode(events: pl.DataFrame) -> list[bytes]:
    out = []
    for part in events.partition_by(["session_id", "batch"], maintain_order=True):
        first = part.row(0, named=True)
        evs = []
        for r in part.iter_rows(named=True):
            data: dict[str, Any] = {"_kind": EventKind(r["kind"]).name.lower()}
            for slot, meaning in _NAMES[r["kind"]].items():
                data[meaning] = r[slot]
            evs.append({"type": 3, "data": data, "timestamp": r["t"]})
        out.append(
            json.dumps(
                {
                    "sessionId": first["session_id"],
                    "visitorId": first["visitor_id"],
                    "seq": first["batch"],
                    "events": evs,
                },
                separators=(",", ":"),
            ).encode()
        )
    return out


def _decoder(loads: Callable[[bytes], Any]) -> Callable[[list[bytes]], pl.DataFrame]:
    kinds = {k.name.lower(): int(k) for k in EventKind}

    def decode(payloads: list[bytes]) -> pl.DataFrame:
        cols: dict[str, list[Any]] = {c: [] for c in EVENT_SCHEMA}
        for p in payloads:
            doc = loads(p)
            sid, vid, seq = doc["sessionId"], doc["visitorId"], doc["seq"]
            for i, e in enumerate(doc["events"]):
                data = e["data"]
                kind = kinds[data["_kind"]]
                row = {"x": 0, "y": 0, "a": 0, "b": 0, "target": None, "text": None}
                for meaning, slot in _BACK[kind].items():
                    row[slot] = data[meaning]
                cols["session_id"].append(sid)
                cols["visitor_id"].append(vid)
                cols["t"].append(e["timestamp"])
                cols["batch"].append(seq)
                cols["i"].append(i)
                cols["kind"].append(kind)
                for c in ("x", "y", "a", "b", "target", "text"):
                    cols[c].append(row[c])
        return pl.DataFrame(cols, schema=EVENT_SCHEMA)

    return decode


decode_stdlib = _decoder(json.loads)
decode_orjson = _decoder(orjson.loads)
