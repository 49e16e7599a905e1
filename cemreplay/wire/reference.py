"""The pure-Python reference decoder: slow, plain, and the yardstick for the numba kernels.

It walks each batch byte by byte with ordinary Python (no numpy, no numba), resolves sessions
with dicts and loops per event. ``decode_report(..., engine="python")`` runs it; the tests check
that the numba path gives the same table and the same quarantine on generated and fuzzed input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from cemreplay.schema import (
    EVENT_SCHEMA,
    LAYOUT,
    MAX_EVENTS_PER_BATCH,
    MAX_ID_BYTES,
    MAX_STRING_BYTES,
    MAX_STRINGS_PER_BATCH,
    SUPPORTED_WIRE_VERSIONS,
)
from cemreplay.wire import _codes as C
from cemreplay.wire.decode import BATCHES_SCHEMA, DecodeReport, Quarantined
from cemreplay.wire.dictionary import Dictionary

_T_MAX = (1 << 53) - 1


class _BadBatchError(Exception):
    def __init__(self, code: int, detail: int, offset: int):
        self.code, self.detail, self.offset = code, detail, offset


@dataclass
class _Env:
    version: int
    site: str
    visitor: str
    session: str
    seq: int
    base_ts: int
    str_base: int
    strings: list[tuple[str, int]]  # (value, offset of its bytes in the batch)
    n: int
    kinds: bytes
    kinds_off: int
    sections: dict[int, tuple[int, int]] = field(default_factory=dict)  # el -> (start, end)
    dict_id: int = 0  # v3: element 13 (0: no dictionary)
    dict_off: int = 0  # where element 13 starts
    dictionary: tuple[str, ...] = ()  # v3: the strings of the dictionary it names


class _Reader:
    def __init__(self, data: bytes):
        self.d = data
        self.p = 0

    def need(self, n: int, el: int) -> None:
        if self.p + n > len(self.d):
            raise _BadBatchError(C.TRUNCATED, el, self._start)

    def be(self, n: int) -> int:
        v = int.from_bytes(self.d[self.p : self.p + n], "big")
        self.p += n
        return v

    def uint(self, el: int) -> int:
        self._start = self.p
        self.need(1, el)
        c = self.d[self.p]
        if c <= 0x7F:
            self.p += 1
            return c
        if c in (0xCC, 0xCD, 0xCE, 0xCF, 0xD0, 0xD1, 0xD2, 0xD3):
            n = 1 << ((c - 0xCC) if c <= 0xCF else (c - 0xD0))
            self.need(1 + n, el)
            signed = c >= 0xD0
            raw = self.d[self.p + 1 : self.p + 1 + n]
            if signed and raw[0] >= 0x80:
                raise _BadBatchError(C.OUT_OF_RANGE, el, self._start)
            v = int.from_bytes(raw, "big")
            if v >= 1 << 62:
                raise _BadBatchError(C.OUT_OF_RANGE, el, self._start)
            self.p += 1 + n
            return v
        if c >= 0xE0:
            raise _BadBatchError(C.OUT_OF_RANGE, el, self._start)
        raise _BadBatchError(C.WRONG_TYPE, el, self._start)

    def header(self, el: int, fix: tuple[int, int, int] | None, codes: dict[int, int]) -> int:
        self._start = self.p
        self.need(1, el)
        c = self.d[self.p]
        if fix is not None and fix[0] <= c <= fix[1]:
            self.p += 1
            return c & fix[2]
        if c in codes:
            self.need(1 + codes[c], el)
            self.p += 1
            return self.be(codes[c])
        raise _BadBatchError(C.WRONG_TYPE, el, self._start)

    def raw(self, el: int, kind: str) -> tuple[bytes, int]:
        if kind == "str":
            n = self.header(el, (0xA0, 0xBF, 0x1F), {0xD9: 1, 0xDA: 2, 0xDB: 4})
        else:
            n = self.header(el, None, {0xC4: 1, 0xC5: 2, 0xC6: 4})
        if self.p + n > len(self.d):
            raise _BadBatchError(C.TRUNCATED, el, self._start)
        out = self.d[self.p : self.p + n]
        at = self.p
        self.p += n
        return out, at

    def array(self, el: int) -> int:
        return self.header(el, (0x90, 0x9F, 0x0F), {0xDC: 2, 0xDD: 4})


def _parse_envelope(data: bytes) -> _Env:
    r = _Reader(data)
    try:
        n13 = r.array(-1)
    except _BadBatchError as exc:
        raise _BadBatchError(
            C.TRUNCATED if exc.code == C.TRUNCATED else C.NOT_ENVELOPE, -1, 0
        ) from None
    if n13 not in (13, 14):
        raise _BadBatchError(C.NOT_ENVELOPE, -1, 0)
    at = r.p
    version = r.uint(0)
    if version not in SUPPORTED_WIRE_VERSIONS:
        raise _BadBatchError(C.VERSION, version, at)
    if n13 != (14 if version == 3 else 13):  # v3 has the 14th element, v1 and v2 not
        raise _BadBatchError(C.NOT_ENVELOPE, version, 0)
    raw_ids: list[tuple[bytes, int]] = []
    for el in (1, 2, 3):
        at = r.p
        value, off = r.raw(el, "str")
        if len(value) > MAX_ID_BYTES:
            raise _BadBatchError(C.STRING_TOO_LONG, el, at)
        if not value and el > 1:
            raise _BadBatchError(C.EMPTY_ID, el, at)
        raw_ids.append((value, off))
    nums = []
    for el, limit in ((4, (1 << 32) - 1), (5, _T_MAX), (6, (1 << 32) - 1)):
        at = r.p
        v = r.uint(el)
        if v > limit:
            raise _BadBatchError(C.OUT_OF_RANGE, el, at)
        nums.append(v)
    seq, base_ts, str_base = nums
    at = r.p
    nstr = r.array(7)
    if nstr > MAX_STRINGS_PER_BATCH:
        raise _BadBatchError(C.TOO_MANY, 7, at)
    if str_base + nstr > (1 << 32) - 1:
        raise _BadBatchError(C.OUT_OF_RANGE, 6, at)
    raw_strings = []
    for j in range(nstr):
        at = r.p
        value, off = r.raw(14 + j, "str")
        if len(value) > MAX_STRING_BYTES:
            raise _BadBatchError(C.STRING_TOO_LONG, 14 + j, at)
        raw_strings.append((value, off))
    at = r.p
    n = r.uint(8)
    if n > MAX_EVENTS_PER_BATCH:
        raise _BadBatchError(C.TOO_MANY, 8, at)
    sections = {}
    kinds, kinds_off = b"", 0
    for el in (9, 10, 11, 12):
        at = r.p
        value, off = r.raw(el, "bin")
        if el == 9:
            if len(value) != n and version == 1:  # v2 sends runs: checked with the events
                raise _BadBatchError(C.KINDS_LENGTH, 9, at)
            kinds, kinds_off = value, off
        else:
            sections[el] = (off, off + len(value))
    dict_id = dict_off = 0
    if version == 3:
        dict_off = r.p
        dict_id = r.uint(13)
        if dict_id > (1 << 32) - 1:
            raise _BadBatchError(C.OUT_OF_RANGE, 13, dict_off)
    if r.p != len(data):
        raise _BadBatchError(C.TRAILING, -1, r.p)
    # UTF-8, in envelope order.
    texts = []
    for el, (value, off) in [(1 + k, x) for k, x in enumerate(raw_ids)] + [
        (14 + j, x) for j, x in enumerate(raw_strings)
    ]:
        try:
            texts.append((value.decode("utf-8"), off))
        except UnicodeDecodeError:
            raise _BadBatchError(C.UTF8, el, off) from None
    site, visitor, session = (t for t, _ in texts[:3])
    return _Env(
        version,
        site,
        visitor,
        session,
        seq,
        base_ts,
        str_base,
        texts[3:],
        n,
        kinds,
        kinds_off,
        sections,
        dict_id,
        dict_off,
    )


def _varint(data: bytes, p: int, end: int) -> tuple[int, int] | None:
    v = 0
    for j in range(5):
        if p >= end:
            return None
        c = data[p]
        p += 1
        if j == 4 and c > 0x0F:
            return None
        v |= (c & 0x7F) << (7 * j)
        if c < 0x80:
            return v, p
    return None


def _unzig(v: int) -> int:
    return (v >> 1) ^ -(v & 1)


Row = tuple[int, int, int, int, int, int, int, str | None, str | None]


def _kinds(env: _Env) -> tuple[list[tuple[int, int]], int | None]:
    """Each event's (kind, offset of the byte that gives it), and where the kinds section went
    wrong (None when it holds exactly ``n`` events). v1: a byte per event. v2: runs, a byte
    each: kind in the low 5 bits, run length - 1 in the high 3."""
    if env.version == 1:
        return [(kd, env.kinds_off + k) for k, kd in enumerate(env.kinds)], None
    out: list[tuple[int, int]] = []
    for p, c in enumerate(env.kinds):
        if len(out) >= env.n:
            return out, env.kinds_off + p
        out += [(c & 31, env.kinds_off + p)] * ((c >> 5) + 1)
    if len(out) != env.n:
        # too few: the fault shows at the end of the section; too many: at the run that spills
        return out[: env.n], env.kinds_off + len(env.kinds)
    return out, None


def _events(data: bytes, env: _Env, table: dict[int, str]) -> list[Row]:
    """Decode one batch's events; raises _BadBatchError on the first fault."""
    rows: list[Row] = []
    pt, et = env.sections[10]
    pi, ei = env.sections[11]
    pr, er = env.sections[12]
    t = env.base_ts
    px = py = 0
    prev: dict[tuple[int, int], int] = {}  # v2: last value of each (kind, integer slot)
    local_n = env.str_base + len(env.strings)
    kinds, kinds_fault = _kinds(env)
    for k in range(env.n):
        if k >= len(kinds):
            raise _BadBatchError(C.KIND_RUNS, 9, kinds_fault or 0)
        kd, kd_at = kinds[k]
        if kd >= len(LAYOUT) or LAYOUT[kd] < 0:
            raise _BadBatchError(C.UNKNOWN_KIND, k, kd_at)
        m = LAYOUT[kd]
        got = _varint(data, pt, et)
        if got is None:
            raise _BadBatchError(C.BAD_VARINT, 10, _fail_pos(data, pt, et))
        v, pt = got
        if env.version == 1:
            t += _unzig(v)
        elif v > 0:
            t += v - 1
        else:
            got = _varint(data, pt, et)
            if got is None:
                raise _BadBatchError(C.BAD_VARINT, 10, _fail_pos(data, pt, et))
            v, pt = got
            t -= v
        if not 0 <= t <= _T_MAX:
            raise _BadBatchError(C.TIME_RANGE, k, pt)
        ints = [0, 0, 0, 0]
        for slot in range(4):
            if m & (1 << slot):
                got = _varint(data, pi, ei)
                if got is None:
                    raise _BadBatchError(C.BAD_VARINT, 11, _fail_pos(data, pi, ei))
                v, pi = got
                ints[slot] = _unzig(v)
                if env.version >= 2:  # the change is modulo 2^32, so is the sum
                    total = ints[slot] + prev.get((kd, slot), 0)
                    ints[slot] = (total + (1 << 31)) % (1 << 32) - (1 << 31)
                    prev[(kd, slot)] = ints[slot]
        if env.version == 1:
            if m & 1:
                px += ints[0]
                ints[0] = px
            if m & 2:
                py += ints[1]
                ints[1] = py
        if not all(-(1 << 31) <= v < 1 << 31 for v in ints):
            raise _BadBatchError(C.COORD_RANGE, k, pi)
        strs: list[str | None] = [None, None]
        for slot in range(2):
            if m & (16 << slot):
                got = _varint(data, pr, er)
                if got is None:
                    raise _BadBatchError(C.BAD_VARINT, 12, _fail_pos(data, pr, er))
                v, pr = got
                if v == 0:
                    continue
                if v <= len(env.dictionary):  # v3: 1..D name dictionary entries
                    strs[slot] = env.dictionary[v - 1]
                    continue
                e = v - 1 - len(env.dictionary)  # the session's table follows
                if e >= local_n:
                    raise _BadBatchError(C.REF_RANGE, k, pr)
                if e not in table:
                    raise _BadBatchError(C.UNDEFINED_REF, k, pr)
                strs[slot] = table[e]
        rows.append((t, k, kd, ints[0], ints[1], ints[2], ints[3], strs[0], strs[1]))
    if kinds_fault is not None:
        raise _BadBatchError(C.KIND_RUNS, 9, kinds_fault)
    for el, (p, e) in ((10, (pt, et)), (11, (pi, ei)), (12, (pr, er))):
        if p != e:
            raise _BadBatchError(C.LEFTOVER, el, p)
    return rows


