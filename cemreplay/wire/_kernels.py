"""Numba kernels of the wire codec. Private: the public functions live in decode.py/encode.py.

Each kernel works on one flat ``uint8`` buffer holding every batch back to back, so a whole
decode is a handful of compiled passes and Python touches only unique strings, never events.
``tests/test_wire_*`` check every kernel against the pure-Python reference (reference.py).
Runs unchanged (slowly) with ``NUMBA_DISABLE_JIT=1``.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from cemreplay._jit import DISABLED, njit
from cemreplay._jit import ix as _ix
from cemreplay.schema import (
    MAX_EVENTS_PER_BATCH,
    MAX_ID_BYTES,
    MAX_STRING_BYTES,
    MAX_STRINGS_PER_BATCH,
)
from cemreplay.wire import _codes as C

# Meta columns produced by parse_envelopes (one row per batch).
M_ERR = 0
M_DETAIL = 1
M_ERR_OFF = 2
M_VERSION = 3
M_SEQ = 4
M_BASE_TS = 5
M_STR_BASE = 6
M_NSTR = 7
M_N = 8
M_SITE_OFF = 9
M_SITE_LEN = 10
M_VIS_OFF = 11
M_VIS_LEN = 12
M_SESS_OFF = 13
M_SESS_LEN = 14
M_STRS_OFF = 15
M_KINDS_OFF = 16
M_TIMES_OFF = 17
M_TIMES_LEN = 18
M_INTS_OFF = 19
M_INTS_LEN = 20
M_REFS_OFF = 21
M_REFS_LEN = 22
M_KINDS_LEN = 23
M_DICT = 24  # v3: element 13, the dictionary id (0: none)
M_DICT_OFF = 25  # where element 13 starts in the buffer
N_META = 26

_U32 = (1 << 32) - 1
#: The string code the decoder writes for a null ``target``/``text``: no Categorical code
#: (polars numbers a string cache's strings from 0 and could not hold 2^32 - 1 of them), so
#: ``cat.to(..., strict=False)`` reads it as null with no pass of its own.
NULL_CODE = _U32
#: ``tlo`` of a spread-out session table (see session_tables): above every entry index
SPREAD = 1 << 40
_T_MAX = (1 << 53) - 1
_I32_MIN = -(1 << 31)
_I32_MAX = (1 << 31) - 1

jit = njit(cache=True, nogil=True)
#: For helpers taking arrays that sit in a hot loop: numba inlines them in its own IR (LLVM
#: does not inline them: a call with array arguments measured 2x slower per item)
jit_inline = njit(cache=True, nogil=True, inline="always")

if DISABLED:

    def _load8(buf: np.ndarray, p: int) -> np.uint64:
        """The 8 bytes ``buf[p:p+8]`` as a little-endian word (pure-Python twin)."""
        return np.uint64(int.from_bytes(bytes(buf[p : p + 8]), "little"))

else:
    from llvmlite import ir  # type: ignore[import-untyped]
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def _load8(typingctx: Any, buf: Any, p: Any) -> Any:  # pragma: no cover - compiled
        """The 8 bytes ``buf[p:p+8]`` of a uint8 array as one unaligned little-endian load.
        The caller keeps ``p + 8`` in bounds."""
        sig = types.uint64(buf, types.int64)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            ary = context.make_array(signature.args[0])(context, builder, value=args[0])
            ptr = builder.gep(ary.data, [args[1]])
            v = builder.load(builder.bitcast(ptr, ir.IntType(64).as_pointer()), align=1)
            return builder.bswap(v) if sys.byteorder == "big" else v

        return sig, codegen


@jit
def _be(buf: np.ndarray, p: int, nbytes: int) -> int:
    v = 0
    for k in range(nbytes):
        v = (v << 8) | int(buf[_ix(p + k)])
    return v


@jit
def _read_uint(buf: np.ndarray, p: int, end: int) -> tuple[int, int, int]:
    """A non-negative msgpack integer: (value, new position, status)."""
    if p >= end:
        return 0, p, C.TRUNCATED
    c = int(buf[_ix(p)])
    if c <= 0x7F:
        return c, p + 1, C.OK
    if 0xCC <= c <= 0xCF:
        nbytes = 1 << (c - 0xCC)
        if p + 1 + nbytes > end:
            return 0, p, C.TRUNCATED
        if c == 0xCF:
            hi = _be(buf, p + 1, 4)
            if hi >= 1 << 30:  # >= 2^62: out of every range we accept
                return 0, p, C.OUT_OF_RANGE
            return (hi << 32) | _be(buf, p + 5, 4), p + 9, C.OK
        return _be(buf, p + 1, nbytes), p + 1 + nbytes, C.OK
    if 0xD0 <= c <= 0xD3:
        nbytes = 1 << (c - 0xD0)
        if p + 1 + nbytes > end:
            return 0, p, C.TRUNCATED
        if buf[_ix(p + 1)] >= 0x80:  # negative
            return 0, p, C.OUT_OF_RANGE
        if c == 0xD3:
            hi = _be(buf, p + 1, 4)
            if hi >= 1 << 30:
                return 0, p, C.OUT_OF_RANGE
            return (hi << 32) | _be(buf, p + 5, 4), p + 9, C.OK
        return _be(buf, p + 1, nbytes), p + 1 + nbytes, C.OK
    if c >= 0xE0:  # negative fixint
        return 0, p, C.OUT_OF_RANGE
    return 0, p, C.WRONG_TYPE


@jit
def _read_uint_max(
    buf: np.ndarray, p: int, end: int, limit: int, over: int
) -> tuple[int, int, int]:
    """:func:`_read_uint` of a value at most ``limit`` (status ``over`` when above)."""
    v, q, st = _read_uint(buf, p, end)
    if st == C.OK and v > limit:
        return v, p, over
    return v, q, st


@jit
def _read_len(
    buf: np.ndarray, p: int, end: int, fix_lo: int, fix_hi: int, fix_mask: int, c8: int
) -> tuple[int, int, int]:
    """A str/bin/array header: (length, position after header, status).

    ``c8`` is the 8-bit-length code (0 when the family has none, as arrays); the 16 and 32
    bit codes follow it, except for arrays (0xDC, 0xDD) which the caller passes as c8=0xDB.
    """
    if p >= end:
        return 0, p, C.TRUNCATED
    c = int(buf[_ix(p)])
    if fix_lo <= c <= fix_hi:
        return c & fix_mask, p + 1, C.OK
    for w in range(3):
        code = c8 + w
        nbytes = 1 << w
        if code == c8 and c8 == 0xDB:  # arrays have no 8-bit form
            continue
        if c == code:
            if p + 1 + nbytes > end:
                return 0, p, C.TRUNCATED
            return _be(buf, p + 1, nbytes), p + 1 + nbytes, C.OK
    return 0, p, C.WRONG_TYPE


@jit
def _read_sized(
    buf: np.ndarray, p: int, end: int, fix_lo: int, fix_hi: int, fix_mask: int, c8: int
) -> tuple[int, int, int]:
    """A str or bin: (length, start of the bytes, status); position after = start + length."""
    n, q, st = _read_len(buf, p, end, fix_lo, fix_hi, fix_mask, c8)
    if st != C.OK:
        return 0, p, st
    if q + n > end:
        return 0, p, C.TRUNCATED
    return n, q, C.OK


@jit
def _read_str(buf: np.ndarray, p: int, end: int) -> tuple[int, int, int]:
    return _read_sized(buf, p, end, 0xA0, 0xBF, 0x1F, 0xD9)


@jit
def _read_bin(buf: np.ndarray, p: int, end: int) -> tuple[int, int, int]:
    return _read_sized(buf, p, end, 0x100, 0x100, 0, 0xC4)


@jit
def _read_array(buf: np.ndarray, p: int, end: int) -> tuple[int, int, int]:
    return _read_len(buf, p, end, 0x90, 0x9F, 0x0F, 0xDB)


@jit
def _fail(meta: np.ndarray, b: int, code: int, detail: int, off: int) -> None:
    meta[b, M_ERR] = code
    meta[b, M_DETAIL] = detail
    meta[b, M_ERR_OFF] = off


@jit
def parse_envelopes(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, meta: np.ndarray
) -> None:
    """Parse and check every batch's envelope; fill ``meta`` (N_META columns).
    ``meta[b, M_ERR]`` is 0 for a good envelope."""
    for b in range(starts.shape[0]):
        s = int(starts[b])
        e = int(ends[b])
        meta[b, :] = 0
        p = s
        n13, p, st = _read_array(buf, p, e)
        if st == C.TRUNCATED:
            _fail(meta, b, C.TRUNCATED, -1, 0)
            continue
        if st != C.OK or n13 not in (13, 14):
            _fail(meta, b, C.NOT_ENVELOPE, -1, 0)
            continue
        # 0 version
        q = p
        v, p, st = _read_uint(buf, p, e)
        if st != C.OK:
            _fail(meta, b, st, 0, q - s)
            continue
        if v < 1 or v > 3:
            _fail(meta, b, C.VERSION, v, q - s)
            continue
        if n13 != (14 if v == 3 else 13):  # v3 has the 14th element, v1 and v2 not
            _fail(meta, b, C.NOT_ENVELOPE, v, 0)
            continue
        meta[b, M_VERSION] = v
        # 1-3 site_key, visitor_id, session_id
        bad = False
        for el in range(1, 4):
            q = p
            n, start, st = _read_str(buf, p, e)
            if st != C.OK:
                _fail(meta, b, st, el, q - s)
                bad = True
                break
            if n > MAX_ID_BYTES:
                _fail(meta, b, C.STRING_TOO_LONG, el, q - s)
                bad = True
                break
            if n == 0 and el > 1:
                _fail(meta, b, C.EMPTY_ID, el, q - s)
                bad = True
                break
            meta[b, M_SITE_OFF + 2 * (el - 1)] = start
            meta[b, M_SITE_LEN + 2 * (el - 1)] = n
            p = start + n
        if bad:
            continue
        # 4 seq, 5 base_ts, 6 str_base
        for el in range(4, 7):
            q = p
            v, p, st = _read_uint_max(buf, p, e, _T_MAX if el == 5 else _U32, C.OUT_OF_RANGE)
            if st != C.OK:
                _fail(meta, b, st, el, q - s)
                bad = True
                break
            meta[b, M_SEQ + (el - 4)] = v
        if bad:
            continue
        # 7 strings
        q = p
        nstr, p, st = _read_array(buf, p, e)
        if st != C.OK:
            _fail(meta, b, st, 7, q - s)
            continue
        if nstr > MAX_STRINGS_PER_BATCH:
            _fail(meta, b, C.TOO_MANY, 7, q - s)
            continue
        if meta[b, M_STR_BASE] + nstr > _U32:
            _fail(meta, b, C.OUT_OF_RANGE, 6, q - s)
            continue
        meta[b, M_NSTR] = nstr
        meta[b, M_STRS_OFF] = p
        for j in range(nstr):
            q = p
            c = int(buf[_ix(p)]) if p < e else 0
            if 0xA0 <= c <= 0xBF and p + 1 + (c & 0x1F) <= e:  # fixstr, the usual case
                p += 1 + (c & 0x1F)
                continue
            n, start, st = _read_str(buf, p, e)
            if st != C.OK:
                _fail(meta, b, st, 14 + j, q - s)
                bad = True
                break
            if n > MAX_STRING_BYTES:
                _fail(meta, b, C.STRING_TOO_LONG, 14 + j, q - s)
                bad = True
                break
            p = start + n
        if bad:
            continue
        # 8 n
        q = p
        v, p, st = _read_uint_max(buf, p, e, MAX_EVENTS_PER_BATCH, C.TOO_MANY)
        if st != C.OK:
            _fail(meta, b, st, 8, q - s)
            continue
        meta[b, M_N] = v
        # 9 kinds, 10 times, 11 ints, 12 refs
        for el in range(9, 13):
            q = p
            n, start, st = _read_bin(buf, p, e)
            if st != C.OK:
                _fail(meta, b, st, el, q - s)
                bad = True
                break
            if el == 9:
                # v1: a byte per event; v2: runs, checked against n by decode_events
                if n != meta[b, M_N] and meta[b, M_VERSION] == 1:
                    _fail(meta, b, C.KINDS_LENGTH, 9, q - s)
                    bad = True
                    break
                meta[b, M_KINDS_OFF] = start
                meta[b, M_KINDS_LEN] = n
            else:
                meta[b, M_TIMES_OFF + 2 * (el - 10)] = start
                meta[b, M_TIMES_LEN + 2 * (el - 10)] = n
            p = start + n
        if bad:
            continue
        if n13 == 14:  # 13 dict
            q = p
            v, p, st = _read_uint_max(buf, p, e, _U32, C.OUT_OF_RANGE)
            if st != C.OK:
                _fail(meta, b, st, 13, q - s)
                continue
            meta[b, M_DICT] = v
            meta[b, M_DICT_OFF] = q
        if p != e:
            _fail(meta, b, C.TRAILING, -1, p - s)


@jit
def _tail(buf: np.ndarray, o: int, n: int) -> np.uint64:
    """The last ``min(n, 8)`` bytes of ``buf[o:o+n]`` as a little-endian word (0 if n is 0).
    One unaligned load that ends where the string ends (it may start before the string: the
    bytes before are shifted out), so it never reads past the string's end."""
    if n == 0:
        return np.uint64(0)
    if o + n >= 8:
        w = _load8(buf, o + n - 8)
        if n < 8:
            w >>= np.uint64(8 * (8 - n))
        return w
    w = np.uint64(0)
    for j in range(n - 1, -1, -1):  # only within the buffer's first 8 bytes
        w = (w << np.uint64(8)) | np.uint64(buf[o + j])
    return w


