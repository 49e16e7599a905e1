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

Dictionaries (wire version 3)
-----------------------------
A version 3 batch names a dictionary of its site (element 13). :func:`prepare` asks its
``dictionaries`` argument for those its batches name and decodes with them; a batch naming one
it is not given fails validation (the decoder's reason names the site and the id) and is
quarantined. The store answers from memory (:meth:`cemreplay.store.SQLiteStore.put_batches`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgpack

from cemreplay.schema import MAX_STRING_BYTES
from cemreplay.scrub import scrub_text
from cemreplay.wire import decode_report

if TYPE_CHECKING:
    from cemreplay.wire import Dictionary

__all__ = [
    "DUPLICATE_CONFLICT",
    "MAX_FILLER",
    "UNDEFINED_REF",
    "UNKNOWN_DICTIONARY",
    "Bad",
    "Dictionaries",
    "DictionaryKey",
    "Good",
    "dictionary_ref",
    "peek",
    "prepare",
    "scrub_batch",
]

#: A dictionary's identity: (site key, id).
DictionaryKey = tuple[str, int]
#: What :func:`prepare` decodes with: the dictionaries themselves, or a function giving those
#: of the requested keys that exist.
Dictionaries = (
    Iterable["Dictionary"] | Callable[[Collection[DictionaryKey]], Iterable["Dictionary"]]
)

#: Largest ``str_base`` a probe gets a filler for (above it, references below ``str_base`` are
#: left for the session-level check).
MAX_FILLER: Final = 65_536

# Decoder codes (cemreplay.wire._codes) this module needs by name.
UNDEFINED_REF: Final = 16
DUPLICATE_CONFLICT: Final = 19
UNKNOWN_DICTIONARY: Final = 23  # a version 3 batch names a dictionary the decode was not given
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
    dictionary: int = 0  # the site dictionary a version 3 batch names (0: none)


@dataclass(frozen=True)
class Bad:
    """A batch that failed validation: the decoder's code and reason, and what could be read."""

    code: int
    reason: str
    session_id: str | None
    seq: int | None
    #: The bytes to keep in quarantine when they can be scrubbed string by string (a batch
    #: naming a dictionary not given: it is otherwise sound and may be stored once the
    #: dictionary is there); None: mask the received bytes (:func:`cemreplay.scrub.mask_bytes`).
    keep: bytes | None = None


def peek(data: bytes, *at: int) -> tuple[int, tuple[Any, ...]] | None:
    """The envelope's length and its elements ``at`` (increasing indexes), read without
    decoding the rest; None when the batch is not an array that long or msgpack cannot read
    that far (the decoder will say why)."""
    try:
        u = msgpack.Unpacker(raw=False, max_buffer_size=len(data) + 1)
        u.feed(data)
        n = u.read_array_header()
        if n <= at[-1]:
            return None
        got = []
        i = 0
        for k in at:
            for _ in range(k - i):
                u.skip()
            got.append(u.unpack())
            i = k + 1
    except Exception:  # any msgpack fault: not a batch this can read, the decoder says why
        return None
    return n, tuple(got)


def dictionary_ref(data: bytes) -> DictionaryKey | None:
    """(site key, dictionary id) a version 3 batch names, read cheaply from its envelope; None
    for a batch naming none (id 0, an older version) or one that cannot be read that far (the
    decoder will say why)."""
    if data[:1] == b"\x9d":  # an array of 13: an older version, the common case
        return None
    got = peek(data, 1, 13)
    if got is None or got[0] != 14:
        return None
    site, d = got[1]
    return (site, d) if isinstance(site, str) and type(d) is int and d > 0 else None


def _envelope(data: bytes) -> list[Any] | None:
    """The batch's 13 (14 in version 3) elements when it is a plain msgpack array with the
    right id types."""
    try:
        v = msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True)
    except Exception:  # any msgpack fault (truncation, extra data, UTF-8): the decoder says why
        return None
    if not (isinstance(v, list) and (len(v) == 13 or (len(v) == 14 and type(v[13]) is int))):
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


def _scrubbed_bytes(raw: bytes, env: list[Any], scrub: bool) -> tuple[bytes, int]:
    """The bytes to keep for a batch (``raw``, or re-encoded when scrubbing changed any of its
    strings) and how many strings changed."""
    clean, changed = scrub_batch(env) if scrub else (env, 0)
    return (_pack(clean) if changed else bytes(raw)), changed


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
    batches: Sequence[bytes],
    envs: list[list[Any] | None],
    which: list[int],
    filler: bool,
    dictionaries: Sequence[Dictionary],
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
    kw: dict[str, Any] = {"dictionaries": dictionaries} if dictionaries else {}
    for q in decode_report(probes, **kw).quarantined:
        k = probe_of[q.index]
        if main_probe[k] == q.index:  # a filler's own fault is not the batch's
            faults[k] = (q.code, q.reason)
    return faults


def _needed(envs: Sequence[list[Any] | None]) -> set[DictionaryKey]:
    return {(e[1], e[13]) for e in envs if e is not None and len(e) == 14 and e[13] > 0}


def prepare(
    batches: Sequence[bytes], *, scrub: bool = True, dictionaries: Dictionaries = ()
) -> list[Good | Bad]:
    """Validate ``batches`` (one decoder call for all) and scrub the good ones.

    Returns one :class:`Good` or :class:`Bad` per input batch, in input order. Batches never
    affect each other here (duplicates and conflicts between them are the store's business).
    ``dictionaries``: the site dictionaries version 3 batches may name, or a function that
    gives those of a collection of (site key, id) keys it knows (called once, with the keys
    the batches name); a batch naming one it lacks is :class:`Bad`.
    """
    envs = [_envelope(b) for b in batches]
    if callable(dictionaries):
        needed = _needed(envs)
        dicts = list(dictionaries(needed)) if needed else []
    else:
        dicts = list(dictionaries)
    # First without fillers (most batches refer only to their own strings), then again with
    # fillers for those that refer below their str_base.
    faults = _faults(batches, envs, list(range(len(batches))), False, dicts)
    again = [k for k, (code, _) in faults.items() if code == UNDEFINED_REF]
    if again:
        for k in again:
            del faults[k]
        faults.update(_faults(batches, envs, again, True, dicts))
    for k in [k for k, (code, _) in faults.items() if code == UNDEFINED_REF]:
        del faults[k]  # refers below str_base past MAX_FILLER: checked with its session
    out: list[Good | Bad] = []
    for k, env in enumerate(envs):
        if k in faults:
            code, reason = faults[k]
            keep = None
            if code == UNKNOWN_DICTIONARY and env is not None:
                keep = _scrubbed_bytes(batches[k], env, scrub)[0]
            out.append(
                Bad(
                    code,
                    reason,
                    env[3] if env is not None else None,
                    env[4] if env is not None else None,
                    keep,
                )
            )
            continue
        if env is None:
            # The decoder accepts it but msgpack cannot re-encode it for scrubbing.
            out.append(Bad(2, "batch cannot be re-encoded for scrubbing", None, None))
            continue
        data, changed = _scrubbed_bytes(batches[k], env, scrub)
        out.append(
            Good(
                data=data,
                site_key=env[1],
                visitor_id=env[2],
                session_id=env[3],
                seq=env[4],
                base_ts=env[5],
                n=int(env[8]) if type(env[8]) is int else 0,
                scrubbed=changed,
                dictionary=env[13] if len(env) == 14 else 0,
            )
        )
    return out
