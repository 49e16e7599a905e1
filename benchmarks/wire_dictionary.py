"""What a per-site string dictionary would save on the wire: a measurement for a future wire
version, not a format cemreplay writes or reads.

    python benchmarks/wire_dictionary.py [--events 2000000] [--min-visitors 20] [--json F]

Each session's string table (element selectors, URLs, messages) is 3.7 of the 10.1 bytes per
event of wire v2 on the generator's mix, and most of those strings are the same on every
visit to a site. The design measured here: the collector learns the strings a site's visitors
send most (only strings sent by at least ``--min-visitors`` different visitors, so nothing
particular to one visitor is ever handed to others) and serves them as a numbered dictionary;
a batch names its dictionary and every session's string table starts pre-filled with it, so
references to a dictionary string are its index and only the rest are sent. No change to the
events, the references or the rules on sessions; one envelope field more.

Method: the generator's traffic is split by session start: the dictionary is learned from the
earlier half of the sessions and measured on the later half (new sessions, some of them new
visitors), in ordinary batches, against wire v2 on the same later half. The encoder below is
``cemreplay.wire.encode`` with the table pre-filled; with an empty dictionary it gives
``encode``'s bytes exactly (checked on every run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import msgpack
import numpy as np
import polars as pl

from benchmarks._data import machine, ordinary_batches
from benchmarks.wire import parts
from cemreplay import synth, wire
from cemreplay.schema import LAYOUT, WIRE_VERSION
from cemreplay.wire import _kernels as K

_LAYOUT = np.array(LAYOUT, dtype=np.int16)


def learn(events: pl.DataFrame, min_visitors: int, most: int) -> list[str]:
    """The strings (target or text) sent by at least ``min_visitors`` visitors, the most
    widely sent first (so the most used take one-byte references), at most ``most``."""
    used = pl.concat(
        [
            events.select("visitor_id", "session_id", pl.col(c).cast(pl.String).alias("s"))
            for c in ("target", "text")
        ]
    ).drop_nulls("s")
    top = (
        used.group_by("s")
        .agg(pl.col("visitor_id").n_unique().alias("v"), pl.col("session_id").n_unique().alias("n"))
        .filter(pl.col("v") >= min_visitors)
        .sort(["n", "s"], descending=[True, False])
        .head(most)
    )
    return top["s"].to_list()


def encode_with(events: pl.DataFrame, dictionary: list[str], dict_id: int = 1) -> list[bytes]:
    """``wire.encode(events)`` with every session's string table pre-filled by ``dictionary``
    (references ``1..D`` are dictionary entries, a session's own entries follow) and the
    dictionary's id as a 14th envelope element when the dictionary is not empty."""
    ev = events.sort("session_id", "batch", "i")  # the order encode() writes
    n = ev.height
    kind = ev["kind"].to_numpy()
    layout = _LAYOUT[kind]
    sess = ev["session_id"].to_physical().cast(pl.Int64).to_numpy()
    seq = ev["batch"].cast(pl.Int64).to_numpy()
    t = ev["t"].to_numpy()
    d_index = {s: k for k, s in enumerate(dictionary)}
    n_dict = len(dictionary)
    # per row: (string or None) of target and text, for the slots the kind uses
    tg = ev["target"].cast(pl.String).to_list()
    tx = ev["text"].cast(pl.String).to_list()
    starts = np.flatnonzero(np.r_[True, (sess[1:] != sess[:-1]) | (seq[1:] != seq[:-1])])
    bounds = np.append(starts, n)
    rt = np.zeros(n, np.int64)
    rx = np.zeros(n, np.int64)
    batch_new: list[list[str]] = []
    batch_base: list[int] = []
    own: dict[str, int] = {}
    for j, r0 in enumerate(starts.tolist()):
        r1 = int(bounds[j + 1])
        if j == 0 or sess[r0] != sess[starts[j - 1]]:
            own = {}
        base = len(own)
        new: list[str] = []
        for r in range(r0, r1):
            for vals, refs, bit in ((tg, rt, 16), (tx, rx, 32)):
                s = vals[r]
                if s is None or not layout[r] & bit:
                    continue
                k = d_index.get(s)
                if k is not None:
                    refs[r] = k + 1
                    continue
                if s not in own:
                    own[s] = len(own)
                    new.append(s)
                refs[r] = n_dict + own[s] + 1
        batch_new.append(new)
        batch_base.append(base)
    out = np.empty(int(n * 7 + int(np.bitwise_count(layout.astype(np.uint8)).sum()) * 5), np.uint8)
    sect = np.zeros((len(starts), 5), np.int64)
    x, y, a, b = (ev[c].to_numpy() for c in ("x", "y", "a", "b"))
    wrote = K.encode_sections(bounds, kind, t, x, y, a, b, rt, rx, _LAYOUT, out, sect, True)
    assert wrote >= 0
    raw = out[:wrote].tobytes()
    sid = ev["session_id"].cast(pl.String).to_list()
    vid = ev["visitor_id"].cast(pl.String).to_list()
    packb = msgpack.Packer(use_bin_type=True).pack
    result = []
    for j, r0 in enumerate(starts.tolist()):
        k0, k1, k2, k3, k4 = sect[j].tolist()
        env: list[Any] = [
            WIRE_VERSION, "demo", vid[r0], sid[r0], int(seq[r0]), int(t[r0]), batch_base[j],
            batch_new[j], int(bounds[j + 1]) - r0,
            raw[k0:k1], raw[k1:k2], raw[k2:k3], raw[k3:k4],
        ]  # fmt: skip
        if dictionary:
            env.append(dict_id)
        result.append(packb(env))
    return result


def run(events: int, seed: int, min_visitors: int, most: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    ev = ordinary_batches(synth.generate(events=events, seed=seed).events)
    first = ev.group_by("session_id").agg(pl.col("t").min())
    cut = first["t"].median()
    early = first.filter(pl.col("t") < cut)["session_id"]
    learn_on = ev.filter(pl.col("session_id").is_in(early.implode()))
    test = ev.filter(~pl.col("session_id").is_in(early.implode()))
    dictionary = learn(learn_on, min_visitors, most)
    v2 = wire.encode(test)
    same = encode_with(test, [])
    assert same == v2, "the measuring encoder differs from wire.encode with no dictionary"
    withd = encode_with(test, dictionary)
    seen = set(learn_on["visitor_id"].unique().cast(pl.String).to_list())
    new_vis = test.filter(~pl.col("visitor_id").cast(pl.String).is_in(list(seen)))
    dict_bytes = len(msgpack.packb(dictionary))
    return {
        "stage": "wire-dictionary",
        "machine": machine(),
        "events_generated": ev.height,
        "seed": seed,
        "learned_on": {"sessions": early.len(), "events": learn_on.height},
        "measured_on": {
            "sessions": test["session_id"].n_unique(),
            "events": test.height,
            "batches": len(v2),
            "events_of_new_visitors": new_vis.height,
        },
        "dictionary": {
            "min_visitors": min_visitors,
            "entries": len(dictionary),
            "bytes_msgpack": dict_bytes,
        },
        "v2": parts(v2, test.height),
        "v2_with_site_dictionary": parts(withd, test.height),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=2_000_000)
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--min-visitors", type=int, default=20)
    p.add_argument("--most", type=int, default=4096, help="dictionary entries at most")
    p.add_argument("--json", metavar="FILE")
    a = p.parse_args()
    r = run(a.events, a.seed, a.min_visitors, a.most)
    text = json.dumps(r, indent=2)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    print(text)
    v2, vd = r["v2"], r["v2_with_site_dictionary"]
    print(
        f"\nbytes/event on {r['measured_on']['events']:,} events: v2 {v2['total']}, with a "
        f"{r['dictionary']['entries']}-entry site dictionary {vd['total']} "
        f"(strings {v2['strings']} -> {vd['strings']}, refs {v2['refs']} -> {vd['refs']})",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
