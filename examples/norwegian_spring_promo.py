"""How many carts did Norwegian visitors from the spring promotion abandon, and what went wrong?

Generates a synthetic shop's traffic, then asks one table: the cart abandonment of the
sessions from Norway that came through the ``spring-promo`` campaign. Run:
``python examples/norwegian_spring_promo.py [--sessions N]``.
"""

from __future__ import annotations

import argparse

from cemreplay import reports, synth
from cemreplay.schema import FINDING_KINDS


def main(sessions: int = 12_000, seed: int = 2) -> str:
    facts = reports.facts_from_events(synth.generate(sessions, seed=seed).events)
    who = {"country": "NO", "campaign": "spring-promo"}
    row = reports.cart_abandonment(facts, where=who).row(0, named=True)
    everyone = reports.cart_abandonment(facts).row(0, named=True)
    lines = [
        f"Norwegian visitors from the spring promotion filled {row['carts']} carts and abandoned "
        f"{row['abandoned']} ({row['abandon_rate']:.0%}, 95 % CI {row['abandon_rate_lo']:.0%}-"
        f"{row['abandon_rate_hi']:.0%}; all visitors: {everyone['abandon_rate']:.0%}).",
        f"Most left at {row['top_step']} ({row['top_step_share']:.0%} of the abandons).",
        "What went wrong in those sessions:",
    ]
    # every struggle in the abandoned carts' sessions, by element (the drop-off itself aside)
    abandoned = facts.where(**who).funnel_drops["session_id"]
    struggles = reports.struggle_by_element(
        facts.only(abandoned), kinds=[k for k in FINDING_KINDS if k != "funnel_abandon"]
    )
    for r in struggles.head(3).iter_rows(named=True):
        lines.append(
            f"  {r['affected']} of the abandoned carts had {r['top_kind']} on {r['element']} "
            f"({r['page']}); watch {r['watch']}"
        )
    if row["top_finding"] is not None:
        lines.append(
            f"The last struggle before leaving: {row['top_finding']} "
            f"({row['top_finding_share']:.0%} of the abandons), most often on field "
            f"{row['top_field']}."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sessions", type=int, default=12_000)
    print(main(p.parse_args().sessions))
