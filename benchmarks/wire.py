"""Wire size and decode speed: cemreplay's format against the formats users would pick.

    python -m benchmarks wire [--events 10000000] [--peer-events 300000] [--cores 1] [--quick]

Measured in one run on the same events (the generator's default mix):

* bytes per event of cemreplay's wire format, versions 2 (what the snippet writes) and 1, in
  total and per part of a batch (envelope, string table, kinds, times, ints, refs), batched as
  the snippet flushes (every 5 s) and in "ordinary" batches of 100-500 events; rrweb-style JSON
  and row-per-event msgpack for the same events;
* wire version 3, the per-site string dictionary, on the generator's own traffic (the
  ``--gen-events`` it generates, not the repeated stream, so that "sent by 20 visitors" means
  20 real visitors): a dictionary learned by ``wire.learn_dictionary`` on the earlier half of
  the sessions (by start), the later half encoded with it and without it (v2), in ordinary
  and in 5 s snippet batches (these also each gzipped when that makes them smaller, as a
  snippet may send them); the dictionary's own size (JSON, and gzipped: the one-time
  download of each visitor), the events per visitor at which that download pays for itself,
  and the decode throughput of the v3 stream against v2 on the same events;
* decode throughput (events/s, best of 3, one core: every thread of the process is pinned
  with ``sched_setaffinity`` to ``--cores`` cores, checked after the timing and reported as
  ``decode_threads_cpus``; numba kernels are single-threaded; polars' thread pool runs on the
  same core; the process CPU time of the best run is reported beside its wall time) of
  cemreplay's numba decoder over the ordinary batches of each version (a list of ``bytes``,
  and the same batches back to back in one buffer, ``wire.PackedBatches``, as a batch file
  or a store page holds them: decoded in place), against row msgpack +
  polars and rrweb JSON parsed with the standard library and with orjson, each brought to the
  same event table (checked equal). The peers are pure Python per event, so they run on the
  first ``--peer-events`` events; throughput is per event either way.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import time
from collections.abc import Callable
from typing import Any

import msgpack
import numpy as np
import polars as pl

from benchmarks._data import machine, ordinary_batches, stream, targets_line
from benchmarks.peers import row_msgpack, rrweb_json
from cemreplay import synth, wire
from cemreplay.store import next_dictionary_id


def _best(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    secs, _, out = _best_cpu(fn, reps)
    return secs, out


def _best_cpu(fn: Callable[[], Any], reps: int) -> tuple[float, float, Any]:
    """Best wall time of ``reps`` runs, the process CPU time of that run, and its result. On
    a busy machine the wall time counts the moments the pinned core ran something else; the
    CPU time does not (it counts every thread of the process, all pinned to the same core)."""
    best, cpu, out = float("inf"), float("inf"), None
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall, used = time.perf_counter() - t0, time.process_time() - c0
        if wall < best:
            best, cpu = wall, used
    return best, cpu, out


def pin(cores: set[int]) -> None:
    """Pin every thread of this process to ``cores``. ``os.sched_setaffinity(0, ...)`` pins
    only the calling thread and the threads it starts later; threads already running (the
    allocator's background threads, polars' housekeeping) would keep every core."""
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that just ended
            os.sched_setaffinity(int(tid), cores)


def thread_cpus() -> list[int]:
    """The cores any thread of this process may run on (checked after a timed decode)."""
    cpus: set[int] = set()
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):
            cpus |= os.sched_getaffinity(int(tid))
    return sorted(cpus)


PARTS = ("envelope", "strings", "kinds", "times", "ints", "refs")


def parts(batches: list[bytes], events: int) -> dict[str, float]:
    """Bytes per event of each part of the batches: the string table (entries with their
    msgpack headers), the four event sections (without their bin headers), and the envelope
    (everything else: ids, seq, base_ts, counts, headers)."""
    total = dict.fromkeys(PARTS, 0)
    size = 0
    for b in batches:
        env = msgpack.unpackb(b, raw=True)
        size += len(b)
        total["strings"] += sum(len(s) + (1 if len(s) < 32 else 2) for s in env[7])
        for name, el in zip(PARTS[2:], env[9:13], strict=True):
            total[name] += len(el)
    total["envelope"] = size - sum(total.values())
    out = {k: round(v / max(events, 1), 3) for k, v in total.items()}
    out["total"] = round(size / max(events, 1), 2)
    return out


def _same(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    return a.select(pl.all().cast(pl.String)).equals(b.select(pl.all().cast(pl.String)))


def split_by_start(events: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The sessions that start before the median session start, and the others."""
    first = events.group_by("session_id").agg(pl.col("t").min())
    early = first.filter(pl.col("t") < first["t"].median())["session_id"].implode()
    return (
        events.filter(pl.col("session_id").is_in(early)),
        events.filter(~pl.col("session_id").is_in(early)),
    )


