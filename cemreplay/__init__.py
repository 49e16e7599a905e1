"""cemreplay: see why visitors struggle. Public API only; everything else is private.

The names below are imported on first use (PEP 562), so that ``import cemreplay.cli`` or
``cemreplay.errors`` does not load numba and every kernel module: a support rep's one-session
lookup starts in a fraction of the time.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: public name -> the module that defines it
_WHERE = {
    "detect": "cemreplay.detectors",
    **dict.fromkeys(
        (
            "CemReplayError",
            "ConfigError",
            "DecodeError",
            "RecordingError",
            "SchemaError",
            "WireVersionError",
        ),
        "cemreplay.errors",
    ),
    **dict.fromkeys(
        ("clicks_to_goal", "funnel", "page_views", "paths", "sessions", "with_page_views"),
        "cemreplay.journeys",
    ),
    **dict.fromkeys(("EVENT_SCHEMA", "WIRE_VERSION", "ClickFlag", "EventKind"), "cemreplay.schema"),
    "score": "cemreplay.score",
}

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


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'cemreplay' has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """``cemreplay.score`` is the function, as ever, even once the submodule of the same
    name is imported (importing a submodule sets the package's attribute of its name)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "score" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