def _fail_pos(data: bytes, p: int, end: int) -> int:
    """Where a bad varint starting at ``p`` stops being read (as the kernel reports it)."""
    for j in range(5):
        if p >= end:
            return p
        c = data[p]
        p += 1
        if (j == 4 and c > 0x0F) or c < 0x80:
            return p
    return p


def decode_reference(
    raw: Sequence[bytes | bytearray | memoryview],
    dictionaries: Mapping[tuple[str, int], Dictionary] | None = None,
) -> DecodeReport:
    """The report of ``raw``; v3 batches resolve against ``dictionaries`` (by site and id)."""
    items = [bytes(b) for b in raw]
    envs: dict[int, _Env] = {}
    errors: dict[int, tuple[int, int, int]] = {}
    for b, data in enumerate(items):
        try:
            env = envs[b] = _parse_envelope(data)
        except _BadBatchError as exc:
            errors[b] = (exc.code, exc.detail, exc.offset)
            continue
        if env.dict_id:  # after the envelope's own faults (UTF-8 included): it names the site
            d = (dictionaries or {}).get((env.site, env.dict_id))
            if d is None:
                errors[b] = (C.UNKNOWN_DICTIONARY, env.dict_id, env.dict_off)
            else:
                env.dictionary = d.strings
    while True:
        cross: dict[int, tuple[int, int, int | None]] = {}
        duplicates = 0
        by_key: dict[tuple[str, int], int] = {}
        for b in sorted(envs):
            if b in errors:
                continue
            key = (envs[b].session, envs[b].seq)
            if key in by_key:
                if items[by_key[key]] == items[b]:
                    duplicates += 1
                else:
                    cross[b] = (C.DUPLICATE_CONFLICT, 0, None)
            else:
                by_key[key] = b
        kept = sorted(by_key.values(), key=lambda b: (envs[b].session, envs[b].seq))
        lead_visitor: dict[str, str] = {}
        for b in kept:
            lead_visitor.setdefault(envs[b].session, envs[b].visitor)
        for b in kept:
            if envs[b].visitor != lead_visitor[envs[b].session]:
                cross[b] = (C.VISITOR_CHANGE, 0, None)
        kept = [b for b in kept if b not in cross]
        definer: dict[tuple[str, int], str] = {}
        for b in kept:  # kept is in (session, seq) order: the lowest seq defines
            env = envs[b]
            for j, (value, _off) in enumerate(env.strings):
                definer.setdefault((env.session, env.str_base + j), value)
        for b in kept:
            env = envs[b]
            for j, (value, off) in enumerate(env.strings):
                if definer[(env.session, env.str_base + j)] != value:
                    cross[b] = (C.STRING_CONFLICT, env.str_base + j, off)
                    break
        kept = [b for b in kept if b not in cross]
        tables: dict[str, dict[int, str]] = {}
        for b in kept:
            env = envs[b]
            table = tables.setdefault(env.session, {})
            for j, (value, _off) in enumerate(env.strings):
                table.setdefault(env.str_base + j, value)
        rows: list[tuple[str, str, int, Row]] = []
        new_errors = False
        for b in kept:
            env = envs[b]
            try:
                for row in _events(items[b], env, tables[env.session]):
                    rows.append((env.session, env.visitor, env.seq, row))
            except _BadBatchError as exc:
                errors[b] = (exc.code, exc.detail, exc.offset)
                new_errors = True
        if not new_errors:
            break

    events = pl.DataFrame(
        {
            "session_id": [r[0] for r in rows],
            "visitor_id": [r[1] for r in rows],
            "t": [r[3][0] for r in rows],
            "batch": [r[2] for r in rows],
            "i": [r[3][1] for r in rows],
            "kind": [r[3][2] for r in rows],
            "x": [r[3][3] for r in rows],
            "y": [r[3][4] for r in rows],
            "a": [r[3][5] for r in rows],
            "b": [r[3][6] for r in rows],
            "target": [r[3][7] for r in rows],
            "text": [r[3][8] for r in rows],
        },
        schema=EVENT_SCHEMA,
    )
    batches = pl.DataFrame(
        {
            "index": kept,
            "session_id": [envs[b].session for b in kept],
            "visitor_id": [envs[b].visitor for b in kept],
            "site_key": [envs[b].site for b in kept],
            "seq": [envs[b].seq for b in kept],
            "base_ts": [envs[b].base_ts for b in kept],
            "n": [envs[b].n for b in kept],
        },
        schema=BATCHES_SCHEMA,
    )
    quarantined = []
    for b in sorted(set(errors) | set(cross)):
        code, detail, offset = errors[b] if b in errors else cross[b]
        quarantined.append(
            Quarantined(
                index=b,
                session_id=envs[b].session if b in envs else None,
                code=code,
                detail=detail,
                offset=offset,
                site_key=envs[b].site if code == C.UNKNOWN_DICTIONARY else None,
            )
        )
    return DecodeReport(events, batches, quarantined, duplicates)
