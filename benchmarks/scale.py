"""Scaling: the end-to-end figure at growing sizes, to show the cost grows linearly.

    python -m benchmarks scale [--sizes 1000000,10000000,50000000] [--plot docs/scaling.png]

Each size is a fresh process running :func:`cemreplay.pipeline.run` on a warmed pool
(``benchmarks._run``, mode ``process``) over its own batch directory
(``benchmarks._data.wire_dir``). Reported per size: events/s, seconds per million events and
peak memory per event (sampled over the whole process tree, and net of the interpreters'
resident memory at the start); the plot shows both against the size.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from benchmarks._data import machine, targets_line, wire_dir, wire_dir_events
from benchmarks._run import add_mmap_argument, add_repeat_argument, spawn


def plot(result: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["sizes"]
    n = [r["events"] / 1e6 for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    a1.plot(n, [r["events_per_s"] / 1e6 for r in rows], "o-", label="cemreplay pipeline")
    a1.axhline(10, color="grey", ls="--", lw=1, label="target 10 M/s")
    a1.set_xscale("log")
    a1.set_xlabel("events (millions)")
    a1.set_ylabel("events per second (millions)")
    a1.set_ylim(bottom=0)
    a1.set_title("throughput, decode + sessions + detect + score")
    a1.legend()
    a2.plot(n, [r["peak_tree_bytes_per_event"] for r in rows], "o-", label="peak, all processes")
    a2.plot(n, [r["peak_tree_net_bytes_per_event"] for r in rows], "s-", label="net of start RSS")
    a2.axhline(64, color="grey", ls="--", lw=1, label="target 64 B")
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.set_ylim(10, None)
    a2.set_xlabel("events (millions)")
    a2.set_ylabel("bytes per event")
    a2.set_title("peak resident memory per event")
    a2.legend()
    for a in (a1, a2):
        a.set_xticks(n, [f"{x:g}M" for x in n])
        a.minorticks_off()
    m = result["machine"]
    fig.suptitle(
        f"pipeline mode {result.get('mode', 'process')}, {result['workers']} workers on "
        f"{m['cores']} cores, 1-min load "
        + ", ".join(f"{r['load_avg_1m']:.1f}" for r in rows)
        + "; one fresh process per size, exact results",
        fontsize=9,
    )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(
    sizes: list[int],
    workers: int,
    chunk_bytes: int,
    mode: str = "process",
    mmap_threshold: int = 0,
    repeat: int = 1,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "stage": "scale",
        "machine": machine(),
        "workers": workers,
        "mode": mode,
        "malloc_mmap_threshold": mmap_threshold or "glibc default",
        "repeat": repeat,
    }
    rows = []
    for size in sizes:
        d = wire_dir(size, progress=True)
        spec = {"dir": str(d), "mode": mode, "workers": workers, "chunk_bytes": chunk_bytes}
        r = spawn({**spec, "mmap_threshold": mmap_threshold, "repeat": repeat})
        assert r["events"] == wire_dir_events(d), "the pipeline lost events"
        r.pop("digest")
        r["s_per_million"] = round(r["seconds"] / (r["events"] / 1e6), 4)
        rows.append(r)
    result["sizes"] = rows
    if len(rows) >= 2:
        ref = next((r for r in rows if r["events"] >= 10_000_000), rows[-2])
        last = rows[-1]
        result["per_event_cost_largest_vs_ref"] = round(
            last["s_per_million"] / ref["s_per_million"], 3
        )
        result["ref_events"] = ref["events"]
    return result


def table(result: dict[str, Any]) -> str:
    lines = [
        f"scale: {result['mode']}, {result['workers']} workers; machine {result['machine']}",
        f"{'events':>12} {'seconds':>8} {'events/s':>12} {'s per M':>8} {'peak B/ev':>10} "
        f"{'net B/ev':>9} {'load':>5}",
    ]
    for r in result["sizes"]:
        lines.append(
            f"{r['events']:>12,} {r['seconds']:>8} {r['events_per_s']:>12,} "
            f"{r['s_per_million']:>8} {r['peak_tree_bytes_per_event']:>10} "
            f"{r['peak_tree_net_bytes_per_event']:>9} {r['load_avg_1m']:>5.1f}"
        )
    if "per_event_cost_largest_vs_ref" in result:
        lines.append(
            f"cost per event at {result['sizes'][-1]['events']:,} vs {result['ref_events']:,}: "
            f"x{result['per_event_cost_largest_vs_ref']}"
        )
    if result.get("plot"):
        lines.append(f"plot: {result['plot']}")
    lines.append(targets_line(result))
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", default="1000000,10000000,50000000")
    p.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument(
        "--chunk-bytes", type=int, default=0, help="0: the pipeline's default (even chunks)"
    )
    p.add_argument("--mode", default="overlap", help="pipeline mode (benchmarks._run)")
    p.add_argument("--plot", default="docs/scaling.png", help="where to draw the figure")
    add_repeat_argument(p)
    add_mmap_argument(p)


def main(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        # the process pool is exercised by `e2e --quick`; here the stage's own code, fast
        args.sizes, args.mode, args.repeat = "100000,200000", "serial", 1
        if args.plot == "docs/scaling.png":
            import tempfile

            args.plot = os.path.join(tempfile.mkdtemp(prefix="cem-scale-"), "scaling.png")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    result = run(sizes, args.workers, args.chunk_bytes, args.mode, args.mmap_threshold, args.repeat)
    if args.plot:
        plot(result, args.plot)
        result["plot"] = args.plot
    if args.quick:
        result["targets"] = "not evaluated with --quick (too small to mean anything)"
        return result
    big = [r for r in result["sizes"] if r["events"] >= 10_000_000]
    result["targets"] = {
        "e2e>=10M events/s at >=10M events": bool(big)
        and all(r["events_per_s"] >= 10e6 for r in big),
        "largest within 20% of 10M per event": result.get("per_event_cost_largest_vs_ref", 9)
        <= 1.2,
        "peak memory<=64 bytes/event at >=10M": bool(big)
        and all(r["peak_tree_bytes_per_event"] <= 64 for r in big),
    }
    return result
