"""Out of core: a batch directory larger than memory, analysed in bounded memory.

    python -m benchmarks outofcore [--events 200000000] [--cap-gib 4] [--check-events 1000000]

:func:`cemreplay.outofcore.run_dir` on a warmed pool of worker processes reads the directory a
file (whole visitors, about a million events) at a time; each chunk's sessions, findings and
scores go to Parquet files, so nothing grows with the input but the file list. Measured in a
fresh process (``benchmarks._run``, mode ``outofcore``) whose address space, and each
worker's, is capped at ``--cap-gib`` (``RLIMIT_AS``: per process, not a total; the total is
the sampled peak of the process tree, reported). The data is made piece by piece
(``benchmarks._data.wire_dir``), never whole in memory; by default the 200M events are four
copies of 50M under distinct ids (``--copies``, ``benchmarks._data.replicated_dir``).

Same results: on ``--check-events`` events (the whole input with ``--quick``) the results read
back from the Parquet files are checked equal to the stages run over all events in memory
(in the harness's own process).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from typing import Any

from benchmarks._data import machine, replicated_dir, targets_line, wire_dir, wire_dir_events
from benchmarks._run import digest, load, spawn
from benchmarks.e2e import check_same


def _outofcore(d: Any, workers: int, cap: int | None) -> dict[str, Any]:
    out = tempfile.mkdtemp(prefix="cem-outofcore-")
    try:
        r = spawn(
            {"dir": str(d), "mode": "outofcore", "workers": workers, "out": out}, cap_bytes=cap
        )
        from cemreplay.outofcore import read_results

        ses, found, _ = read_results(out)
        r["sessions"] = ses.height
        r["findings"] = found.height
        r["digest"] = digest(found, () if r["exact"] else ("excessive_scroll", "quick_back"))
        r["result_bytes_on_disk"] = sum(
            os.path.getsize(os.path.join(out, f)) for f in os.listdir(out)
        )
        return r
    finally:
        shutil.rmtree(out, ignore_errors=True)


def in_memory(d: Any) -> dict[str, Any]:
    """The stages over all events of a batch directory, in this process (the reference)."""
    from cemreplay import detect, wire
    from cemreplay.journeys import sessions

    ev = wire.decode(load(d))
    return {
        "mode": "stages",
        "events": ev.height,
        "sessions": sessions(ev).height,
        "digest": digest(detect(ev)),
    }


def run(
    events: int,
    check_events: int,
    workers: int,
    cap_gib: float | None,
    file_bytes: int,
    copies: int = 1,
) -> dict[str, Any]:
    cap = int(cap_gib * 2**30) if cap_gib else None
    result: dict[str, Any] = {
        "stage": "outofcore",
        "machine": machine(),
        "workers": workers,
        "cap_bytes_per_process": cap,
        "copies": copies,
    }
    # Same results as in memory, on a size the stages can hold.
    small = wire_dir(check_events, file_bytes=file_bytes, progress=True)
    ref = in_memory(small)
    got = _outofcore(small, workers, cap)
    check_same(ref, {**got, "mode": "outofcore"})
    result["check"] = {
        "events": got["events"],
        "findings": got["findings"],
        "same_as_in_memory": True,
        "kinds_checked": sorted(got["digest"]),
    }
    if events == check_events:
        d = small
    elif copies > 1:
        d = replicated_dir(events // copies, copies, progress=True)
    else:
        d = wire_dir(events, file_bytes=file_bytes, progress=True)
    big = got if d == small else _outofcore(d, workers, cap)
    big.pop("digest")
    assert big["events"] == wire_dir_events(d), "the out-of-core run lost events"
    big["input_bytes_on_disk"] = sum(f.stat().st_size for f in d.glob("*.cemb"))
    result["run"] = big
    return result


def table(result: dict[str, Any]) -> str:
    r = result["run"]
    c = result["check"]
    return "\n".join(
        [
            f"outofcore: {r['events']:,} events from {r['input_bytes_on_disk'] / 2**30:.2f} GiB "
            f"of batch files, {r['chunks']} chunks, {result['workers']} workers; "
            f"machine {result['machine']}",
            f"seconds {r['seconds']}, events/s {r['events_per_s']:,}, peak memory (all "
            f"processes) {r['peak_tree_bytes'] / 2**30:.2f} GiB "
            f"({r['peak_tree_bytes_per_event']} B/event); cap per process "
            f"{result['cap_bytes_per_process']}",
            f"same results as in memory on {c['events']:,} events: {c['same_as_in_memory']} "
            f"(kinds {', '.join(c['kinds_checked'])})",
            targets_line(result),
        ]
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--events", type=int, default=200_000_000)
    p.add_argument("--check-events", type=int, default=1_000_000)
    p.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument(
        "--copies",
        type=int,
        default=4,
        help="make the input from this many copies of --events/copies events, each under "
        "its own ids (benchmarks._data.replicated_dir); 1: generate it all",
    )
    p.add_argument("--file-bytes", type=int, default=12 << 20, help="size of each batch file")
    p.add_argument("--cap-gib", type=float, default=4.0, help="RLIMIT_AS per process; 0: none")


def main(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        args.events = args.check_events = 200_000
        args.file_bytes = 256_000  # a dozen files: a dozen chunks
        args.copies = 1
    result = run(
        args.events,
        args.check_events,
        args.workers,
        args.cap_gib or None,
        args.file_bytes,
        args.copies,
    )
    if args.quick:
        result["targets"] = "not evaluated with --quick (too small to mean anything)"
    else:
        result["targets"] = {
            "peak memory<=4 GiB out of core": result["run"]["peak_tree_bytes"] <= 4 * 2**30,
        }
    return result
