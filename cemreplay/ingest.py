"""From received bytes to storable batches: validate with the decoder, then scrub.

:func:`prepare` takes batches as they arrived (gzip already undone) and says, for each, either
*good* (with the scrubbed bytes to store and its envelope) or *bad* (with the decoder's reason).
No database here: :mod:`cemreplay.store` writes what this gives.

What can be checked on one batch alone
--------------------------------------
Everything the decoder checks inside a batch: the envelope, types, limits, UTF-8, the event
sections, and references past the batch's own string table. What cannot: a reference to a
string table entry that *another* batch of the session defines (below ``str_base``), because
batches arrive in any order. To check the rest of the batch all the same, the probe sent to
the decoder is preceded by a *filler* batch of the same session that defines entries
``0 .. str_base-1`` as empty strings, so such references resolve and the decoder goes on to
the end. (When ``str_base`` is over :data:`MAX_FILLER`, no filler is built and an undefined
reference is let through.) Whether those entries really exist, and faults between batches of
one session (a changed visitor id, an entry defined twice differently), are checked when the
session is decoded from the store (``Store.analyze``, ``Store.session_events``).

Many batches are validated by one decoder call (the collector's writer validates a whole
group at once): each probe gets a session id of its own, so batches never interact there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from cemreplay.schema import MAX_STRING_BYTES
from cemreplay.scrub import scrub_text
from cemreplay.wire import decode_report

__all__ = [
    "DUPLICATE_CONFLICT",
    "MAX_FILLER",
    "UNDEFINED_REF",
    "Bad",
    "Good",
    "prepare",
    "scrub_batch",
]

#: Largest ``str_base`` a probe gets a filler for (above it, references below ``str_base`` are
#: left for the session-level check).
MAX_FILLER: Final = 65_536

# Decoder codes (cemreplay.wire._codes) this module needs by name.
UNDEFINED_REF: Final = 16
DUPLICATE_CONFLICT: Final = 19
_U32: Final = (1 << 32) - 1


@dataclass(frozen=True)
class Good:
    """A batch that passed validation, with the bytes to store (its strings scrubbed)."""

    data: bytes
    site_key: str
    visitor_id: str
    session_id: str
    seq: int
    base_ts: int
    n: int
    scrubbed: int  # how many strings were changed by scrubbing


@dataclass(frozen=True)
class Bad:
    """A batch that failed validation: the decoder's code and reason, and what could be read."""

    code: int
    reason: str
    session_id: str | None
    seq: int | None


def _envelope(data: bytes) -> list[Any] | None:
    """The batch's 13 elements when it is a plain msgpack array with the right id types."""
    try:
        v = msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True)
    except Exception:  # any msgpack fault (truncation, extra data, UTF-8): the decoder says why
        return None
    if not (isinstance(v, list) and len(v) == 13):
        return None
    ok = (
        isinstance(v[1], str)
        and isinstance(v[2], str)
        and isinstance(v[3], str)
        and type(v[4]) is int
        and type(v[5]) is int
        and type(v[6]) is int
        and isinstance(v[7], list)
        and all(isinstance(s, str) for s in v[7])
    )
    return v if ok else None


def _pack(v: list[Any]) -> bytes:
    return bytes(msgpack.packb(v, use_bin_type=True))


def _fit(s: str) -> str:
    """``s`` cut to the wire's string limit on a character boundary (scrubbing can lengthen)."""
    b = s.encode("utf-8")
    if len(b) <= MAX_STRING_BYTES:
        return s
    return b[:MAX_STRING_BYTES].decode("utf-8", errors="ignore")


def scrub_batch(env: list[Any]) -> tuple[list[Any], int]:
    """The envelope with every string table entry scrubbed, and how many entries changed."""
    strings: list[str] = env[7]
    out = [scrub_text(s) for s in strings]
    changed = sum(a is not b and a != b for a, b in zip(strings, out, strict=True))
    if not changed:
        return env, 0
    new = list(env)
    new[7] = [_fit(s) for s in out]
    return new, changed


def _probe(env: list[Any], k: int, filler: bool) -> list[bytes]:
    """The batch under a session id of its own, behind a filler for entries below str_base
    when ``filler``."""
    sid = f"\x00probe{k}"
    probe = list(env)
    probe[3] = sid
    out = []
    str_base, seq = env[6], env[4]
    if filler and 0 < str_base <= MAX_FILLER and 0 <= seq <= _U32:
        filler_seq = seq + 1 if seq < _U32 else seq - 1
        fill = [env[0], env[1], env[2], sid, filler_seq, 0, 0, [""] * str_base, 0]
        out.append(_pack([*fill, b"", b"", b"", b""]))
    out.append(_pack(probe))
    return out


def _faults(
    batches: Sequence[bytes], envs: list[list[Any] | None], which: list[int], filler: bool
) -> dict[int, tuple[int, str]]:
    """Decoder faults (code, reason) of the inputs ``which``, by input index."""
    probes: list[bytes] = []
    probe_of: list[int] = []  # probe index -> input index
    for k in which:
        env = envs[k]
        parts = _probe(env, k, filler) if env is not None else [bytes(batches[k])]
        probes += parts
        probe_of += [k] * len(parts)
    # The last probe of each input is the batch itself (a filler goes first).
    main_probe = {k: j for j, k in enumerate(probe_of)}
    faults: dict[int, tuple[int, str]] = {}
    for q in decode_report(probes).quarantined:
        k = probe_of[q.index]
        if main_probe[k] == q.index:  # a filler's own fault is not the batch's
            faults[k] = (q.code, q.reason)
    return faults


def prepare(batches: Sequence[bytes], *, scrub: bool = True) -> list[Good | Bad]:
    """Validate ``batches`` (one decoder call for all) and scrub the good ones.

    Returns one :class:`Good` or :class:`Bad` per input batch, in input order. Batches never
    affect each other here (duplicates and conflicts between them are the store's business).
    """
    envs = [_envelope(b) for b in batches]
    # First without fillers (most batches refer only to their own strings), then again with
    # fillers for those that refer below their str_base.
    faults = _faults(batches, envs, list(range(len(batches))), filler=False)
    again = [k for k, (code, _) in faults.items() if code == UNDEFINED_REF]
    if again:
        for k in again:
            del faults[k]
        faults.update(_faults(batches, envs, again, filler=True))
    for k in [k for k, (code, _) in faults.items() if code == UNDEFINED_REF]:
        del faults[k]  # refers below str_base past MAX_FILLER: checked with its session
    out: list[Good | Bad] = []
    for k, env in enumerate(envs):
        if k in faults:
            code, reason = faults[k]
            out.append(
                Bad(
                    code,
                    reason,
                    env[3] if env is not None else None,
                    env[4] if env is not None else None,
                )
            )
            continue
        if env is None:
            # The decoder accepts it but msgpack cannot re-encode it for scrubbing.
            out.append(Bad(2, "batch cannot be re-encoded for scrubbing", None, None))
            continue
        clean, changed = scrub_batch(env) if scrub else (env, 0)
        out.append(
            Good(
                data=_pack(clean) if changed else bytes(batches[k]),
                site_key=env[1],
                visitor_id=env[2],
                session_id=env[3],
                seq=env[4],
                base_ts=env[5],
                n=int(env[8]) if type(env[8]) is int else 0,
                scrubbed=changed,
            )
        )
    return out
