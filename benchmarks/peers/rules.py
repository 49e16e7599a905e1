"""The three rules the detection peers implement, as one set of constants (the defaults of
``cemreplay.detectors``), and the cemreplay configuration they are compared with.

The peers implement each rule as ``docs/detectors.md`` states it, with rage-click's two
suppressions (triple clicks that select text, repeat controls that respond) switched off on
both sides: the suppressions need per-target regexes and per-burst response checks that a
window query would spell out at length, and switching them off leaves the rule every peer
(PostHog, Datadog, Amplitude) publishes. Dead click keeps its precedence rules (rage bursts
and error ties) and form abandonment its failed-submit rule, on every side.

Every rule's output is a list of ``(session_id, t)``: the session and time of each finding
(the first click of a burst, the dead click, the last touch of an abandoned form).
"""

from __future__ import annotations

from cemreplay.detectors import Config, RageClickConfig
from cemreplay.schema import ClickFlag, EventKind

RULES = ("rage_click", "dead_click", "form_abandon")

#: cemreplay's side of the comparison: defaults, rage-click suppressions off.
CONFIG = Config(rage_click=RageClickConfig(repeat_controls=(), suppress_triple_click=False))

PV = int(EventKind.PAGE_VIEW)
CLICK = int(EventKind.CLICK)
FOCUS = int(EventKind.FOCUS)
BLUR = int(EventKind.BLUR)
CHANGE = int(EventKind.CHANGE)
SUBMIT = int(EventKind.SUBMIT)
VALID = int(EventKind.VALIDATION_ERROR)
JSERR = int(EventKind.JS_ERROR)
NETFAIL = int(EventKind.NETWORK_FAILURE)
MUTATION = int(EventKind.MUTATION)
REQUEST = int(EventKind.REQUEST)
MILESTONE = int(EventKind.MILESTONE)
RESPONSE = tuple(
    sorted(
        int(k)
        for k in (
            EventKind.MUTATION,
            EventKind.REQUEST,
            EventKind.PAGE_VIEW,
            EventKind.SCROLL,
            EventKind.FOCUS,
            EventKind.PAGE_LEAVE,
        )
    )
)

#: rage: clicks with these bits never join a burst
RAGE_BAD = int(
    ClickFlag.TEXT_INPUT | ClickFlag.NO_RAGE | ClickFlag.MODIFIERS | ClickFlag.BUTTON_MASK
)
RAGE_MIN, RAGE_GAP_MS, RAGE_DIST2 = 3, 1_000, 900  # 3 clicks, <= 1 s apart, <= 30 px
#: dead: an interactive (or unknown) element, none of these bits
DEAD_ELEMENT = int(ClickFlag.INTERACTIVE | ClickFlag.UNKNOWN_ELEMENT)
DEAD_NEVER = int(
    ClickFlag.TEXT_INPUT | ClickFlag.NEW_CONTEXT | ClickFlag.MODIFIERS | ClickFlag.BUTTON_MASK
)
UNKNOWN_ELEMENT = int(ClickFlag.UNKNOWN_ELEMENT)
DEAD_TIMEOUT_MS, DEAD_TOLERANCE_MS = 3_000, 50
ERROR_WINDOW_MS, ERROR_MIN_STATUS = 2_000, 400
#: failed submit: validation error within 5 s after (50 ms before); no success within 10 s
SUBMIT_ERROR_MS, SUBMIT_TOLERANCE_MS, SUBMIT_SUCCESS_MS = 5_000, 50, 10_000

Found = list[tuple[str, int]]