@jit
def _hash(buf: np.ndarray, o: int, n: int) -> np.uint64:
    """A 64-bit hash of ``buf[o:o+n]`` and its length: its 8-byte words (the last one
    :func:`_tail`, overlapping the one before) mixed by multiplication, then murmur3's
    finaliser so that the low bits (which pick the slot) depend on every byte. Strings here
    average 14 bytes: two loads."""
    h = np.uint64(0x9E3779B97F4A7C15) ^ np.uint64(n)
    j = 0
    while j + 8 < n:
        h = (h ^ _load8(buf, o + j)) * np.uint64(0x100000001B3)
        h ^= h >> np.uint64(29)
        j += 8
    h = (h ^ _tail(buf, o, n)) * np.uint64(0x100000001B3)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    return h


@jit
def _equal(buf: np.ndarray, a: int, b: int, n: int) -> bool:
    """Do ``buf[a:a+n]`` and ``buf[b:b+n]`` hold the same bytes? Word by word."""
    j = 0
    while j + 8 < n:
        if _load8(buf, a + j) != _load8(buf, b + j):
            return False
        j += 8
    return bool(_tail(buf, a, n) == _tail(buf, b, n))


#: ``_MASK_LO[n]``/``_MASK_HI[n]``: the bits of a string of ``n`` bytes (16 for longer ones)
#: in its first and second little-endian word
_MASK_LO = np.array([(1 << (8 * min(n, 8))) - 1 for n in range(17)], dtype=np.uint64)
_MASK_HI = np.array([(1 << (8 * max(n - 8, 0))) - 1 for n in range(17)], dtype=np.uint64)
#: Bytes after the last batch in the decoder's buffer, so that two 8-byte loads at any
#: string stay in it (see :func:`_key`; without them the last strings are read byte by byte)
PAD = 16