def dictionary_run(
    events: pl.DataFrame, reps: int, min_visitors: int = 20, max_entries: int = 4096
) -> dict[str, Any]:
    """Wire v3 against v2 on the later half of ``events``' sessions (generated traffic, as
    the snippet batches it), with a site dictionary learned on the earlier half; see the
    module docstring. Decode timings on ordinary batches, best of ``reps``."""
    learn_on, test = split_by_start(events)
    t0 = time.perf_counter()
    # an id as the store gives one (from the clock: 5 bytes in each batch, not 1)
    d = wire.learn_dictionary(
        learn_on,
        site_key="demo",
        id=next_dictionary_id(None, now=1_800_000_000),
        min_visitors=min_visitors,
        max_entries=max_entries,
    )
    learn_s = time.perf_counter() - t0
    seen = learn_on["visitor_id"].cast(pl.String).unique().implode()
    out: dict[str, Any] = {
        "learned_on": {"sessions": learn_on["session_id"].n_unique(), "events": learn_on.height},
        "measured_on": {
            "sessions": test["session_id"].n_unique(),
            "visitors": test["visitor_id"].n_unique(),
            "events": test.height,
            "events_of_new_visitors": test.filter(
                ~pl.col("visitor_id").cast(pl.String).is_in(seen)
            ).height,
        },
        "learn_seconds": round(learn_s, 3),
    }
    if d is None:
        out["dictionary"] = None
        return out
    js = d.to_json()
    gz = gzip.compress(js, compresslevel=9, mtime=0)
    out["dictionary"] = {
        "min_visitors": min_visitors,
        "entries": len(d.strings),
        "json_bytes": len(js),
        "gzip_bytes": len(gz),
    }
    ordinary = ordinary_batches(test)
    for batching, table in (("snippet", test), ("ordinary", ordinary)):
        v2, v3 = wire.encode(table), wire.encode(table, dictionary=d)
        out[f"v2_{batching}"] = parts(v2, table.height)
        out[f"v3_{batching}"] = parts(v3, table.height)
        if batching != "ordinary":
            # as a snippet may send them: each batch gzipped when that makes it smaller
            for name, batches in (("v2", v2), ("v3", v3)):
                sent = sum(min(len(b), len(gzip.compress(b, 6, mtime=0))) for b in batches)
                out[f"{name}_snippet_gzip_when_smaller"] = round(sent / table.height, 2)
            continue
        speeds = {}
        for name, batches, dicts in (("v2", v2, []), ("v3", v3, [d])):
            wire.decode(batches[:3], dictionaries=dicts)  # compile / load outside the timing
            secs, cpu_secs, decoded = _best_cpu(
                lambda b=batches, x=dicts: wire.decode(b, dictionaries=x), reps
            )
            assert decoded.equals(table), f"cemreplay {name} decode differs from its input"
            del decoded
            speeds[name] = {
                "decode_seconds": round(secs, 4),
                "decode_events_per_s": round(table.height / secs),
                "decode_events_per_cpu_s": round(table.height / max(cpu_secs, 1e-9)),
            }
        out["decode_ordinary"] = speeds
        saved = (sum(map(len, v2)) - sum(map(len, v3))) / table.height
        out["saved_bytes_per_event_ordinary"] = round(saved, 3)
        per_visitor = test.group_by("visitor_id").len()["len"]
        out["events_per_visitor"] = round(table.height / max(per_visitor.len(), 1), 1)
        # the one-time download (gzipped) against the saving per event (batches as sent,
        # before any compression of their own)
        even = len(gz) / saved if saved > 0 else float("inf")
        out["break_even_events_per_visitor"] = round(even) if saved > 0 else None
        out["events_of_visitors_past_break_even"] = round(
            float(per_visitor.filter(per_visitor >= even).sum()) / max(table.height, 1), 3
        )
        # every visitor of the measured half downloading the dictionary once, spread over
        # the events they sent
        out["net_saved_bytes_per_event_one_download_per_visitor"] = round(
            saved - len(gz) * per_visitor.len() / max(table.height, 1), 3
        )
    return out


