"""Decode wire batches into one event table.

The fast path parses every batch with numba kernels over one flat buffer; Python only ever
touches *unique* strings (ids, URLs, selectors), never events, so decoding runs at memory
speed. ``engine="python"`` runs the pure-Python reference (reference.py), which gives the same
table and the same quarantine, and is what the kernels are tested against.

Rules both engines follow (see docs/wire-format.md):

* a batch that arrives twice (same ``session_id`` and ``seq``, same bytes) is kept once;
  the same key with other bytes is a conflict and the later one (in input order) is rejected;
* every batch of a session must carry the visitor id of its lowest-``seq`` batch;
* string table entries are defined by the lowest-``seq`` batch that sends them; a batch that
  defines one differently is rejected;
* the table comes out in canonical order, by ``session_id`` string then ``batch`` and ``i``,
  whatever order the batches arrived in.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from cemreplay.errors import ConfigError, DecodeError, WireVersionError
from cemreplay.schema import EVENT_SCHEMA, LAYOUT, SUPPORTED_WIRE_VERSIONS
from cemreplay.wire import _codes as C
from cemreplay.wire import _kernels as K
from cemreplay.wire.dictionary import Dictionary, index_dictionaries

__all__ = ["DecodeReport", "PackedBatches", "Quarantined", "decode", "decode_report"]

BatchLike = bytes | bytearray | memoryview
Engine = Literal["numba", "python"]

_LAYOUT = np.array(LAYOUT, dtype=np.int8)


@dataclass(frozen=True)
class PackedBatches:
    """Batches stored in one buffer: batch ``k`` is ``data[offsets[k]:offsets[k + 1]]``
    (back to back), or, given ``lengths``, ``data[offsets[k]:offsets[k] + lengths[k]]``
    (each where it lies, in any order: some of the batches of a larger buffer). What a
    reader that already holds the bytes in one place (a file, a store page, the pipeline's
    copy of its input) can hand to :func:`decode` without making one ``bytes`` object per
    batch; the numba engine decodes it in place, without a copy.

    Attributes
    ----------
    data:
        The bytes of every batch (any buffer of bytes: ``bytes``, ``bytearray``,
        ``memoryview``, a ``uint8`` numpy array, a memory map).
    offsets:
        ``n + 1`` non-decreasing byte offsets into ``data``; or, with ``lengths``, the ``n``
        batches' starts.
    lengths:
        ``None`` (the batches lie back to back), or the ``n`` batches' lengths in bytes.

    Examples
    --------
    >>> from cemreplay import synth, wire
    >>> batches = wire.encode(synth.generate(sessions=2, seed=1).events)
    >>> offsets = [0]
    >>> for b in batches:
    ...     offsets.append(offsets[-1] + len(b))
    >>> packed = wire.PackedBatches(b"".join(batches), offsets)
    >>> wire.decode(packed).equals(wire.decode(batches))
    True
    >>> starts, lengths = offsets[-2::-1], [len(b) for b in batches[::-1]]  # the last first
    >>> last_first = wire.PackedBatches(packed.data, starts, lengths)
    >>> len(last_first) == len(batches) and wire.decode(last_first).equals(wire.decode(batches))
    True
    """

    data: BatchLike | np.ndarray
    offsets: Sequence[int] | np.ndarray
    lengths: Sequence[int] | np.ndarray | None = None

    def __len__(self) -> int:
        """How many batches (``arrays()`` checks that the offsets say so correctly)."""
        return max(0, len(self.offsets) - (1 if self.lengths is None else 0))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(the bytes as a ``uint8`` array, starts, lengths); checked."""
        buf = np.frombuffer(self.data, dtype=np.uint8)
        off = np.asarray(self.offsets)
        if self.lengths is not None:
            return buf, *_spans(len(buf), off, np.asarray(self.lengths))
        if off.ndim != 1 or len(off) == 0 or not np.issubdtype(off.dtype, np.integer):
            raise ConfigError(
                "PackedBatches.offsets must be n + 1 integer offsets (one more than batches), "
                f"got an array of shape {off.shape} and dtype {off.dtype}"
            )
        off = off.astype(np.int64, copy=False)
        lens = np.diff(off)
        bad = np.flatnonzero(lens < 0)
        if off[0] < 0 or off[-1] > len(buf) or len(bad):
            where = (
                f"offsets[{bad[0]}] > offsets[{bad[0] + 1}]"
                if len(bad)
                else (f"offsets run from {off[0]} to {off[-1]}")
            )
            raise ConfigError(
                f"PackedBatches.offsets must rise within the {len(buf)} bytes of data: {where}"
            )
        return buf, off[:-1], lens

    def batches(self) -> list[bytes]:
        """Each batch as ``bytes``."""
        buf, starts, lens = self.arrays()
        return [
            buf[s : s + n].tobytes() for s, n in zip(starts.tolist(), lens.tolist(), strict=True)
        ]


