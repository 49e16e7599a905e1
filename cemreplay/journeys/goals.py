"""Clicks-to-goal and time-to-goal: how much effort reaching a page or milestone took."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import polars as pl

from cemreplay.errors import ConfigError
from cemreplay.events import check
from cemreplay.journeys._points import order_rows, unit_key
from cemreplay.journeys._work import prepare
from cemreplay.journeys.rules import Goal, SessionRules, check_unit
from cemreplay.journeys.sessions import goal_flag
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
    rows = order_rows(
        work.select(
            "session_id", "visitor_id", "_piece", "batch", "i", "_tm", "kind",
            _goal=goal_flag(work, goal, rules.urls),
        ).with_columns(unit=unit_key(unit))
    )  # fmt: skip
    kind = pl.col("kind")
    first_goal = pl.col("o").filter(pl.col("_goal")).min()
    before = pl.col("o") < first_goal.fill_null(2**62)
    units = (
        rows.group_by("unit")
        .agg(
            reached=pl.col("_goal").any(),
            clicks=((kind == int(K.CLICK)) & before).sum().cast(pl.UInt32),
            page_views=((kind == int(K.PAGE_VIEW)) & before).sum().cast(pl.UInt32),
            ms=pl.col("_tm").filter(pl.col("_goal")).min() - pl.col("_tm").min(),
        )
        .sort("unit")
    )
    hit = units.filter(pl.col("reached"))
    summary = pl.DataFrame(
        {
            "units": [units.height],
            "reached": [hit.height],
            "reach_rate": [hit.height / units.height if units.height else None],
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
    return GoalResult(units, summary)
