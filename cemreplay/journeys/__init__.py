"""Journeys: sessions, page views, paths, funnels and clicks-to-goal, from the event table.

The work is a few single passes over the event table in canonical order, as numba kernels
(``_scan.py``, ``_steps.py``), with polars only for per-session and per-page outputs;
``tests/naive/journeys.py`` holds the slow, obviously correct versions they are checked
against (also with ``NUMBA_DISABLE_JIT=1``). See ``docs/journeys.md``.
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