def run(
    events: int, peer_events: int, reps: int, gen_events: int, quick: bool = False
) -> dict[str, Any]:
    result: dict[str, Any] = {"stage": "wire", "machine": machine(), "events": events}
    synth.generate(sessions=5, seed=1)  # compile / load the generator's kernel first
    t0 = time.perf_counter()
    gen = synth.generate(events=gen_events, seed=5)
    result["generator"] = {
        "events": gen.events.height,
        "seconds": round(time.perf_counter() - t0, 3),
        "events_per_s": round(gen.events.height / (time.perf_counter() - t0)),
    }
    result["site_dictionary"] = dictionary_run(gen.events, reps)
    del gen
    data = stream(events)
    ordinary = ordinary_batches(data)
    versions: dict[str, dict[str, Any]] = {}
    for version in (2, 1):
        snippet_batches = wire.encode(data, version=version)
        batches = wire.encode(ordinary, version=version)
        wire.decode(batches[:3])  # compile / load the kernels outside the timing
        pin(os.sched_getaffinity(0))  # threads started since main() pinned the process
        secs, cpu_secs, decoded = _best_cpu(lambda batches=batches: wire.decode(batches), reps)
        cpus = thread_cpus()
        assert decoded.equals(ordinary), f"cemreplay v{version} decode differs from its input"
        del decoded
        # the same batches back to back in one buffer, as a file or a store page holds them:
        # decoded in place (no copy into the decoder's buffer)
        offsets = np.zeros(len(batches) + 1, np.int64)
        np.cumsum([len(b) for b in batches], out=offsets[1:])
        packed = wire.PackedBatches(b"".join(batches), offsets)
        # compile / load the kernels for a read-only buffer outside the timing
        wire.decode(wire.PackedBatches(packed.data, offsets[:4]))
        psecs, pcpu, decoded = _best_cpu(lambda packed=packed: wire.decode(packed), reps)
        assert decoded.equals(ordinary), f"cemreplay v{version} packed decode differs"
        del decoded, packed
        versions[f"v{version}"] = {
            "bytes_per_event_snippet_batches": round(
                sum(map(len, snippet_batches)) / data.height, 2
            ),
            "events_per_snippet_batch": round(data.height / len(snippet_batches), 1),
            "bytes_per_event_ordinary_batches": round(sum(map(len, batches)) / ordinary.height, 2),
            "events_per_ordinary_batch": round(ordinary.height / len(batches), 1),
            "parts_snippet_batches": parts(snippet_batches, data.height),
            "parts_ordinary_batches": parts(batches, ordinary.height),
            "decode_seconds": round(secs, 4),
            "decode_events_per_s": round(ordinary.height / secs),
            "decode_cpu_seconds": round(cpu_secs, 4),
            "decode_events_per_cpu_s": round(ordinary.height / max(cpu_secs, 1e-9)),
            "decode_threads_cpus": cpus,
            "decode_packed_seconds": round(psecs, 4),
            "decode_packed_events_per_s": round(ordinary.height / psecs),
            "decode_packed_events_per_cpu_s": round(ordinary.height / max(pcpu, 1e-9)),
        }
        del snippet_batches, batches
    result["cemreplay"] = versions["v2"]
    result["cemreplay_v1"] = versions["v1"]
    cem_rate = versions["v2"]["decode_events_per_s"]
    sub = ordinary.head(peer_events)
    peers: dict[str, dict[str, Any]] = {}
    for name, enc, dec in (
        ("row msgpack + polars", row_msgpack.encode, row_msgpack.decode),
        ("rrweb JSON + json (stdlib)", rrweb_json.encode, rrweb_json.decode_stdlib),
        ("rrweb JSON + orjson", rrweb_json.encode, rrweb_json.decode_orjson),
    ):
        payload = enc(sub)
        psecs, out = _best(lambda dec=dec, payload=payload: dec(payload), reps)
        assert _same(out, sub), f"{name} decode differs from its input"
        rate = sub.height / psecs
        peers[name] = {
            "events": sub.height,
            "bytes_per_event": round(sum(map(len, payload)) / sub.height, 2),
            "decode_events_per_s": round(rate),
            "cemreplay_speedup": round(cem_rate / rate, 1),
        }
    result["peers"] = peers
    if quick:
        result["targets"] = "not evaluated with --quick (too small to mean anything)"
        return result
    result["targets"] = {
        "wire v2 bytes_per_event<=8 (snippet batches)": result["cemreplay"][
            "bytes_per_event_snippet_batches"
        ]
        <= 8,
        "wire v2 bytes_per_event<=8 (ordinary batches)": result["cemreplay"][
            "bytes_per_event_ordinary_batches"
        ]
        <= 8,
        "wire v3 (site dictionary) bytes_per_event<=8 (snippet batches)": bool(
            result["site_dictionary"].get("v3_snippet", {}).get("total", 99) <= 8
        ),
        "wire v3 (site dictionary) bytes_per_event<=8 (ordinary batches)": bool(
            result["site_dictionary"].get("v3_ordinary", {}).get("total", 99) <= 8
        ),
        "decode>=30M events/s": cem_rate >= 30e6,
        "decode>=10x row msgpack": peers["row msgpack + polars"]["cemreplay_speedup"] >= 10,
        "generator 10M events < 10 s": result["generator"]["events_per_s"] >= 1e6,
    }
    return result