def _spans(size: int, starts: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``PackedBatches`` starts and lengths, checked to be ``n`` integers each that place
    every batch within the ``size`` bytes of data."""
    for name, a in (("offsets", starts), ("lengths", lens)):
        if a.ndim != 1 or (len(a) and not np.issubdtype(a.dtype, np.integer)):
            raise ConfigError(
                f"PackedBatches.{name} must be n integers when lengths are given, got an "
                f"array of shape {a.shape} and dtype {a.dtype}"
            )
    if len(starts) != len(lens):
        raise ConfigError(
            f"PackedBatches.offsets and lengths must be as many (a start and a length per "
            f"batch), got {len(starts)} and {len(lens)}"
        )
    starts = starts.astype(np.int64, copy=False)
    lens = lens.astype(np.int64, copy=False)
    bad = np.flatnonzero((starts < 0) | (lens < 0) | (starts > size - lens))
    if len(bad):
        k = int(bad[0])
        raise ConfigError(
            f"PackedBatches: batch {k} (offset {starts[k]}, length {lens[k]}) does not lie "
            f"within the {size} bytes of data"
        )
    return starts, lens


@dataclass(frozen=True)
class Quarantined:
    """A batch set aside: where it was in the input, which session (if readable) and why."""

    index: int
    session_id: str | None
    code: int
    detail: int
    offset: int | None
    #: the batch's site, for a fault about its dictionary (``code`` UNKNOWN_DICTIONARY)
    site_key: str | None = None

    @property
    def reason(self) -> str:
        return C.message(self.code, self.detail, self.site_key)

    def error(self) -> DecodeError:
        if self.code == C.VERSION:
            return WireVersionError(self.detail, SUPPORTED_WIRE_VERSIONS, batch=self.index)
        hint = (
            "pass it in dictionaries= (SQLiteStore.dictionaries(), Dictionary.from_json()), "
            "or use cemreplay.wire.decode_report() to set such batches aside"
            if self.code == C.UNKNOWN_DICTIONARY
            else None
        )
        return DecodeError(self.reason, batch=self.index, offset=self.offset, hint=hint)


@dataclass(frozen=True)
class DecodeReport:
    """What a lenient decode gives: the events of every good batch, and the rest set aside.

    Attributes
    ----------
    events:
        The event table (``cemreplay.schema.EVENT_SCHEMA``) of the accepted batches.
    batches:
        One row per accepted batch: its input ``index``, ids, ``seq``, ``base_ts``, ``n``.
    quarantined:
        The rejected batches, by input index, each with its reason.
    duplicates:
        How many batches were exact repeats of an accepted one (kept once, not an error).
    """

    events: pl.DataFrame
    batches: pl.DataFrame
    quarantined: list[Quarantined]
    duplicates: int


BATCHES_SCHEMA = pl.Schema(
    {
        "index": pl.Int64(),
        "session_id": pl.Categorical(),
        "visitor_id": pl.Categorical(),
        "site_key": pl.Categorical(),
        "seq": pl.Int64(),
        "base_ts": pl.Int64(),
        "n": pl.Int64(),
    }
)


def decode(
    batches: Iterable[BatchLike] | PackedBatches,
    *,
    errors: Literal["raise", "quarantine"] = "raise",
    engine: Engine = "numba",
    threads: int = 1,
    dictionaries: Iterable[Dictionary] = (),
) -> pl.DataFrame:
    """Decode wire batches (any order, repeats allowed) into one event table.

    Parameters
    ----------
    batches:
        Encoded batches, as the snippet sent them (gzip already undone); or the same stored
        back to back in one buffer (:class:`PackedBatches`).
    errors:
        ``"raise"`` (default): raise :class:`~cemreplay.errors.DecodeError` for the first bad
        batch, naming its position and byte offset. ``"quarantine"``: skip bad batches with a
        warning; use :func:`decode_report` to get them and their reasons.
    engine:
        ``"numba"`` (default) or ``"python"`` (the slow reference).
    threads:
        Threads the numba engine decodes on (default 1): the batches are split by session
        and each part decoded in its own thread (:mod:`cemreplay.wire.parallel`); the table
        and the quarantine are the same whatever the number.
    dictionaries:
        The site dictionaries version-3 batches may name (:class:`Dictionary`; any number,
        of any sites). A batch naming a dictionary not given here is malformed for this
        decode: a :class:`~cemreplay.errors.DecodeError` naming it (or, with
        ``errors="quarantine"`` and in :func:`decode_report`, set aside).

    Examples
    --------
    >>> from cemreplay import synth, wire
    >>> events = wire.decode(wire.encode(synth.generate(sessions=3, seed=1).events))
    >>> events.columns[:4]
    ['session_id', 'visitor_id', 't', 'batch']
    """
    if errors not in ("raise", "quarantine"):
        raise ConfigError(f"errors must be 'raise' or 'quarantine', got {errors!r}")
    report = decode_report(batches, engine=engine, threads=threads, dictionaries=dictionaries)
    if report.quarantined:
        if errors == "raise":
            raise report.quarantined[0].error()
        first = report.quarantined[0]
        warnings.warn(
            f"{len(report.quarantined)} batch(es) quarantined; first: batch {first.index}: "
            f"{first.reason}. Use cemreplay.wire.decode_report() to keep them.",
            stacklevel=2,
        )
    return report.events


def decode_report(
    batches: Iterable[BatchLike] | PackedBatches,
    *,
    engine: Engine = "numba",
    threads: int = 1,
    dictionaries: Iterable[Dictionary] = (),
) -> DecodeReport:
    """Decode what can be decoded and set the rest aside with reasons (nothing is lost).

    See :class:`DecodeReport`. Same arguments as :func:`decode`.
    """
    if engine not in ("numba", "python"):
        raise ConfigError(f"engine must be 'numba' or 'python', got {engine!r}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads must be an int >= 1, got {threads!r}")
    dicts = index_dictionaries(dictionaries)
    if isinstance(batches, PackedBatches):
        if engine == "numba" and threads == 1:
            return _decode_flat(*batches.arrays(), dicts)
        batches = batches.batches()
    items = batches if isinstance(batches, list) else list(batches)
    if engine == "python":
        from cemreplay.wire.reference import decode_reference

        return decode_reference(items, dicts)
    if threads > 1:
        from cemreplay.wire.parallel import decode_threads

        return decode_threads(items, threads, dicts)
    return _decode_numba(items, dicts)


# --------------------------------------------------------------------------------------------
# The numba path


class _Interner:
    """The unique byte strings of the buffer (exact), decoded and registered once each."""

    def __init__(self, buf: np.ndarray, ids: np.ndarray, uoff: np.ndarray, ulen: np.ndarray):
        #: the string id of each item, and where each distinct string's first item is
        self.ids = ids
        #: the distinct strings, by id (null where the bytes are not UTF-8)
        self.values, bad = _decode_all(buf, uoff, ulen)
        self.invalid = bad[ids]
        # Registering the strings as Categorical fixes their codes; keep the Series alive so
        # the codes stay valid until the table holds them.
        self.keep = self.values.fill_null("").cast(pl.Categorical)
        self.phys = self.keep.to_physical().to_numpy().astype(np.uint32, copy=False)


def _decode_all(
    buf: np.ndarray, off: np.ndarray, length: np.ndarray
) -> tuple[pl.Series, np.ndarray]:
    """The strings ``buf[off[k]:off[k]+length[k]]`` as a String Series (null where not UTF-8)
    and which are not. One UTF-8 check and one split in polars for all of them, unless one
    holds a NUL byte or one is not UTF-8; then string by string."""
    bad = np.zeros(len(off), dtype=np.bool_)
    if len(off) == 0:
        return pl.Series(values=[], dtype=pl.String), bad
    joined, clash = K.join_strings(buf, off, length, 0)
    if not clash:
        try:
            text = joined.tobytes().decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return pl.Series([text]).str.split("\x00").explode(), bad
    out: list[str | None] = []
    for k, (o, n) in enumerate(zip(off.tolist(), length.tolist(), strict=True)):
        try:
            out.append(bytes(buf[o : o + n]).decode("utf-8"))
        except UnicodeDecodeError:
            out.append(None)
            bad[k] = True
    return pl.Series(values=out, dtype=pl.String), bad


def _categorical(codes: np.ndarray) -> pl.Series:
    """A Categorical Series from physical codes (registered by an _Interner still alive);
    :data:`K.NULL_CODE` is null.

    ``strict=False``: the codes are valid by construction (they come from a registered
    Series), and the strict check is a pass over every code; without it polars reads a code
    it does not know, ``NULL_CODE``, as null (the decoder writes nulls so, rather than in a
    mask of their own that would take a pass to apply)."""
    return pl.Series(codes).cat.to(pl.Categorical, strict=False)


def _flatten(items: Sequence[BatchLike]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The batches back to back in one numpy buffer (with :data:`K.PAD` zero bytes after):
    (buffer, starts, lengths). A numpy buffer, not ``b"".join``: numpy asks the kernel for
    huge pages for large arrays, so the first touch of 100 MB costs a few hundred page
    faults, not 25,000."""
    lens = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
    ends = np.cumsum(lens)
    total = int(ends[-1]) if len(items) else 0
    buf = np.empty(total + K.PAD, np.uint8)
    view = buf.data
    p = 0
    for item, end in zip(items, ends.tolist(), strict=True):
        view[p:end] = item
        p = end
    buf[total:] = 0
    return buf, ends - lens, lens


#: Dictionaries by (site_key, id), as :func:`~cemreplay.wire.dictionary.index_dictionaries`
#: gives them
Dictionaries = Mapping[tuple[str, int], Dictionary]


def _decode_numba(items: list[BatchLike], dicts: Dictionaries) -> DecodeReport:
    return _decode_flat(*_flatten(items), dicts)


class _DictionaryTables:
    """The dictionaries v3 batches name, their strings registered once (global string codes)
    in one array: batch ``b``'s dictionary is ``codes[start[b]:start[b] + length[b]]`` (length
    0: none). Named dictionaries that were not given are faults (``missing``)."""

    def __init__(
        self, dicts: Dictionaries, site_names: pl.Series, site: np.ndarray, dict_id: np.ndarray
    ):
        nb_ = len(site)
        self.start = np.zeros(nb_, np.int64)
        self.length = np.zeros(nb_, np.int64)
        self.missing = np.zeros(nb_, np.bool_)
        named = np.flatnonzero(dict_id > 0)
        pairs, which = np.unique(
            np.stack([site[named], dict_id[named]], axis=1), axis=0, return_inverse=True
        )
        found = [dicts.get((site_names[int(s)], int(d))) for s, d in pairs.tolist()]
        strings = [d.strings if d is not None else () for d in found]
        #: the registered strings: kept alive so the codes stay valid until the table holds them
        self.keep = pl.Series([s for group in strings for s in group], dtype=pl.String).cast(
            pl.Categorical
        )
        self.codes = self.keep.to_physical().to_numpy().astype(np.int64)
        sizes = np.array([len(g) for g in strings], np.int64)
        which = which.reshape(-1)
        self.start[named] = (np.cumsum(sizes) - sizes)[which]
        self.length[named] = sizes[which]
        self.missing[named] = np.array([d is None for d in found], np.bool_)[which]


#: The decoder's output columns before they become the event table (``session_id``,
#: ``visitor_id``, ``target``, ``text``: physical Categorical codes, ``NULL_CODE`` for a
#: null), and their dtypes.
COLUMNS: tuple[tuple[str, type[np.generic]], ...] = (
    ("session_id", np.uint32),
    ("visitor_id", np.uint32),
    ("batch", np.uint32),
    ("t", np.int64),
    ("i", np.uint16),
    ("kind", np.uint8),
    ("x", np.int32),
    ("y", np.int32),
    ("a", np.int32),
    ("b", np.int32),
    ("target", np.uint32),
    ("text", np.uint32),
)

Columns = dict[str, np.ndarray]


def new_columns(total: int) -> Columns:
    """Empty output columns for ``total`` events."""
    return {name: np.empty(total, dt) for name, dt in COLUMNS}


@dataclass
class Decoded:
    """A decode before its event table is built: the output columns (``cols``), and what
    holds the strings their codes name registered (``keep``: until the table is built)."""

    cols: Columns
    batches: pl.DataFrame
    quarantined: list[Quarantined]
    duplicates: int
    keep: tuple[object, ...]


def events_table(cols: Columns) -> pl.DataFrame:
    """The event table of decoded columns (their string codes still registered)."""
    return pl.DataFrame(
        {
            "session_id": _categorical(cols["session_id"]),
            "visitor_id": _categorical(cols["visitor_id"]),
            **{c: cols[c] for c in ("t", "batch", "i", "kind", "x", "y", "a", "b")},
            "target": _categorical(cols["target"]),
            "text": _categorical(cols["text"]),
        },
        schema=EVENT_SCHEMA,
    )


def _decode_flat(
    buf: np.ndarray, starts: np.ndarray, lens: np.ndarray, dicts: Dictionaries
) -> DecodeReport:
    """Decode the batches ``buf[starts[k]:starts[k]+lens[k]]`` (numba kernels); v3 batches
    resolve against ``dicts``."""
    d = decode_columns(buf, starts, lens, dicts)
    return DecodeReport(events_table(d.cols), d.batches, d.quarantined, d.duplicates)


def decode_columns(
    buf: np.ndarray,
    starts: np.ndarray,
    lens: np.ndarray,
    dicts: Dictionaries,
    alloc: Callable[[int], Columns] = new_columns,
) -> Decoded:
    """:func:`_decode_flat` up to the event table. The columns of the first attempt come
    from ``alloc(events)`` (several threads may write into one set of columns: see
    ``cemreplay.wire.parallel``); when batches fail there and the rest is decoded again,
    from :func:`new_columns`."""
    nb_ = len(starts)
    ends = starts + lens
    meta = np.zeros((nb_, K.N_META), dtype=np.int64)
    if nb_:
        K.parse_envelopes(buf, starts, ends, meta)
    err = meta[:, K.M_ERR].copy()
    det = meta[:, K.M_DETAIL].copy()
    eoff = meta[:, K.M_ERR_OFF].copy()

    okb = np.flatnonzero(err == 0)
    # ---- ids: site, visitor, session of envelope-good batches
    id_off = meta[okb, K.M_SITE_OFF : K.M_SESS_LEN + 1 : 2]  # rows picked, 3 columns copied
    id_len = meta[okb, K.M_SITE_LEN : K.M_SESS_LEN + 1 : 2]
    id_ids, id_first, id_count = K.intern_ids(buf, id_off, id_len)
    ids = []
    for w in range(3):
        first = id_first[: id_count[w], w]
        ids.append(_Interner(buf, id_ids[:, w], id_off[first, w], id_len[first, w]))
    # ---- string table entries of envelope-good batches
    counts = meta[okb, K.M_NSTR]
    total = int(counts.sum())
    s_off, s_ids, u_off, u_len = K.intern_entries(
        buf, okb, meta[:, K.M_STRS_OFF], meta[:, K.M_NSTR], total
    )
    e_first = np.zeros(nb_, np.int64)  # each batch's first entry in s_off, s_ids
    e_first[okb] = np.cumsum(counts) - counts
    strs = _Interner(buf, s_ids, u_off, u_len)

    # ---- UTF-8: the first invalid string of each batch, in envelope order
    utf_det = np.full(nb_, np.iinfo(np.int64).max, dtype=np.int64)
    utf_off = np.zeros(nb_, dtype=np.int64)
    for w in (2, 1, 0):  # later ones first so earlier elements overwrite
        bad = okb[ids[w].invalid]
        utf_det[bad] = w + 1
        utf_off[bad] = meta[bad, K.M_SITE_OFF + 2 * w] - starts[bad]
    if strs.invalid.any():
        s_batch = np.repeat(okb, counts)
        bad_b = s_batch[strs.invalid]
        bad_j = np.flatnonzero(strs.invalid) - e_first[bad_b]
        # entries come in batch/j order, so the first occurrence per batch is the lowest j
        first_b, pos = np.unique(bad_b, return_index=True)
        take = utf_det[first_b] == np.iinfo(np.int64).max
        fb = first_b[take]
        utf_det[fb] = 14 + bad_j[pos][take]
        utf_off[fb] = s_off[strs.invalid][pos][take] - starts[fb]
    utf_bad = utf_det != np.iinfo(np.int64).max
    err[utf_bad] = C.UTF8
    det[utf_bad] = utf_det[utf_bad]
    eoff[utf_bad] = utf_off[utf_bad]
    env_bad = err != 0

    # Per input batch: global ids (-1 where the envelope failed).
    sess = np.full(nb_, -1, np.int64)
    vis = np.full(nb_, -1, np.int64)
    site = np.full(nb_, -1, np.int64)
    site[okb], vis[okb], sess[okb] = ids[0].ids, ids[1].ids, ids[2].ids
    # ---- v3: the dictionary each batch names (after the envelope's faults, UTF-8 included)
    dtabs = _DictionaryTables(dicts, ids[0].values, site, np.where(err == 0, meta[:, K.M_DICT], 0))
    named = np.flatnonzero(dtabs.missing)
    err[named] = C.UNKNOWN_DICTIONARY
    det[named] = meta[named, K.M_DICT]
    eoff[named] = meta[named, K.M_DICT_OFF] - starts[named]
    seq = meta[:, K.M_SEQ]
    sess_strings = ids[2].values
    rank_of = np.zeros(len(sess_strings), np.int64)
    rank_of[sess_strings.fill_null("").arg_sort().to_numpy()] = np.arange(len(sess_strings))

    while True:
        cross = np.zeros(nb_, np.int64)
        cross_det = np.zeros(nb_, np.int64)
        cross_off = np.zeros(nb_, np.int64)
        cand = np.flatnonzero(err == 0)
        # 1. duplicates, by (session, seq) in input order
        o = cand[np.lexsort((cand, seq[cand], sess[cand]))]
        first_of = np.ones(len(o), np.bool_)
        first_of[1:] = (sess[o][1:] != sess[o][:-1]) | (seq[o][1:] != seq[o][:-1])
        grp = np.cumsum(first_of) - 1
        keeper = o[first_of][grp]
        dup = o[~first_of]
        dup_keeper = keeper[~first_of]
        identical = (
            K.same_bytes(buf, starts[dup], lens[dup], starts[dup_keeper], lens[dup_keeper])
            if len(dup)
            else np.zeros(0, np.bool_)
        )
        cross[dup[~identical]] = C.DUPLICATE_CONFLICT
        duplicates = int(identical.sum())
        kept = o[first_of]  # sorted by session gid, seq
        # 2. visitor of the lowest-seq batch of each session
        new_sess = np.ones(len(kept), np.bool_)
        new_sess[1:] = sess[kept][1:] != sess[kept][:-1]
        lead = kept[new_sess][np.cumsum(new_sess) - 1]
        vbad = vis[kept] != vis[lead]
        cross[kept[vbad]] = C.VISITOR_CHANGE
        kept = kept[~vbad]
        # 3. string table definitions: lowest seq defines each (session, entry); a batch
        # defining one differently is rejected; the tables of the batches left
        xs = np.zeros((nb_, 3), np.int64)
        removed, gpos, tstart, tlen, tlo, tkeys, tab = K.session_tables(
            kept, sess, meta, e_first, strs.ids, s_off, strs.phys, xs
        )
        if removed.any():
            fb = np.flatnonzero(removed)
            cross[fb], cross_det[fb], cross_off[fb] = xs[fb, 0], xs[fb, 1], xs[fb, 2] - starts[fb]
            kept = kept[~removed[kept]]
        # 4. canonical order and decode
        order_idx = np.lexsort((seq[kept], rank_of[sess[kept]]))
        order = kept[order_idx]
        o_sess = gpos[order]
        n_ev = meta[order, K.M_N]
        out_start = np.cumsum(n_ev) - n_ev
        total_ev = int(n_ev.sum())
        cols = alloc(total_ev)
        alloc = new_columns  # a second attempt (batches failed) has columns of its own
        errs = np.zeros((len(order), 3), np.int64)
        if len(order):
            K.decode_events(
                buf,
                starts,
                meta,
                order,
                out_start,
                tstart[o_sess],
                tlen[o_sess],
                tlo[o_sess],
                tkeys if (tlo == K.SPREAD).any() else None,
                tab,
                dtabs.codes if dtabs.codes.shape[0] else None,
                dtabs.start[order],
                dtabs.length[order],
                _LAYOUT,
                ids[2].phys[sess[order]],
                ids[1].phys[vis[order]],
                cols["session_id"],
                cols["visitor_id"],
                cols["batch"],
                cols["t"],
                cols["i"],
                cols["kind"],
                cols["x"],
                cols["y"],
                cols["a"],
                cols["b"],
                cols["target"],
                cols["text"],
                errs,
            )
        failed = errs[:, 0] != 0
        if not failed.any():
            break
        fb = order[failed]
        err[fb], det[fb], eoff[fb] = errs[failed, 0], errs[failed, 1], errs[failed, 2]

    batch_table = pl.DataFrame(
        {
            "index": order,
            "session_id": _categorical(ids[2].phys[sess[order]]),
            "visitor_id": _categorical(ids[1].phys[vis[order]]),
            "site_key": _categorical(ids[0].phys[site[order]]),
            "seq": seq[order],
            "base_ts": meta[order, K.M_BASE_TS],
            "n": n_ev,
        },
        schema=BATCHES_SCHEMA,
    )
    quarantined = []
    for b in np.flatnonzero((err != 0) | (cross != 0)):
        code, d, off = (
            (int(err[b]), int(det[b]), int(eoff[b]))
            if err[b]
            else (int(cross[b]), int(cross_det[b]), int(cross_off[b]))
        )
        # the session is named only when the whole envelope (UTF-8 included) was readable
        sid = sess_strings[int(sess[b])] if not env_bad[b] else None
        quarantined.append(
            Quarantined(
                index=int(b),
                session_id=sid,
                code=code,
                detail=d,
                offset=off if code not in (C.VISITOR_CHANGE, C.DUPLICATE_CONFLICT) else None,
                site_key=ids[0].values[int(site[b])] if code == C.UNKNOWN_DICTIONARY else None,
            )
        )
    return Decoded(cols, batch_table, quarantined, duplicates, (ids, strs, dtabs))
