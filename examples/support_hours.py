"""When should support be staffed? When are visitors on the site, and when do they struggle?

Sessions per weekday and hour in Oslo time, the busiest hours, and the hours where the share
of sessions with struggle is highest. Run: ``python examples/support_hours.py [--tz ZONE]``.
"""

from __future__ import annotations

import argparse

import polars as pl

from cemreplay import reports, synth


def main(sessions: int = 5_000, tz: str = "Europe/Oslo", seed: int = 10) -> str:
    facts = reports.facts_from_events(synth.generate(sessions, seed=seed).events)
    traffic = reports.traffic_by_hour(facts, tz=tz)
    by_hour = traffic.group_by("hour").agg(pl.col("sessions").sum()).sort("hour")
    total = int(by_hour["sessions"].sum())
    # the shortest run of consecutive hours that holds 80 % of the sessions
    counts = by_hour["sessions"].to_list()
    best = (0, 24)
    for start in range(24):
        acc = 0
        for length in range(1, 25):
            acc += counts[(start + length - 1) % 24]
            if acc >= 0.8 * total:
                if length < best[1]:
                    best = (start, length)
                break
    start, length = best
    struggle = reports.struggle_by_hour(facts, tz=tz).filter(pl.col("sessions") >= 50)
    worst = struggle.sort("share", descending=True).row(0, named=True)
    busiest = traffic.sort("sessions", descending=True).row(0, named=True)
    return "\n".join(
        [
            f"80 % of the sessions start between {start:02d}:00 and "
            f"{(start + length) % 24:02d}:00 ({tz}): staff support for those {length} hours.",
            f"The busiest hour of the week is {busiest['day']} {busiest['hour']:02d}:00 "
            f"({busiest['sessions']} sessions).",
            f"Struggle peaks at {worst['hour']:02d}:00: {worst['share']:.0%} of sessions "
            f"(95 % CI {worst['share_lo']:.0%}-{worst['share_hi']:.0%}).",
        ]
    )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sessions", type=int, default=5_000)
    p.add_argument("--tz", default="Europe/Oslo")
    a = p.parse_args()
    print(main(a.sessions, a.tz))
