"""Wire version 3, the per-site string dictionary, on its own: what ``python -m benchmarks
wire`` measures in its ``site_dictionary`` part, with the learning rule's options open.

    python benchmarks/wire_dictionary.py [--events 2000000] [--min-visitors 20] [--json F]

The generator's traffic (``--events`` fresh events, not a repeated stream: "sent by 20
visitors" means 20 real visitors) is split by session start: ``cemreplay.wire.learn_dictionary``
learns the site's dictionary from the earlier half of the sessions, and the later half (new
sessions, most of them of new visitors) is encoded with it (``wire.encode(dictionary=)``, v3)
and without it (v2), in the snippet's batches and in ordinary ones; both decode back to the
same table (checked). Reported: bytes per event by part, the dictionary's size (JSON and
gzipped: each visitor's one-time download), the events per visitor at which that download
pays for itself, and decode throughput of both versions on the same events.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from benchmarks._data import machine
from benchmarks.wire import dictionary_run
from cemreplay import synth


def run(events: int, seed: int, min_visitors: int, most: int, reps: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    ev = synth.generate(events=events, seed=seed).events
    result = {
        "stage": "wire-dictionary",
        "machine": machine(),
        "events_generated": ev.height,
        "seed": seed,
        **dictionary_run(ev, reps, min_visitors=min_visitors, max_entries=most),
    }
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=2_000_000)
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--min-visitors", type=int, default=20)
    p.add_argument("--most", type=int, default=4096, help="dictionary entries at most")
    p.add_argument("--reps", type=int, default=3, help="decode timings: best of this many")
    p.add_argument("--json", metavar="FILE")
    a = p.parse_args()
    r = run(a.events, a.seed, a.min_visitors, a.most, a.reps)
    text = json.dumps(r, indent=2)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    print(text)
    if r["dictionary"] is not None:
        v2, v3 = r["v2_ordinary"], r["v3_ordinary"]
        print(
            f"\nbytes/event on {r['measured_on']['events']:,} events (ordinary batches): v2 "
            f"{v2['total']}, v3 with a {r['dictionary']['entries']}-entry site dictionary "
            f"{v3['total']} (strings {v2['strings']} -> {v3['strings']}, refs {v2['refs']} -> "
            f"{v3['refs']}); the dictionary is {r['dictionary']['gzip_bytes']:,} bytes gzipped, "
            f"paid back after {r['break_even_events_per_visitor']} events of a visitor",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
