"""One error hierarchy. Every error names what was wrong and where, and ends with a hint."""

from __future__ import annotations

from collections.abc import Iterable


class CemReplayError(Exception):
    """Base class of every error cemreplay raises on purpose."""


class DecodeError(CemReplayError, ValueError):
    """A batch could not be decoded.

    Attributes
    ----------
    batch:
        Position of the offending batch in the input (0-based), or None when unknown.
    offset:
        Byte offset inside that batch where decoding stopped, or None when unknown.
    reason:
        The bare reason, without the location (what a quarantine stores).
    """

    _HINT = (
        "cemreplay.wire.decode_report() keeps the good batches and sets bad ones aside "
        "with their reasons"
    )

    def __init__(
        self,
        reason: str,
        *,
        batch: int | None = None,
        offset: int | None = None,
        hint: str | None = None,
    ):
        self.reason = reason
        self.batch = batch
        self.offset = offset
        where = []
        if batch is not None:
            where.append(f"batch {batch}")
        if offset is not None:
            where.append(f"offset {offset}")
        loc = f" ({', '.join(where)})" if where else ""
        super().__init__(f"{reason}{loc}; hint: {hint or self._HINT}")


class WireVersionError(DecodeError):
    """A batch carries a wire version this library does not read."""

    def __init__(
        self, got: int, supported: int | Iterable[int], *, batch: int | None = None
    ) -> None:
        self.got = got
        self.supported = supported
        known = (
            f"version {supported}"
            if isinstance(supported, int)
            else "versions " + ", ".join(map(str, sorted(supported)))
        )
        super().__init__(
            f"wire version {got} is not supported (this cemreplay reads {known}); "
            "upgrade cemreplay or pin the snippet to a matching release",
            batch=batch,
            offset=1,
        )


class SchemaError(CemReplayError, ValueError):
    """A table does not have the columns or types a function needs."""


class ConfigError(CemReplayError, ValueError):
    """An option or threshold is out of range or of the wrong type."""


class RecordingError(DecodeError):
    """An imported recording (rrweb JSON, PostHog JSONL) could not be read."""

    _HINT = (
        "cemreplay.wire.read_rrweb() takes an rrweb event array (JSON), PostHog's JSONL of "
        "windows, or either gzipped"
    )


class SessionNotFoundError(CemReplayError, KeyError):
    """No events for the requested session id (a typo, or events not yet stored)."""

    def __str__(self) -> str:
        # KeyError quotes its argument; show the message as written.
        return str(self.args[0]) if self.args else ""
