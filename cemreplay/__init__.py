"""cemreplay: see why visitors struggle. Public API only; everything else is private."""

from cemreplay.detectors import detect
from cemreplay.errors import (
    CemReplayError,
    ConfigError,
    DecodeError,
    RecordingError,
    SchemaError,
    WireVersionError,
)
from cemreplay.journeys import (
    clicks_to_goal,
    funnel,
    page_views,
    paths,
    sessions,
    with_page_views,
)
from cemreplay.schema import EVENT_SCHEMA, WIRE_VERSION, ClickFlag, EventKind
from cemreplay.score import score

__version__ = "0.1.0"

__all__ = [
    "EVENT_SCHEMA",
    "WIRE_VERSION",
    "CemReplayError",
    "ClickFlag",
    "ConfigError",
    "DecodeError",
    "EventKind",
    "RecordingError",
    "SchemaError",
    "WireVersionError",
    "__version__",
    "clicks_to_goal",
    "detect",
    "funnel",
    "page_views",
    "paths",
    "score",
    "sessions",
    "with_page_views",
]
