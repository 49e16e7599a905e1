"""Is three clicks enough to get to the order status page?

The synthetic shop has no separate order-status page: its order status is shown on
``/confirmation``, so that is the goal here (pass ``--goal`` for your own page). Counts the
clicks each session needed before it first reached the goal. Run:
``python examples/three_clicks.py [--sessions N] [--goal URL] [--max-clicks 3]``.
"""

from __future__ import annotations

import argparse

from cemreplay import reports, synth


def main(sessions: int = 4_000, goal: str = "/confirmation", max_clicks: int = 3,
         seed: int = 6) -> str:  # fmt: skip
    config = reports.ReportConfig(goals=(goal,), max_clicks=max_clicks)
    facts = reports.facts_from_events(synth.generate(sessions, seed=seed).events, config=config)
    s = reports.goal_summary(facts).row(0, named=True)
    dist = reports.clicks_to_goal_distribution(facts)
    if not s["reached"]:
        return f"No session reached {goal}."
    verdict = "Yes" if s["within_max_clicks"] >= 0.5 else "No"
    share = s["within_max_clicks"]
    lines = [
        f"{verdict}: {share:.0%} (95 % CI {s['within_max_clicks_lo']:.0%}-"
        f"{s['within_max_clicks_hi']:.0%}) of the {s['reached']} sessions that reached {goal} "
        f"did it within {max_clicks} clicks.",
        f"Median {s['median_clicks']:.0f} clicks, 90th percentile {s['p90_clicks']:.0f}; median "
        f"{s['median_ms'] / 1000:.0f} s from the session's start.",
    ]
    first = dist.filter(dist["cumulative"] >= 0.5).row(0, named=True)
    lines.append(f"Half of them needed at most {first['clicks']} clicks.")
    return "\n".join(lines)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sessions", type=int, default=4_000)
    p.add_argument("--goal", default="/confirmation")
    p.add_argument("--max-clicks", type=int, default=3)
    a = p.parse_args()
    print(main(a.sessions, a.goal, a.max_clicks))