@jit
def _intern_table(cap: int) -> tuple[np.ndarray, np.ndarray]:
    """An empty interning table of ``cap`` (a power of two) slots: the keys, a row of four
    per slot (half a cache line: a few hundred strings take 32 KiB, L1) of ``id << 32 |
    length`` (-1: empty slot) and the key words w0, w1, wt (see :func:`_key`); and beside
    them, per slot, the offset of the first item's bytes and the hash."""
    return np.full((cap, 4), -1, np.int64), np.full((cap, 2), -1, np.int64)


@jit
def _word(buf: np.ndarray, p: int, k: int) -> np.uint64:
    """The ``k <= 8`` bytes ``buf[p:p+k]`` as a little-endian word, byte by byte."""
    w = np.uint64(0)
    for j in range(k - 1, -1, -1):
        w = (w << np.uint64(8)) | np.uint64(buf[p + j])
    return w


@jit_inline
def _key(buf: np.ndarray, o: int, n: int, safe: int) -> tuple[Any, Any, Any, Any]:
    """The interning key of ``buf[o:o+n]``: (w0, w1, wt, hash), with ``w0``/``w1`` its first
    16 bytes (zero-padded) and ``wt`` its last 8 when it is longer than 16 (else 0). With the
    length, the key *is* the string up to 24 bytes; a longer one also compares its middle.

    Two unaligned loads at ``o`` when ``o <= safe`` (the buffer holds 16 bytes from ``o``;
    the bytes past the string are masked off), else byte by byte: the same words."""
    if o <= safe:
        w0 = _load8(buf, o) & _MASK_LO[min(n, 16)]
        w1 = _load8(buf, o + 8) & _MASK_HI[min(n, 16)]
    else:
        w0 = _word(buf, o, min(n, 8))
        w1 = _word(buf, o + 8, min(max(n - 8, 0), 8))
    wt = _load8(buf, o + n - 8) if n > 16 else np.uint64(0)
    h = (w0 * np.uint64(0x9E3779B97F4A7C15)) ^ (w1 * np.uint64(0xC2B2AE3D27D4EB4F))
    h ^= (wt * np.uint64(0x165667B19E3779F9)) ^ np.uint64(n) ^ (h >> np.uint64(32))
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(29)
    return np.int64(w0), np.int64(w1), np.int64(wt), np.int64(h)


@jit_inline
def _probe(
    buf: np.ndarray,
    o: int,
    n: int,
    key: tuple[Any, Any, Any, Any],
    keys: np.ndarray,
    aux: np.ndarray,
) -> int:
    """The slot of ``buf[o:o+n]`` (``key`` from :func:`_key`) in the table ``keys, aux``, or
    the empty slot where it goes (``keys[slot, 0] < 0``). Linear probing; exact."""
    w0, w1, wt, h = key
    cap = keys.shape[0]
    q = _ix(h & (cap - 1))
    while True:  # one exit, nested tests: measured 2x faster than returning from the loop
        k0 = keys[q, 0]
        if k0 < 0:
            break
        if keys[q, 1] == w0 and keys[q, 2] == w1 and keys[q, 3] == wt and (k0 & 0xFFFFFFFF) == n:  # noqa: SIM102
            if n <= 24 or _equal(buf, aux[q, 0] + 16, o + 16, n - 24):
                break
        q = _ix((q + 1) & (cap - 1))
    return int(q)


@jit
def _put(
    keys: np.ndarray,
    aux: np.ndarray,
    q: int | np.uint64,
    u: int,
    o: int,
    n: int,
    key: tuple[Any, Any, Any, Any],
) -> None:
    """Put string ``u`` (``buf[o:o+n]``, ``key`` from :func:`_key`) in the empty slot ``q``."""
    w0, w1, wt, h = key
    keys[q, 0] = (u << 32) | n
    keys[q, 1] = w0
    keys[q, 2] = w1
    keys[q, 3] = wt
    aux[q, 0] = o
    aux[q, 1] = h