def table(result: dict[str, Any]) -> str:
    c = result["cemreplay"]
    c1 = result["cemreplay_v1"]
    lines = [
        f"wire: {result['events']:,} events; machine {result['machine']}",
        f"{'format':<28} {'bytes/event':>12} {'decode ev/s':>14} {'cemreplay x':>12}",
        f"{'cemreplay v2 (ordinary)':<28} {c['bytes_per_event_ordinary_batches']:>12} "
        f"{c['decode_events_per_s']:>14,} {'1.0':>12}",
        f"{'cemreplay v2 (snippet 5 s)':<28} {c['bytes_per_event_snippet_batches']:>12}",
        f"{'cemreplay v2 (one buffer)':<28} {c['bytes_per_event_ordinary_batches']:>12} "
        f"{c['decode_packed_events_per_s']:>14,} "
        f"{round(c['decode_packed_events_per_s'] / c['decode_events_per_s'], 1):>12}",
        f"{'cemreplay v1 (ordinary)':<28} {c1['bytes_per_event_ordinary_batches']:>12} "
        f"{c1['decode_events_per_s']:>14,} "
        f"{round(c['decode_events_per_s'] / c1['decode_events_per_s'], 1):>12}",
        f"{'cemreplay v1 (snippet 5 s)':<28} {c1['bytes_per_event_snippet_batches']:>12}",
    ]
    for name, p in result["peers"].items():
        lines.append(
            f"{name:<28} {p['bytes_per_event']:>12} {p['decode_events_per_s']:>14,} "
            f"{p['cemreplay_speedup']:>12}"
        )
    lines.append("bytes/event by part: " + " ".join(f"{p:>9}" for p in (*PARTS, "total")))
    for name, key in (("v2", "cemreplay"), ("v1", "cemreplay_v1")):
        for batching in ("ordinary", "snippet"):
            row = result[key][f"parts_{batching}_batches"]
            lines.append(
                f"  {name} {batching:<16}" + " ".join(f"{row[p]:>9}" for p in (*PARTS, "total"))
            )
    lines += dictionary_table(result["site_dictionary"])
    lines.append(
        f"decode CPU time (v2, best run): {c.get('decode_cpu_seconds')} s, "
        f"{c.get('decode_events_per_cpu_s', 0):,} events per CPU second; "
        f"threads allowed on cores {c.get('decode_threads_cpus')}"
    )
    g = result["generator"]
    lines.append(f"generator: {g['events']:,} events in {g['seconds']} s")
    lines.append(targets_line(result))
    return "\n".join(lines)


