"""The benchmark streams: synthetic traffic, grown to size by repeating sessions under new ids.

Generating tens of millions of events with every planted struggle is the generator's own
benchmark; the codec and detector benchmarks need a realistic *mix* at scale, so they generate
a few thousand sessions once and repeat them under new session and visitor ids.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

import msgpack
import polars as pl

from cemreplay.events import assign_batches
from cemreplay.pipeline import _str_at
from cemreplay.synth import generate


def machine() -> dict[str, object]:
    """What the figures were measured on (always printed with them)."""
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "polars": pl.__version__,
        "polars_threads": pl.thread_pool_size(),
        "load_avg_1m": os.getloadavg()[0],
    }


def targets_line(result: dict[str, Any]) -> str:
    """The ``targets`` of a stage's result as one line of its table."""
    t = result["targets"]
    if isinstance(t, dict):
        t = ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in t.items())
    return f"targets: {t}"


def stream(events: int, *, seed: int = 11, base_sessions: int = 2_000) -> pl.DataFrame:
    """About ``events`` events of the generator's default mix, in canonical order."""
    base = generate(sessions=base_sessions, seed=seed).events
    reps = max(1, -(-events // max(base.height, 1)))
    parts = []
    for r in range(reps):
        suffix = f"-{r:04d}" if r else ""
        parts.append(
            base.with_columns(
                (pl.col(c).cast(pl.String) + suffix).cast(pl.Categorical)
                for c in ("session_id", "visitor_id")
            )
        )
    out = pl.concat(parts).head(events) if reps > 1 else base.head(events)
    # cutting may split the last session; fine for throughput, keeps the count exact
    return out.sort(pl.col("session_id").cast(pl.String), "batch", "i", maintain_order=True)


def ordinary_batches(events: pl.DataFrame) -> pl.DataFrame:
    """Re-batch into the issue's "ordinary batches" of 100-500 events: up to 300 events per
    batch, one batch per 10 minutes of a session."""
    return assign_batches(events, max_events=300, flush_ms=600_000)


# ----------------------------------------------------------------------------- wire directories


def cache_dir() -> Path:
    """Where generated batch directories are kept between runs (``CEMREPLAY_BENCH_CACHE``,
    default ``~/.cache/cemreplay-bench``)."""
    d = Path(os.environ.get("CEMREPLAY_BENCH_CACHE", Path.home() / ".cache" / "cemreplay-bench"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _piece(events: int, seed: int) -> pl.DataFrame:
    """About ``events`` events of fresh synthetic traffic (seed ``seed``), in ordinary batches,
    with session and visitor ids prefixed by the seed so pieces never share a visitor."""
    ev = generate(events=events, seed=seed).events
    tag = f"{seed:05d}-"
    ev = ev.with_columns(
        (pl.lit(tag) + pl.col(c).cast(pl.String)).cast(pl.Categorical).alias(c)
        for c in ("session_id", "visitor_id")
    )
    return ordinary_batches(ev)


def wire_dir(
    events: int,
    *,
    seed: int = 1_000,
    piece_events: int = 5_000_000,
    file_bytes: int = 12 << 20,
    path: Path | None = None,
    progress: bool = False,
) -> Path:
    """A batch directory (``cemreplay.outofcore``) of about ``events`` events of synthetic
    traffic in ordinary batches, made piece by piece (never more than ``piece_events`` events
    in memory) and kept in :func:`cache_dir` (made once per size and seed).

    Pieces use seeds ``seed``, ``seed + 1``, ... and prefixed ids, so no visitor is in two
    pieces; each file holds whole visitors (about ``file_bytes`` bytes).
    """
    from cemreplay import wire
    from cemreplay.outofcore import write_file
    from cemreplay.pipeline import plan_chunks

    d = path or cache_dir() / f"wire-{events}-{seed}-{piece_events}-{file_bytes}"
    done = d / "DONE"
    if done.exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("*.cemb"):
        old.unlink()
    made, k, nfile = 0, 0, 0
    while made < events:
        want = min(piece_events, events - made)
        ev = _piece(want, seed + k).head(want)
        batches = wire.encode(ev)
        made += ev.height
        del ev
        for chunk in plan_chunks(batches, file_bytes):
            write_file(d / f"part-{nfile:06d}.cemb", [batches[j] for j in chunk])
            nfile += 1
        del batches
        k += 1
        if progress:
            print(f"  generated {made:,} / {events:,} events", file=sys.stderr, flush=True)
    done.write_text(f"{made}\n")
    return d


def wire_dir_events(d: Path) -> int:
    """How many events :func:`wire_dir` wrote there."""
    return int((d / "DONE").read_text())


def _retag(batch: bytes, tag: bytes) -> bytes:
    """A wire batch with ``tag`` put in front of its visitor and session ids (envelope
    elements 2 and 3, rewritten in place; the rest of the batch is copied as it is)."""
    if batch[0] != 0x9D or batch[1] > 0x7F:
        raise ValueError("not a version-1 batch with a fixint version")
    _, p = _str_at(batch, 2)  # site_key
    vid, q = _str_at(batch, p)
    sid, r = _str_at(batch, q)
    ids = msgpack.packb((tag + vid).decode()) + msgpack.packb((tag + sid).decode())
    return b"".join((batch[:p], ids, batch[r:]))


def replicated_dir(events: int, copies: int, *, progress: bool = False) -> Path:
    """A batch directory of ``copies`` times :func:`wire_dir` of ``events`` events, each copy
    under its own visitor and session ids (``r1-``, ``r2-``, ... in front of the copy's ids),
    so no visitor is in two copies: a large input made in seconds per copy instead of
    generating it all (the traffic repeats, as :func:`stream`'s does)."""
    from cemreplay.outofcore import batch_files, read_file, write_file

    base = wire_dir(events, progress=progress)
    if copies == 1:
        return base
    d = cache_dir() / f"{base.name}-x{copies}"
    if (d / "DONE").exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    files = batch_files(base)
    for c in range(copies):
        tag = f"r{c}-".encode()
        for f in files:
            batches = read_file(f)
            write_file(d / f"c{c:02d}-{f.name}", [_retag(bytes(b), tag) for b in batches])
        if progress:
            print(f"  copy {c + 1} / {copies} written", file=sys.stderr, flush=True)
    (d / "DONE").write_text(f"{wire_dir_events(base) * copies}\n")
    return d
