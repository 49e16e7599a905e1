"""Journeys: sessions, page views, paths, funnels and clicks-to-goal, from the event table.

Everything here is vectorized polars (plus one small numba scan for the session splitter);
``tests/naive/journeys.py`` holds the slow, obviously correct versions they are checked
against. See ``docs/journeys.md``.
"""

from cemreplay.journeys._order import canonical, with_page_views
from cemreplay.journeys.funnels import FunnelResult, funnel
from cemreplay.journeys.goals import GoalResult, clicks_to_goal
from cemreplay.journeys.pages import page_views
from cemreplay.journeys.paths import path_tree, paths, top_paths
from cemreplay.journeys.rules import (
    GA4,
    MATOMO,
    POSTHOG,
    Goal,
    SessionRules,
    Step,
    UrlRules,
    matomo,
)
from cemreplay.journeys.sessions import sessions

__all__ = [
    "GA4",
    "MATOMO",
    "POSTHOG",
    "FunnelResult",
    "Goal",
    "GoalResult",
    "SessionRules",
    "Step",
    "UrlRules",
    "canonical",
    "clicks_to_goal",
    "funnel",
    "matomo",
    "page_views",
    "path_tree",
    "paths",
    "sessions",
    "top_paths",
    "with_page_views",
]