def dictionary_table(r: dict[str, Any]) -> list[str]:
    """The site dictionary's lines of the table."""
    m = r["measured_on"]
    head = (
        f"wire v3, site dictionary: learned on {r['learned_on']['sessions']:,} sessions, "
        f"measured on the next {m['sessions']:,} ({m['events']:,} events, "
        f"{m['events_of_new_visitors'] / max(m['events'], 1):.0%} of them of new visitors)"
    )
    d = r["dictionary"]
    if d is None:
        return [head, "  no string was sent by enough visitors: no dictionary"]
    lines = [
        head,
        f"  dictionary: {d['entries']} entries (strings of >= {d['min_visitors']} visitors), "
        f"{d['json_bytes']:,} bytes JSON, {d['gzip_bytes']:,} gzipped; learned in "
        f"{r['learn_seconds']} s",
    ]
    for batching in ("ordinary", "snippet"):
        for v in ("v2", "v3"):
            row = r[f"{v}_{batching}"]
            lines.append(
                f"  {v} {batching:<16}" + " ".join(f"{row[p]:>9}" for p in (*PARTS, "total"))
            )
    lines.append(
        f"  snippet batches each gzipped when smaller: v2 {r['v2_snippet_gzip_when_smaller']}, "
        f"v3 {r['v3_snippet_gzip_when_smaller']} bytes/event"
    )
    s2, s3 = r["decode_ordinary"]["v2"], r["decode_ordinary"]["v3"]
    lines.append(
        f"  decode (ordinary, same events): v2 {s2['decode_events_per_s']:,} events/s, "
        f"v3 {s3['decode_events_per_s']:,} events/s "
        f"({s3['decode_events_per_s'] / s2['decode_events_per_s']:.2f}x)"
    )
    lines.append(
        f"  saves {r['saved_bytes_per_event_ordinary']} bytes/event: the gzipped download pays "
        f"for itself after {r['break_even_events_per_visitor']} events of a visitor "
        f"(visitors here send {r['events_per_visitor']} events on average; "
        f"{r['events_of_visitors_past_break_even']:.0%} of the events are of visitors past "
        f"it); with one download per visitor: "
        f"{r['net_saved_bytes_per_event_one_download_per_visitor']} bytes/event net"
    )
    return lines


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--peer-events", type=int, default=300_000)
    p.add_argument("--gen-events", type=int, default=10_000_000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--cores", type=int, default=1, help="pin to this many cores (default 1)")


def main(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        args.events, args.peer_events, args.gen_events, args.reps = 200_000, 20_000, 50_000, 1
    if args.cores and hasattr(os, "sched_setaffinity"):
        pin(set(sorted(os.sched_getaffinity(0))[: args.cores]))
    return run(args.events, args.peer_events, args.reps, args.gen_events, quick=args.quick)
