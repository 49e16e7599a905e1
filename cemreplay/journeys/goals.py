"""Clicks-to-goal and time-to-goal: how much effort reaching a page or milestone took."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from cemreplay.errors import ConfigError
from cemreplay.events import check
from cemreplay.journeys._points import units
from cemreplay.journeys._scan import unit_scan
from cemreplay.journeys._work import prepare
from cemreplay.journeys.rules import Goal, SessionRules, check_unit
from cemreplay.journeys.sessions import goal_codes
from cemreplay.schema import EventKind

__all__ = ["GoalResult", "clicks_to_goal"]

K = EventKind


@dataclass(frozen=True)
class GoalResult:
    """What :func:`clicks_to_goal` returns.

    Attributes
    ----------
    units : pl.DataFrame
        One row per unit: ``unit``, ``reached``, ``clicks`` and ``page_views`` before the
        first goal event (all of the unit's when not reached), ``ms`` from the unit's first
        event to the goal (null when not reached).
    summary : pl.DataFrame
        One row: ``units``, ``reached``, ``reach_rate``, ``median_clicks``, ``p90_clicks``,
        ``within_max_clicks`` (share of reaching units that needed <= ``max_clicks``),
        ``median_ms``, ``p90_ms``.
    """

    units: pl.DataFrame
    summary: pl.DataFrame


def clicks_to_goal(
    events: pl.DataFrame,
    goal: Goal | str,
    *,
    by: Literal["session", "visitor"] = "session",
    max_clicks: int = 3,
    rules: SessionRules | None = None,
) -> GoalResult:
    """Clicks, page views and time each unit needed to reach ``goal`` the first time.

    Tests the "three clicks gets you there" rule: ``summary["within_max_clicks"]`` is the
    share of units reaching the goal that needed at most ``max_clicks`` clicks.

    Parameters
    ----------
    events : pl.DataFrame
        An event table, any row order.
    goal : Goal or str
        ``Goal(milestone=...)``, ``Goal(url=...)`` or a URL pattern string.
    by : {"session", "visitor"}
        Per session (split by ``rules``) or per visitor (counting across their sessions).
    max_clicks : int
        The click budget for ``within_max_clicks`` (default 3, the folk rule).
    rules : SessionRules, optional
        Session splitting and URL normalisation.

    Examples
    --------
    >>> import cemreplay.events as ev
    >>> clicks_to_goal(ev.empty(), "/thanks").summary["units"].to_list()
    [0]
    """
    check(events)
    unit = check_unit(by)
    if isinstance(goal, str):
        goal = Goal(url=goal)
    if not isinstance(goal, Goal):
        raise ConfigError(f"goal must be a Goal or URL pattern, got {goal!r}; hint: '/thanks'")
    if isinstance(max_clicks, bool) or not isinstance(max_clicks, int) or max_clicks < 0:
        raise ConfigError(f"max_clicks must be an int >= 0, got {max_clicks!r}; hint: 3")
    rules = rules or SessionRules()
    work = prepare(events, rules)
    u = units(work, unit)
    goal_kind, goal_table = goal_codes(work, goal, rules.urls)
    g, g_t, tmin, clicks, views = unit_scan(
        work.sid, work.starts, work.t, work.kind, work.tcode, u.vis, u.rank,
        goal_kind, goal_table, u.n,
    )  # fmt: skip
    reached = g >= 0
    units_table = pl.DataFrame(
        {
            "unit": u.names(),
            "reached": reached,
            "clicks": clicks,
            "page_views": views,
            "ms": np.where(reached, g_t - tmin, 0),
        }
    ).with_columns(ms=pl.when(pl.col("reached")).then(pl.col("ms")))
    units_table = units_table.sort("unit") if u.n else units_table
    hit = units_table.filter(pl.col("reached"))
    summary = pl.DataFrame(
        {
            "units": [units_table.height],
            "reached": [hit.height],
            "reach_rate": [hit.height / units_table.height if units_table.height else None],
            "median_clicks": [hit["clicks"].median()],
            "p90_clicks": [hit["clicks"].quantile(0.9, "nearest")],
            "within_max_clicks": [
                (hit["clicks"] <= max_clicks).mean() if hit.height else None
            ],
            "median_ms": [hit["ms"].median()],
            "p90_ms": [hit["ms"].quantile(0.9, "nearest")],
        },
        schema={
            "units": pl.UInt32, "reached": pl.UInt32, "reach_rate": pl.Float64,
            "median_clicks": pl.Float64, "p90_clicks": pl.Float64,
            "within_max_clicks": pl.Float64, "median_ms": pl.Float64, "p90_ms": pl.Float64,
        },
    )  # fmt: skip
    return GoalResult(units_table, summary)
