"""`cemreplay demo`: the whole pipeline on a synthetic shop, with nothing to set up.

Generates seeded traffic with planted struggles, encodes it into the wire batches the snippet
would send, decodes them, rebuilds sessions and the checkout funnel, runs every detector, scores
the sessions, and prints what a team would want to know first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO, TypeVar

import polars as pl

from cemreplay import synth, wire
from cemreplay.detectors import detect
from cemreplay.errors import ConfigError
from cemreplay.journeys import funnel, sessions
from cemreplay.score import score

T = TypeVar("T")

CHECKOUT = ["/cart", "/checkout", "/checkout/payment", "/confirmation"]


def _timed(out: IO[str], label: str, fn: Callable[[], T]) -> T:
    t0 = time.perf_counter()
    result = fn()
    out.write(f"  {label:<44} {time.perf_counter() - t0:6.2f} s\n")
    return result


def run_demo(sessions: int = 2_000, seed: int = 7, out: IO[str] | None = None) -> int:
    """Run the demo and write its report to ``out`` (stdout by default). Returns 0."""
    import sys

    if sessions < 1:
        raise ConfigError(f"--sessions must be at least 1, got {sessions}")
    out = out or sys.stdout
    n_sessions = sessions
    out.write(f"cemreplay demo: a synthetic shop, {n_sessions:,} sessions, seed {seed}\n\n")
    traffic = _timed(
        out, "generate traffic", lambda: synth.generate(sessions=n_sessions, seed=seed)
    )
    events = traffic.events
    batches = _timed(out, "encode to wire batches (as the snippet)", lambda: wire.encode(events))
    decoded = _timed(out, "decode the batches", lambda: wire.decode(batches))
    if not decoded.equals(events):  # pragma: no cover - the round trip is tested elsewhere
        raise AssertionError("decoded events differ from the generated ones")
    table = _timed(out, "sessions", lambda: sessions_of(decoded))
    findings = _timed(out, "detect struggle", lambda: detect(decoded))
    checkout = _timed(out, "checkout funnel", lambda: funnel(decoded, CHECKOUT, findings=findings))
    scores = score(findings)

    size = sum(map(len, batches))
    out.write(
        f"\nWire: {len(batches):,} batches, {size:,} bytes for {events.height:,} events "
        f"({size / max(events.height, 1):.1f} bytes/event before gzip)\n"
    )
    converted = int(table["converted"].sum()) if "converted" in table.columns else 0
    out.write(
        f"Sessions: {table.height:,} ({table['visitor_id'].n_unique():,} visitors), "
        f"{converted:,} converted ({converted / max(table.height, 1):.1%})\n"
    )
    out.write("\nCheckout funnel (sessions):\n")
    for row in checkout.steps.iter_rows(named=True):
        out.write(
            f"  {row['step']}. {row['name']:<20} entered {row['entered']:>6,}  "
            f"converted {row['converted']:>6,}  dropped {row['dropped']:>6,}\n"
        )
    out.write("\nFindings by kind:\n")
    by_kind = findings.group_by("kind").len().sort("len", descending=True)
    for kind, count in by_kind.iter_rows():
        out.write(f"  {kind:<18} {count:>7,}\n")
    out.write("\nWorst sessions (struggle score):\n")
    for row in scores.head(5).iter_rows(named=True):
        sid = row["session_id"]
        out.write(f"  {sid}  score {row['score']:.1f}  ({row['findings']} findings)\n")
        first = findings.filter(pl.col("session_id") == sid).sort("severity", descending=True)
        for exp in first["explanation"].head(2).to_list():
            out.write(f"      - {exp}\n")
    return 0


def sessions_of(events: pl.DataFrame) -> pl.DataFrame:
    """Sessions with the default rules (a named function so the demo's timing line reads well)."""
    return sessions(events)
