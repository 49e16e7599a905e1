"""Which form field makes people call support?

The field where visitors who give up differ most from those who finish: the share of each
group that got a validation error on it (two-proportion z-test), with what they typed (its
masked shape, never the value) and the message they saw. Run:
``python examples/support_call_field.py [--sessions N]``.
"""

from __future__ import annotations

import argparse

import polars as pl

from cemreplay import reports, synth


def main(sessions: int = 6_000, seed: int = 4) -> str:
    facts = reports.facts_from_events(synth.generate(sessions, seed=seed).events)
    diff = reports.abandoners_vs_completers(facts).filter(pl.col("p_errors").is_not_null())
    top = diff.row(0, named=True)
    errors = reports.validation_errors(facts).filter(
        (pl.col("form") == top["form"]) & (pl.col("field") == top["field"])
    ).row(0, named=True)
    fields = reports.form_fields(facts, top["form"]).filter(pl.col("field") == top["field"])
    drop = fields.row(0, named=True)
    return "\n".join(
        [
            f"The field is {top['field']} of {top['form']}.",
            f"{top['error_rate_abandoners']:.0%} of the {top['abandoners']} visitors who gave up "
            f"the form had a validation error there, against "
            f"{top['error_rate_completers']:.0%} of the {top['completers']} who finished "
            f"(p = {top['p_errors']:.1g}).",
            f"It is the last field touched by {drop['drop_offs']} abandoners "
            f"({drop['drop_off_share']:.0%} of the form's abandons).",
            f"What they typed (shape): {errors['top_shapes']}.",
            f"What they were told: {errors['top_messages']}.",
        ]
    )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sessions", type=int, default=6_000)
    print(main(p.parse_args().sessions))
