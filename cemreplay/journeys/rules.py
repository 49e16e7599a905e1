"""Rules for journeys as frozen, validated dataclasses, and the presets of well-known tools.

Every threshold is named, has a documented default and its source, and is checked when the
rule is made: a bad value raises :class:`cemreplay.errors.ConfigError` with a hint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cemreplay.errors import ConfigError

__all__ = [
    "GA4",
    "MATOMO",
    "POSTHOG",
    "Goal",
    "SessionRules",
    "Step",
    "UrlRules",
    "matomo",
]

MINUTE: Final = 60_000
HOUR: Final = 60 * MINUTE

#: Path segments collapsed to ``:id`` by default: all digits, a UUID, or 16+ hex digits.
DEFAULT_ID_PATTERNS: Final = (
    r"[0-9]+",
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    r"[0-9a-fA-F]{16,}",
)


def _fail(what: str, got: object, hint: str) -> ConfigError:
    return ConfigError(f"{what}, got {got!r}; hint: {hint}")


@dataclass(frozen=True, slots=True)
class UrlRules:
    """How a page URL is normalised before page views are grouped.

    Parameters
    ----------
    keep_host : bool
        Keep ``scheme://host`` (default False: ``https://shop.test/cart`` becomes ``/cart``).
    keep_query : tuple of str
        Query parameters to keep, in the URL's order (default none: the query string is
        dropped, as most analytics tools' "page path" does). ``("*",)`` keeps the whole query.
    keep_hash_routes : bool
        Keep a fragment that is a single-page-app route (``#/cart``, ``#!/cart``); other
        fragments (``#top``) are always dropped. Default True.
    collapse_ids : bool
        Replace path segments that look like ids (:data:`DEFAULT_ID_PATTERNS` plus
        ``id_patterns``) by ``:id``, so ``/product/123`` and ``/product/456`` group into
        ``/product/:id``. Default True.
    id_patterns : tuple of str
        Extra regular expressions a whole path segment must match to count as an id.
    lowercase : bool
        Lower-case the path (default False: paths are case-sensitive on most servers).
    strip_trailing_slash : bool
        ``/cart/`` becomes ``/cart`` (the root ``/`` stays). Default True.

    Examples
    --------
    >>> UrlRules(keep_query=("q",)).keep_query
    ('q',)
    """

    keep_host: bool = False
    keep_query: tuple[str, ...] = ()
    keep_hash_routes: bool = True
    collapse_ids: bool = True
    id_patterns: tuple[str, ...] = ()
    lowercase: bool = False
    strip_trailing_slash: bool = True

    def __post_init__(self) -> None:
        keep: object = self.keep_query
        if isinstance(keep, str):
            raise _fail(
                "UrlRules.keep_query must be a tuple of parameter names",
                self.keep_query,
                f"write keep_query=({self.keep_query!r},)",
            )
        for p in self.id_patterns:
            try:
                re.compile(p)
            except re.error as exc:
                raise _fail(
                    f"UrlRules.id_patterns holds an invalid regular expression ({exc})",
                    p,
                    "each pattern must match one whole path segment, e.g. r'[A-Z]{3}[0-9]+'",
                ) from None


@dataclass(frozen=True, slots=True)
class Goal:
    """What a visitor aims at: a page (URL pattern) or a milestone, exactly one of them.

    Parameters
    ----------
    milestone : str or None
        A ``MILESTONE`` name, e.g. ``"order_placed"``.
    url : str or None
        A pattern matched against the *normalised* page URL: exact text, ``*`` as a
        wildcard (``/product/*``), or a regular expression prefixed ``re:``.
    name : str or None
        Label in outputs; defaults to the milestone or the pattern.

    Examples
    --------
    >>> Goal(url="/thanks").label
    '/thanks'
    """

    milestone: str | None = None
    url: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if (self.milestone is None) == (self.url is None):
            raise _fail(
                "a Goal needs exactly one of milestone= or url=",
                (self.milestone, self.url),
                "Goal(milestone='order_placed') or Goal(url='/thanks')",
            )
        if self.url is not None and self.url.startswith("re:"):
            try:
                re.compile(self.url[3:])
            except re.error as exc:
                raise _fail(
                    f"Goal url regular expression is invalid ({exc})",
                    self.url,
                    "after 're:' write a Python/Rust regex, e.g. 're:^/order/\\d+$'",
                ) from None

    @property
    def label(self) -> str:
        """The name shown in outputs."""
        return self.name or self.milestone or self.url or ""


#: A funnel step is a goal: a page pattern or a milestone.
Step = Goal


@dataclass(frozen=True, slots=True)
class SessionRules:
    """How snippet sessions are split into sessions, and what counts as converting.

    Parameters
    ----------
    inactivity_ms : int or None
        Start a new session after this much time without events (default 30 min, the
        industry default: GA4, PostHog and Matomo all use it). None: never.
    max_length_ms : int or None
        Start a new session once one would last longer than this (default 24 h, PostHog's
        limit). None: no limit.
    split_on_campaign : bool
        Start a new session at a page view that brings a ``utm_campaign`` different from the
        session's current one (Matomo does). Default False.
    midnight_tz : str or None
        Start a new session when the local date changes in this IANA time zone (Matomo
        does, in the site's zone). Default None: never.
    goal : Goal
        What makes a session converted. Default ``Goal(milestone="order_placed")``.
    urls : UrlRules
        How entry and exit pages are normalised.
    source : str
        Where these rules come from (shown in docs and reprs of presets).

    Examples
    --------
    >>> SessionRules(inactivity_ms=15 * 60_000).max_length_ms
    86400000
    """

    inactivity_ms: int | None = 30 * MINUTE
    max_length_ms: int | None = 24 * HOUR
    split_on_campaign: bool = False
    midnight_tz: str | None = None
    goal: Goal = field(default_factory=lambda: Goal(milestone="order_placed"))
    urls: UrlRules = field(default_factory=UrlRules)
    source: str = "cemreplay defaults"

    def __post_init__(self) -> None:
        for name in ("inactivity_ms", "max_length_ms"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value <= 0
            ):
                raise _fail(
                    f"SessionRules.{name} must be a positive int of milliseconds or None",
                    value,
                    "e.g. 30 * 60_000 for 30 minutes; None turns the rule off",
                )
        if self.midnight_tz is not None:
            try:
                ZoneInfo(self.midnight_tz)
            except (ZoneInfoNotFoundError, ValueError):
                raise _fail(
                    "SessionRules.midnight_tz is not a known IANA time zone",
                    self.midnight_tz,
                    "use a name like 'Europe/Berlin' or 'UTC'",
                ) from None
        if not isinstance(self.goal, Goal):
            raise _fail(
                "SessionRules.goal must be a Goal", self.goal, "Goal(milestone='order_placed')"
            )
        if not isinstance(self.urls, UrlRules):
            raise _fail("SessionRules.urls must be a UrlRules", self.urls, "UrlRules()")


#: Google Analytics 4: a session ends after 30 minutes of inactivity (adjustable); GA4 no
#: longer restarts sessions at midnight or on a campaign change, and has no length cap.
#: Source: Google Analytics Help, "[GA4] About Analytics sessions" (answer 9191807).
GA4: Final = SessionRules(
    inactivity_ms=30 * MINUTE,
    max_length_ms=None,
    source="GA4: 30 min inactivity; no midnight or campaign split (Analytics Help 9191807)",
)

#: PostHog: 30 minutes of inactivity or 24 hours in total end a session.
#: Source: PostHog docs "Sessions" and posthog-js ``SESSION_LENGTH_LIMIT`` (24 h).
POSTHOG: Final = SessionRules(
    inactivity_ms=30 * MINUTE,
    max_length_ms=24 * HOUR,
    source="PostHog: 30 min inactivity, 24 h maximum (docs 'Sessions', posthog-js)",
)

#: Matomo: 30 minutes of inactivity (``visit_standard_length = 1800``), a new visit when the
#: campaign changes (``create_new_visit_when_campaign_changes = 1``) and when the last action
#: was not today in the site's time zone. Source: matomo-org/matomo ``config/global.ini.php``
#: and ``core/Tracker/Visit.php``. Time zone defaults to UTC; use :func:`matomo` for another.
MATOMO: Final = SessionRules(
    inactivity_ms=30 * MINUTE,
    max_length_ms=None,
    split_on_campaign=True,
    midnight_tz="UTC",
    source="Matomo: 30 min, campaign change, midnight in site time zone (global.ini.php)",
)


def matomo(tz: str) -> SessionRules:
    """The Matomo preset with midnight taken in the site's time zone ``tz``."""
    return SessionRules(
        inactivity_ms=MATOMO.inactivity_ms,
        max_length_ms=MATOMO.max_length_ms,
        split_on_campaign=True,
        midnight_tz=tz,
        source=MATOMO.source,
    )


Unit = Literal["session", "visitor"]


def check_unit(by: str) -> Unit:
    """``by`` as a counting unit, or ConfigError."""
    if by == "session":
        return "session"
    if by == "visitor":
        return "visitor"
    raise _fail("count by must be 'session' or 'visitor'", by, "by='visitor' counts people-ish")