@jit
def _regrow(keys: np.ndarray, aux: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The table 4x larger (callers regrow once it is half full: it grows with *distinct*
    strings only)."""
    cap = keys.shape[0] * 4
    nk, na = _intern_table(cap)
    for r in range(keys.shape[0]):
        if keys[r, 0] >= 0:
            p = aux[r, 1] & (cap - 1)
            while nk[p, 0] >= 0:
                p = (p + 1) & (cap - 1)
            nk[p, :] = keys[r, :]
            na[p, :] = aux[r, :]
    return nk, na


@jit
def intern_bytes(
    buf: np.ndarray, off: np.ndarray, length: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Dense ids by first appearance for the byte strings ``buf[off[k]:off[k]+length[k]]``:
    (id per item, first item per id). Exact: equal ids mean equal bytes. Never sorts."""
    off2 = np.ascontiguousarray(off).reshape(-1, 1)
    ids, first, count = intern_ids(buf, off2, np.ascontiguousarray(length).reshape(-1, 1))
    return ids[:, 0], first[: count[0], 0]


@jit
def intern_ids(
    buf: np.ndarray, off: np.ndarray, length: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`intern_bytes` of each column of ``off``/``length`` (shape (m, w)), in one pass
    over the rows, each column in a table of its own: (ids (m, w), first (m, w), distinct
    count per column; ``first[:count[c], c]`` are column c's). The id fields of a batch are
    next to each other in its first bytes: one pass reads each batch's head once (batches are
    a kilobyte or more apart: each head is a cache miss)."""
    m, w = off.shape
    ids = np.empty((m, w), np.int64)
    first = np.empty((m, w), np.int64)
    nu = np.zeros(w, np.int64)
    tabs = [_intern_table(1024) for _ in range(w)]
    safe = buf.shape[0] - 16
    for k in range(m):
        for c in range(w):
            o = int(off[k, c])
            n = int(length[k, c])
            key = _key(buf, o, n, safe)
            keys, aux = tabs[c]
            q = _probe(buf, o, n, key, keys, aux)
            u = keys[q, 0] >> 32
            if u < 0:
                u = nu[c]
                _put(keys, aux, q, u, o, n, key)
                if 2 * (u + 1) > keys.shape[0]:
                    tabs[c] = _regrow(keys, aux)
                first[u, c] = k
                nu[c] = u + 1
            ids[k, c] = u
    return ids, first, nu


@jit
def _entries_run(
    buf: np.ndarray,
    batches: np.ndarray,
    strs_off: np.ndarray,
    nstr: np.ndarray,
    keys: np.ndarray,
    aux: np.ndarray,
    off: np.ndarray,
    ids: np.ndarray,
    uoff: np.ndarray,
    ulen: np.ndarray,
    state: np.ndarray,
) -> bool:
    """The loop of :func:`intern_entries`, from ``state`` = (batch position, entry, byte
    position, entries done, distinct strings) on, until every entry is done (True) or the
    table is half full or ``uoff`` full (False: the caller grows them and calls again).
    The table never changes size in here: a loop that may swap its table measured 2x
    slower per entry."""
    idx, j, p, k, nu = state[0], state[1], state[2], state[3], state[4]
    limit = min(keys.shape[0] // 2, uoff.shape[0])
    cap = keys.shape[0]
    safe = buf.shape[0] - 16
    done = False
    while idx < batches.shape[0]:
        b = batches[idx]
        if j == 0:
            p = int(strs_off[b])
        nb_ = int(nstr[b])
        while j < nb_ and nu < limit:
            c = int(buf[_ix(p)])
            if 0xA0 <= c <= 0xBF:  # fixstr, the usual case
                n, start = c & 0x1F, p + 1
            else:
                n, start, _st = _read_str(buf, p, buf.shape[0])
            key = _key(buf, start, n, safe)
            w0, w1, wt, h = key
            q = _ix(h & (cap - 1))
            while True:  # _probe, written out: a call here measured 2x slower per entry
                k0 = keys[q, 0]
                if k0 < 0:
                    break
                if keys[q, 1] == w0 and keys[q, 2] == w1 and keys[q, 3] == wt:  # noqa: SIM102
                    if (k0 & 0xFFFFFFFF) == n:  # noqa: SIM102
                        if n <= 24 or _equal(buf, aux[q, 0] + 16, start + 16, n - 24):
                            break
                q = _ix((q + 1) & (cap - 1))
            u = keys[q, 0] >> 32
            if u < 0:
                u = nu
                _put(keys, aux, q, u, start, n, key)
                uoff[_ix(nu)] = start
                ulen[_ix(nu)] = n
                nu += 1
            off[_ix(k)] = start
            ids[_ix(k)] = u
            p = start + n
            k += 1
            j += 1
        if j < nb_:
            break
        idx += 1
        j = 0
    else:
        done = True
    state[0], state[1], state[2], state[3], state[4] = idx, j, p, k, nu
    return done


@jit
def intern_entries(
    buf: np.ndarray, batches: np.ndarray, strs_off: np.ndarray, nstr: np.ndarray, total: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Walk the string tables of ``batches`` (envelopes already checked; ``total`` entries in
    all) and intern their entries as they come, in batch order then entry order: (offset of
    each entry's bytes, its string id, and per distinct string the offset and length of its
    first entry). Ids as :func:`intern_bytes` gives them. One pass: each entry is read once,
    keyed by two or three word loads (:func:`_key`), and found in a table that stays in L1
    while there are a few hundred distinct strings."""
    off = np.empty(total, np.int64)
    ids = np.empty(total, np.int64)
    uoff = np.empty(512, np.int64)
    ulen = np.empty(512, np.int64)
    keys, aux = _intern_table(1024)
    state = np.zeros(5, np.int64)
    while not _entries_run(buf, batches, strs_off, nstr, keys, aux, off, ids, uoff, ulen, state):
        nu = state[4]
        if 2 * nu >= keys.shape[0]:
            keys, aux = _regrow(keys, aux)
        if nu >= uoff.shape[0]:
            uoff = np.concatenate((uoff, np.empty(nu, np.int64)))
            ulen = np.concatenate((ulen, np.empty(nu, np.int64)))
    return off, ids, uoff[: state[4]], ulen[: state[4]]


@jit
def join_strings(
    buf: np.ndarray, off: np.ndarray, length: np.ndarray, sep: int
) -> tuple[np.ndarray, bool]:
    """``buf[off[k]:off[k]+length[k]]`` for every k, joined by the byte ``sep``; and whether
    any of them holds ``sep`` itself (then the joined bytes cannot be split back)."""
    total = 0
    for k in range(off.shape[0]):
        total += int(length[k]) + 1
    out = np.empty(max(total - 1, 0), np.uint8)
    q = 0
    clash = False
    for k in range(off.shape[0]):
        if k:
            out[q] = sep
            q += 1
        o = int(off[k])
        for j in range(int(length[k])):
            c = buf[o + j]
            clash |= c == sep
            out[q] = c
            q += 1
    return out, clash


@jit
def _sorted_entries(
    kept: np.ndarray,
    i: int,
    i1: int,
    k: int,
    meta: np.ndarray,
    e_first: np.ndarray,
    e_gid: np.ndarray,
    e_off: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` table entries of batches ``kept[i:i1]`` (one session) as (local index,
    string id, batch, offset), sorted by local index, stably (so in ``seq`` order within one)."""
    loc = np.empty(k, np.int64)
    gid = np.empty(k, np.int64)
    bat = np.empty(k, np.int64)
    off = np.empty(k, np.int64)
    q = 0
    for r in range(i, i1):
        b = kept[r]
        base = int(meta[b, M_STR_BASE])
        f = int(e_first[b])
        for j in range(int(meta[b, M_NSTR])):
            loc[q] = base + j
            gid[q] = e_gid[f + j]
            bat[q] = b
            off[q] = e_off[f + j]
            q += 1
    o = np.argsort(loc, kind="mergesort")
    return loc[o], gid[o], bat[o], off[o]


@jit
def session_tables(
    kept: np.ndarray,
    sess: np.ndarray,
    meta: np.ndarray,
    e_first: np.ndarray,
    e_gid: np.ndarray,
    e_off: np.ndarray,
    code_of: np.ndarray,
    cross: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The session string tables of the ``kept`` batches (sorted by session, then ``seq``),
    and the batches that define an entry differently from its definer.

    Entry ``j`` of batch ``b`` is table entry ``str_base + j`` of its session; its interned
    string is ``e_gid[e_first[b] + j]``, its bytes start at ``e_off[...]``. The lowest-``seq``
    batch that sends an entry defines it (counting every kept batch, even one rejected for
    another entry); a batch sending any entry differently is rejected: ``cross[b]`` gets
    (STRING_CONFLICT, lowest such entry, its offset) and ``removed[b]`` is set. The tables
    are then built from the batches left.

    The table of session position ``g`` is ``tstart[g] .. tstart[g] + tlen[g]`` in ``keys``
    (entry indices, ascending) and ``tab`` (their ``code_of`` values, -1 for a hole); see
    :func:`_resolve`. Usually a session's entries are one dense run from ``tlo[g]``, so
    entry ``e`` sits at position ``e - tlo[g]``. A session whose entries are spread out
    (``str_base`` is any 32-bit number: batches at 0 and at 2^31) keeps only the entries it
    has, sorted (``tlo[g]`` is then ``SPREAD``): memory stays proportional to the entries sent.

    Returns (removed per batch, session position per batch, tstart, tlen, tlo, keys, tab)."""
    nb_ = meta.shape[0]
    removed = np.zeros(nb_, np.bool_)
    gpos = np.full(nb_, -1, np.int64)
    m = kept.shape[0]
    ng = 0
    for i in range(m):
        b = kept[i]
        if i == 0 or sess[b] != sess[kept[i - 1]]:
            ng += 1
        gpos[b] = ng - 1
    glo = np.full(ng, np.iinfo(np.int64).max, np.int64)
    ghi = np.zeros(ng, np.int64)
    gcnt = np.zeros(ng, np.int64)
    for i in range(m):
        b = kept[i]
        n = int(meta[b, M_NSTR])
        if n > 0:
            g = gpos[b]
            glo[g] = min(glo[g], int(meta[b, M_STR_BASE]))
            ghi[g] = max(ghi[g], int(meta[b, M_STR_BASE]) + n)
            gcnt[g] += n
    dense = np.zeros(ng, np.bool_)
    width = 0
    for g in range(ng):
        dense[g] = gcnt[g] > 0 and ghi[g] - glo[g] <= 2 * gcnt[g] + 64
        if dense[g]:
            width = max(width, ghi[g] - glo[g])
    definer = np.full(width, -1, np.int64)
    tlen = np.zeros(ng, np.int64)
    tlo = np.zeros(ng, np.int64)
    i = 0
    while i < m:  # one session at a time: definers, conflicts, table size
        i1 = i + 1
        while i1 < m and sess[kept[i1]] == sess[kept[i]]:
            i1 += 1
        g = gpos[kept[i]]
        if dense[g]:
            lo = glo[g]
            for r in range(i, i1):
                b = kept[r]
                base = int(meta[b, M_STR_BASE]) - lo
                f = int(e_first[b])
                for j in range(int(meta[b, M_NSTR])):
                    gj = e_gid[_ix(f + j)]
                    d = definer[_ix(base + j)]
                    if d < 0:
                        definer[_ix(base + j)] = gj
                    elif d != gj and not removed[b]:
                        removed[b] = True
                        cross[b, 0] = C.STRING_CONFLICT
                        cross[b, 1] = base + j + lo
                        cross[b, 2] = e_off[f + j]
            definer[: ghi[g] - lo] = -1
            lo_r = np.iinfo(np.int64).max
            hi_r = 0
            for r in range(i, i1):
                b = kept[r]
                if not removed[b] and meta[b, M_NSTR] > 0:
                    lo_r = min(lo_r, int(meta[b, M_STR_BASE]))
                    hi_r = max(hi_r, int(meta[b, M_STR_BASE] + meta[b, M_NSTR]))
            if hi_r > 0:
                tlo[g] = lo_r
                tlen[g] = hi_r - lo_r
        elif gcnt[g] > 0:
            loc, gid, bat, off = _sorted_entries(kept, i, i1, gcnt[g], meta, e_first, e_gid, e_off)
            d = -1
            for q in range(loc.shape[0]):
                if q == 0 or loc[q] != loc[q - 1]:
                    d = gid[q]
                elif gid[q] != d and not removed[bat[q]]:
                    removed[bat[q]] = True
                    cross[bat[q], 0] = C.STRING_CONFLICT
                    cross[bat[q], 1] = loc[q]
                    cross[bat[q], 2] = off[q]
            last = -1
            for q in range(loc.shape[0]):
                if not removed[bat[q]] and loc[q] != last:
                    tlen[g] += 1
                    last = loc[q]
        i = i1
    tstart = np.empty(ng, np.int64)
    acc = 0
    for g in range(ng):
        tstart[g] = acc
        acc += tlen[g]
    tab = np.full(acc, -1, np.int64)
    keys = np.empty(acc, np.int64)
    i = 0
    while i < m:  # fill
        i1 = i + 1
        while i1 < m and sess[kept[i1]] == sess[kept[i]]:
            i1 += 1
        g = gpos[kept[i]]
        t0 = tstart[g]
        if dense[g]:
            for r in range(tlen[g]):
                keys[_ix(t0 + r)] = tlo[g] + r
            for r in range(i, i1):
                b = kept[r]
                if removed[b]:
                    continue
                base = t0 + int(meta[b, M_STR_BASE]) - tlo[g]
                f = int(e_first[b])
                for j in range(int(meta[b, M_NSTR])):
                    tab[_ix(base + j)] = code_of[_ix(e_gid[_ix(f + j)])]
        elif tlen[g] > 0:
            loc, gid, bat, off = _sorted_entries(kept, i, i1, gcnt[g], meta, e_first, e_gid, e_off)
            w = t0
            last = -1
            for q in range(loc.shape[0]):
                if not removed[bat[q]] and loc[q] != last:
                    keys[w] = loc[q]
                    tab[w] = code_of[gid[q]]
                    w += 1
                    last = loc[q]
        i = i1
    for g in range(ng):
        if not dense[g]:
            tlo[g] = SPREAD
    return removed, gpos, tstart, tlen, tlo, keys, tab


@jit
def same_bytes(
    buf: np.ndarray, off_a: np.ndarray, len_a: np.ndarray, off_b: np.ndarray, len_b: np.ndarray
) -> np.ndarray:
    """Elementwise: do buf[off_a:off_a+len_a] and buf[off_b:off_b+len_b] hold the same bytes?"""
    out = np.empty(off_a.shape[0], dtype=np.bool_)
    for k in range(off_a.shape[0]):
        la = len_a[k]
        if la != len_b[k]:
            out[k] = False
            continue
        a0 = off_a[k]
        b0 = off_b[k]
        eq = True
        for j in range(la):
            if buf[a0 + j] != buf[b0 + j]:
                eq = False
                break
        out[k] = eq
    return out


@jit
def _varint(buf: np.ndarray, p: int, e: int) -> tuple[int, int, bool]:
    if p + 1 < e:  # the common one- and two-byte cases, kept branch-light
        c = int(buf[_ix(p)])
        if c < 0x80:
            return c, p + 1, True
        c1 = int(buf[_ix(p + 1)])
        if c1 < 0x80:
            return (c & 0x7F) | (c1 << 7), p + 2, True
    v = 0
    shift = 0
    for j in range(5):
        if p >= e:
            return 0, p, False
        c = int(buf[_ix(p)])
        p += 1
        if j == 4 and c > 0x0F:
            return 0, p, False
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, p, True
        shift += 7
    return 0, p, False


@jit
def _wrap32(v: int) -> int:
    """``v`` modulo 2^32 as a signed 32-bit integer."""
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


@jit
def _unzig(v: int) -> int:
    return (v >> 1) ^ -(v & 1)


@jit
def _search(keys: np.ndarray, tab: np.ndarray, t0: int, tl: int, e: int) -> int:
    """Entry ``e`` of a spread-out session table (sorted ``keys``): its code, or -1."""
    lo = t0
    hi = t0 + tl
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < e:
            lo = mid + 1
        else:
            hi = mid
    return int(tab[lo]) if lo < t0 + tl and keys[lo] == e else -1


@jit_inline
def _resolve(
    v: int,
    local_n: int,
    tab: np.ndarray,
    keys: np.ndarray | None,
    t0: int,
    tl: int,
    tlo: int,
    dtab: np.ndarray | None,
    d0: int,
    dn: int,
) -> tuple[int, int]:
    """A 1-based string reference to a global string id: (id or -1 for null, error code).
    v3: references ``1..dn`` are the batch's dictionary ``dtab[d0:d0+dn]`` (global string
    ids; ``dtab`` is None when no batch names one: numba then compiles this away), the
    session's table follows. The session's table is ``tab[t0:t0+tl]`` (see
    :func:`session_tables`): entries from ``tlo`` on, or, when ``tlo`` is ``SPREAD``, the
    sorted entries ``keys[t0:t0+tl]``."""
    if v == 0:
        return -1, 0
    if dtab is not None:  # noqa: SIM102 - numba prunes a plain `is not None` test
        if dn:
            if v <= dn:
                return int(dtab[_ix(d0 + v - 1)]), 0
            v -= dn
    e = v - 1  # the entry
    if e >= local_n:
        return -1, C.REF_RANGE
    r = e - tlo  # a spread-out table's tlo is SPREAD: r < 0, never a hit here
    g = int(tab[_ix(t0 + r)]) if 0 <= r < tl else -1
    if g < 0:
        # ``keys`` is None when no table is spread out: numba then compiles this away (the
        # search inside the event loop, even never taken, measured 20% slower)
        if keys is not None:  # noqa: SIM102 - numba prunes a plain `is not None` test
            if tlo == SPREAD:
                g = _search(keys, tab, t0, tl, e)
        if g < 0:
            return -1, C.UNDEFINED_REF
    return g, 0


@jit
def decode_events(
    buf: np.ndarray,
    starts: np.ndarray,
    meta: np.ndarray,
    order: np.ndarray,
    out_start: np.ndarray,
    tab_start: np.ndarray,
    tab_len: np.ndarray,
    tab_lo: np.ndarray,
    tab_keys: np.ndarray | None,
    tab: np.ndarray,
    dtab: np.ndarray | None,
    dict_start: np.ndarray,
    dict_len: np.ndarray,
    layout: np.ndarray,
    b_sess: np.ndarray,
    b_vis: np.ndarray,
    sess_out: np.ndarray,
    vis_out: np.ndarray,
    seq_out: np.ndarray,
    t_out: np.ndarray,
    i_out: np.ndarray,
    kind_out: np.ndarray,
    x_out: np.ndarray,
    y_out: np.ndarray,
    a_out: np.ndarray,
    b_out: np.ndarray,
    tg_out: np.ndarray,
    tx_out: np.ndarray,
    errs: np.ndarray,
) -> None:
    """Decode the event sections of ``order`` (batch indices, canonical order) into the output
    columns at ``out_start``. String references resolve through the session table
    ``tab[tab_start[j]:tab_start[j]+tab_len[j]]`` (Categorical codes, -1 for a hole; entries
    from ``tab_lo[j]``, or sorted in ``tab_keys`` when that is ``SPREAD``; ``tab_keys`` is
    None when no table is: see :func:`session_tables`) of the batch's session position j;
    v3: references ``1..dict_len[j]`` first name its dictionary,
    ``dtab[dict_start[j]:dict_start[j]+dict_len[j]]`` (``dtab`` None when no batch has one).
    ``b_sess[j]``/``b_vis[j]`` are the batch's id codes; a null target or text is written as
    ``NULL_CODE``. ``errs[j] = (code, detail, offset)``; code 0 when good."""
    nlayout = layout.shape[0]
    prev = np.zeros(nlayout * 4, np.int64)  # v2: last value of each (kind, integer slot)
    for j in range(order.shape[0]):
        b = order[j]
        s = int(starts[b])
        n = int(meta[b, M_N])
        v2 = meta[b, M_VERSION] >= 2  # v3 codes events as v2
        ko = int(meta[b, M_KINDS_OFF])
        ke = ko + int(meta[b, M_KINDS_LEN])
        pt = int(meta[b, M_TIMES_OFF])
        et = pt + int(meta[b, M_TIMES_LEN])
        pi = int(meta[b, M_INTS_OFF])
        ei = pi + int(meta[b, M_INTS_LEN])
        pr = int(meta[b, M_REFS_OFF])
        er = pr + int(meta[b, M_REFS_LEN])
        local_n = int(meta[b, M_STR_BASE] + meta[b, M_NSTR])
        t0 = int(tab_start[j])
        tl = int(tab_len[j])
        tlo = int(tab_lo[j])
        d0 = int(dict_start[j])
        dn = int(dict_len[j])
        t = int(meta[b, M_BASE_TS])
        prev[:4] = 0
        if v2:
            prev[:] = 0
        run = 0
        kd = 0
        o = int(out_start[j])
        sq = meta[b, M_SEQ]
        sc = b_sess[j]
        vc = b_vis[j]
        code = 0
        detail = 0
        off = 0
        # v2 and v3 have a loop of their own, without v1's branches (its integer slots are
        # wrapped to 32 bits, so they need no range check either). The two loops repeat the
        # string references and the stores on purpose: moved into a helper they measured
        # 199 (inlined by numba) and 270 (a call) instructions per event instead of 165.
        m = 0
        row = 0
        for k in range(n if v2 else 0):
            if run == 0:  # next run: kind in the low 5 bits, length - 1 in the high 3
                if ko >= ke:
                    code, detail, off = C.KIND_RUNS, 9, ko - s
                    break
                c = int(buf[_ix(ko)])
                kd = c & 31
                run = (c >> 5) + 1
                ko += 1
                m = int(layout[_ix(kd)]) if kd < nlayout else -1
                if m < 0:
                    code, detail, off = C.UNKNOWN_KIND, k, ko - 1 - s
                    break
                row = kd * 4
            run -= 1
            v, pt, ok = _varint(buf, pt, et)
            if not ok:
                code, detail, off = C.BAD_VARINT, 10, pt - s
                break
            if v > 0:
                t += v - 1
            else:  # a step back in time: its size follows
                v, pt, ok = _varint(buf, pt, et)
                if not ok:
                    code, detail, off = C.BAD_VARINT, 10, pt - s
                    break
                t -= v
            if t < 0 or t > _T_MAX:
                code, detail, off = C.TIME_RANGE, k, pt - s
                break
            # Integer slots: all four change from the previous event of the same kind (row
            # kd of prev), modulo 2^32.
            x = 0
            y = 0
            a = 0
            bb = 0
            if m & 15:
                if m & 1:
                    v, pi, ok = _varint(buf, pi, ei)
                    if not ok:
                        code, detail, off = C.BAD_VARINT, 11, pi - s
                        break
                    x = _wrap32(_unzig(v) + prev[_ix(row)])
                    prev[_ix(row)] = x
                if m & 2:
                    v, pi, ok = _varint(buf, pi, ei)
                    if not ok:
                        code, detail, off = C.BAD_VARINT, 11, pi - s
                        break
                    y = _wrap32(_unzig(v) + prev[_ix(row + 1)])
                    prev[_ix(row + 1)] = y
                if m & 4:
                    v, pi, ok = _varint(buf, pi, ei)
                    if not ok:
                        code, detail, off = C.BAD_VARINT, 11, pi - s
                        break
                    a = _wrap32(_unzig(v) + prev[_ix(row + 2)])
                    prev[_ix(row + 2)] = a
                if m & 8:
                    v, pi, ok = _varint(buf, pi, ei)
                    if not ok:
                        code, detail, off = C.BAD_VARINT, 11, pi - s
                        break
                    bb = _wrap32(_unzig(v) + prev[_ix(row + 3)])
                    prev[_ix(row + 3)] = bb
            tg = -1
            tx = -1
            if m & 16:
                v, pr, ok = _varint(buf, pr, er)
                if not ok:
                    code, detail, off = C.BAD_VARINT, 12, pr - s
                    break
                tg, c2 = _resolve(v, local_n, tab, tab_keys, t0, tl, tlo, dtab, d0, dn)
                if c2:
                    code, detail, off = c2, k, pr - s
                    break
            if m & 32:
                v, pr, ok = _varint(buf, pr, er)
                if not ok:
                    code, detail, off = C.BAD_VARINT, 12, pr - s
                    break
                tx, c2 = _resolve(v, local_n, tab, tab_keys, t0, tl, tlo, dtab, d0, dn)
                if c2:
                    code, detail, off = c2, k, pr - s
                    break
            q = _ix(o + k)
            t_out[q] = t
            i_out[q] = k
            kind_out[q] = kd
            x_out[q] = x
            y_out[q] = y
            a_out[q] = a
            b_out[q] = bb
            tg_out[q] = tg if tg >= 0 else NULL_CODE
            tx_out[q] = tx if tx >= 0 else NULL_CODE
        for k in range(0 if v2 else n):  # v1: a kind byte per event, zigzag time deltas
            kd = int(buf[_ix(ko + k)])
            m = int(layout[_ix(kd)]) if kd < nlayout else -1
            if m < 0:
                code, detail, off = C.UNKNOWN_KIND, k, ko + k - s
                break
            v, pt, ok = _varint(buf, pt, et)
            if not ok:
                code, detail, off = C.BAD_VARINT, 10, pt - s
                break
            t += _unzig(v)
            if t < 0 or t > _T_MAX:
                code, detail, off = C.TIME_RANGE, k, pt - s
                break
            # Integer slots: x and y change from the previous x, y of the batch (row 0 of
            # prev), a and b are sent as they are.
            x = 0
            y = 0
            a = 0
            bb = 0
            if m & 15:
                if m & 1:
                    v, pi, ok = _varint(buf, pi, ei)
                    if not ok:
                        code, detail, off = C.BAD_VARINT, 11, pi - s
                        break
                    x = _unzig(v) + prev[0]
                    prev[0] = x
                if m & 2:
                    v, pi, ok = _varint(buf, pi, ei)
                    if not ok:
                        code, detail, off = C.BAD_VARINT, 11, pi - s
                        break
                    y = _unzig(v) + prev[1]
                    prev[1] = y
                if m & 4:
                    v, pi, ok = _varint(buf, pi, ei)
                    if not ok:
                        code, detail, off = C.BAD_VARINT, 11, pi - s
                        break
                    a = _unzig(v)
                if m & 8:
                    v, pi, ok = _varint(buf, pi, ei)
                    if not ok:
                        code, detail, off = C.BAD_VARINT, 11, pi - s
                        break
                    bb = _unzig(v)
                if x < _I32_MIN or x > _I32_MAX or y < _I32_MIN or y > _I32_MAX:
                    code, detail, off = C.COORD_RANGE, k, pi - s
                    break
            tg = -1
            tx = -1
            if m & 16:
                v, pr, ok = _varint(buf, pr, er)
                if not ok:
                    code, detail, off = C.BAD_VARINT, 12, pr - s
                    break
                tg, c2 = _resolve(v, local_n, tab, tab_keys, t0, tl, tlo, dtab, d0, dn)
                if c2:
                    code, detail, off = c2, k, pr - s
                    break
            if m & 32:
                v, pr, ok = _varint(buf, pr, er)
                if not ok:
                    code, detail, off = C.BAD_VARINT, 12, pr - s
                    break
                tx, c2 = _resolve(v, local_n, tab, tab_keys, t0, tl, tlo, dtab, d0, dn)
                if c2:
                    code, detail, off = c2, k, pr - s
                    break
            q = _ix(o + k)
            t_out[q] = t
            i_out[q] = k
            kind_out[q] = kd
            x_out[q] = x
            y_out[q] = y
            a_out[q] = a
            b_out[q] = bb
            tg_out[q] = tg if tg >= 0 else NULL_CODE
            tx_out[q] = tx if tx >= 0 else NULL_CODE
        sess_out[o : o + n] = sc
        vis_out[o : o + n] = vc
        seq_out[o : o + n] = sq
        if code == 0:
            if v2 and (run != 0 or ko != ke):
                code, detail, off = C.KIND_RUNS, 9, ko - s
            elif pt != et:
                code, detail, off = C.LEFTOVER, 10, pt - s
            elif pi != ei:
                code, detail, off = C.LEFTOVER, 11, pi - s
            elif pr != er:
                code, detail, off = C.LEFTOVER, 12, pr - s
        errs[j, 0] = code
        errs[j, 1] = detail
        errs[j, 2] = off


@jit
def _put_varint(out: np.ndarray, p: int, v: int) -> int:
    while v >= 0x80:
        out[p] = (v & 0x7F) | 0x80
        v >>= 7
        p += 1
    out[p] = v
    return p + 1


@jit
def _zig(v: int) -> int:
    return ((v << 1) ^ (v >> 63)) & 0xFFFFFFFF


@jit
def encode_sections(
    bounds: np.ndarray,
    kind: np.ndarray,
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    rt: np.ndarray,
    rx: np.ndarray,
    layout: np.ndarray,
    out: np.ndarray,
    sect: np.ndarray,
    v2: bool,
) -> int:
    """Write kinds, times, ints and refs of each batch (rows ``bounds[j]..bounds[j+1]``) into
    ``out``; ``sect[j] = (kinds, times, ints, refs, end)`` offsets. ``rt``/``rx`` are 1-based
    session string table references (0 null). Returns bytes written, or -1 - row of an event
    whose time step (or, in v1, x or y change) does not fit 32 bits.

    v1: a kind byte per event, zigzag time steps, x and y as changes from the previous x, y of
    the batch, a and b as they are. v2: kinds as runs (kind | (length - 1) << 5, at most 8 per
    byte), time steps as ``step + 1`` (``0`` then the size of a step back), every integer slot
    as the zigzag change (modulo 2^32) from the same slot of the previous event of the same
    kind."""
    p = 0
    prev = np.zeros(layout.shape[0] * 4, np.int64)
    for j in range(bounds.shape[0] - 1):
        lo = bounds[j]
        hi = bounds[j + 1]
        sect[j, 0] = p
        r = lo
        while r < hi:
            e = r + 1
            while v2 and e < hi and e - r < 8 and kind[e] == kind[r]:
                e += 1
            out[p] = kind[r] | ((e - r - 1) << 5)
            p += 1
            r = e
        sect[j, 1] = p
        last = t[lo]
        for r in range(lo, hi):
            d = t[r] - last
            if d < _I32_MIN or d > _I32_MAX:
                return -1 - r
            if not v2:
                p = _put_varint(out, p, _zig(d))
            elif d >= 0:
                p = _put_varint(out, p, d + 1)
            else:
                out[p] = 0
                p = _put_varint(out, p + 1, -d)
            last = t[r]
        sect[j, 2] = p
        prev[:] = 0
        for r in range(lo, hi):
            k = int(kind[r])
            m = layout[k]
            row = k * 4 if v2 else 0
            for slot in range(4):
                if m & (1 << slot):
                    if slot == 0:
                        v = int(x[r])
                    elif slot == 1:
                        v = int(y[r])
                    elif slot == 2:
                        v = int(a[r])
                    else:
                        v = int(b[r])
                    if v2:
                        d = _wrap32(v - prev[row + slot])
                    elif slot < 2:  # v1: x and y change from the batch's previous x, y
                        d = v - prev[slot]
                        if d < _I32_MIN or d > _I32_MAX:
                            return -1 - r
                    else:
                        d = v
                    p = _put_varint(out, p, _zig(d))
                    prev[row + slot] = v
        sect[j, 3] = p
        for r in range(lo, hi):
            m = layout[kind[r]]
            if m & 16:
                p = _put_varint(out, p, int(rt[r]))
            if m & 32:
                p = _put_varint(out, p, int(rx[r]))
        sect[j, 4] = p
    return p
