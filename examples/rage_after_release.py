"""Which element do people rage-click most after the last release?

A release went out at ``--release`` (default: the middle of the generated week). Ranks the
elements by sessions with a rage click since then, and compares each element's share of its
page's sessions with the time before the release. Run:
``python examples/rage_after_release.py [--sessions N] [--release ISO-TIME]``.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from cemreplay import reports, synth

START = 1_767_225_600_000  # the generator's default start, 2026-01-01T00:00Z


def main(sessions: int = 6_000, release: str = "2026-01-04T12:00", seed: int = 8) -> str:
    facts = reports.facts_from_events(synth.generate(sessions, seed=seed).events)
    release_ms = int(datetime.fromisoformat(release).replace(tzinfo=UTC).timestamp() * 1000)
    rage = reports.struggle_by_element(facts, kinds=["rage_click"], split_at=release_ms)
    after = reports.struggle_by_element(
        facts, kinds=["rage_click"], where={"since": release_ms}
    )
    if after.height == 0:
        return f"No rage clicks since {release}."
    top = after.row(0, named=True)
    before = rage.filter(
        (rage["page"] == top["page"]) & (rage["element"] == top["element"])
    ).row(0, named=True)
    lines = [
        f"Since the release ({release} UTC): {top['element']} on {top['page']}, rage-clicked in "
        f"{top['affected']} sessions ({top['share']:.1%} of the page's sessions, 95 % CI "
        f"{top['share_lo']:.1%}-{top['share_hi']:.1%}).",
        f"Before the release: {before['share_before']:.1%}; after: {before['share_after']:.1%} "
        f"({before['change_pp']:+.1f} percentage points).",
        f"Watch: {top['watch']}",
        "Next: " + ", ".join(
            f"{r['element']} on {r['page']} ({r['affected']})"
            for r in after.slice(1, 3).iter_rows(named=True)
        ),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sessions", type=int, default=6_000)
    p.add_argument("--release", default="2026-01-04T12:00")
    a = p.parse_args()
    print(main(a.sessions, a.release))
