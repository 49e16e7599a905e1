"""Reports: where, why and for whom visitors struggle, as tables, charts and an HTML report.

Build :class:`Facts` once (from a store with :func:`from_store`, or from an event table with
:func:`facts_from_events`), then ask tables of them. Every table takes ``where=`` (filters)
and ``by=`` (segments: country, campaign, device, locale). See ``docs/reports.md``.

>>> from cemreplay import reports, synth
>>> facts = reports.facts_from_events(synth.generate(200, seed=3).events)
>>> reports.funnel_steps(facts)["name"].to_list()
['/cart', '/checkout', '/checkout/payment', '/confirmation']
"""

import polars as pl

from cemreplay.reports._facts import (
    CHECKOUT,
    SEGMENTS,
    STORED_TABLES,
    Facts,
    FactsFormatError,
    ReportConfig,
    concat_facts,
    empty_facts,
    facts_blob,
    facts_from_events,
    facts_of_blob,
    from_store,
)
from cemreplay.reports._stats import mann_whitney_p, two_proportion_p, wilson
from cemreplay.reports._tables import (
    abandoners_vs_completers,
    cart_abandonment,
    clicks_to_goal_distribution,
    form_fields,
    forms,
    funnel_drops,
    funnel_steps,
    goal_summary,
    segment,
    struggle_by_element,
    struggle_by_hour,
    struggle_by_page,
    traffic_by_hour,
    validation_errors,
    worst_sessions,
)

__all__ = [
    "CHECKOUT",
    "SEGMENTS",
    "STORED_TABLES",
    "Facts",
    "FactsFormatError",
    "ReportConfig",
    "abandoners_vs_completers",
    "all_tables",
    "cart_abandonment",
    "clicks_to_goal_distribution",
    "concat_facts",
    "empty_facts",
    "facts_blob",
    "facts_from_events",
    "facts_of_blob",
    "form_fields",
    "forms",
    "from_store",
    "funnel_drops",
    "funnel_steps",
    "goal_summary",
    "mann_whitney_p",
    "segment",
    "struggle_by_element",
    "struggle_by_hour",
    "struggle_by_page",
    "traffic_by_hour",
    "two_proportion_p",
    "validation_errors",
    "wilson",
    "worst_sessions",
]


def all_tables(facts: Facts, *, tz: str = "UTC", worst: int = 20) -> dict[str, pl.DataFrame]:
    """Every table of the full report, by name (what ``cemreplay report`` writes)."""
    return {
        "struggle_by_page": struggle_by_page(facts),
        "struggle_by_element": struggle_by_element(facts),
        "worst_sessions": worst_sessions(facts, worst),
        "forms": forms(facts),
        "form_fields": form_fields(facts),
        "validation_errors": validation_errors(facts),
        "abandoners_vs_completers": abandoners_vs_completers(facts),
        "funnel_steps": funnel_steps(facts),
        "funnel_drops": funnel_drops(facts),
        "cart_abandonment_by_country": cart_abandonment(facts, by="country"),
        "traffic_by_hour": traffic_by_hour(facts, tz=tz),
        "struggle_by_hour": struggle_by_hour(facts, tz=tz),
        "goal_summary": goal_summary(facts),
        "clicks_to_goal": clicks_to_goal_distribution(facts),
    }
