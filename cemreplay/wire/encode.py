"""Encode an event table into wire batches, exactly as the snippet would send them.

Used by the synthetic generator, the tests and the benchmarks. Rows are grouped into batches by
``(session_id, batch)``; each session's strings are sent once, in the batch that first uses
them. ``decode(encode(events))`` gives ``events`` back for any table whose rows are in
recording order within each batch and whose ``i`` counts 0.. within it (as
:func:`cemreplay.events.assign_batches` leaves them).
"""

from __future__ import annotations

import msgpack
import numpy as np
import polars as pl

from cemreplay.errors import ConfigError, SchemaError
from cemreplay.events import check
from cemreplay.schema import (
    LAYOUT,
    MAX_EVENTS_PER_BATCH,
    SUPPORTED_WIRE_VERSIONS,
    WIRE_VERSION,
    EventKind,
)
from cemreplay.wire import _kernels as K
from cemreplay.wire.dictionary import Dictionary

__all__ = ["encode"]

_LAYOUT = np.array(LAYOUT, dtype=np.int16)


def _phys(s: pl.Series) -> np.ndarray:
    """Physical codes of a Categorical column as int64, -1 for null."""
    return s.to_physical().fill_null(-1).cast(pl.Int64).to_numpy()


def _names(s: pl.Series) -> dict[int, str]:
    """Physical code -> string for the values present in a Categorical column."""
    u = s.drop_nulls().unique()
    return dict(zip(u.to_physical().to_list(), u.cast(pl.String).to_list(), strict=True))


def encode(
    events: pl.DataFrame,
    *,
    site_key: str = "demo",
    version: int = WIRE_VERSION,
    dictionary: Dictionary | None = None,
) -> list[bytes]:
    """Encode an event table into wire-format batches (one ``bytes`` per batch).

    Parameters
    ----------
    events:
        An event table (``cemreplay.schema.EVENT_SCHEMA``).
    site_key:
        The site key every batch carries.
    version:
        The wire version to write without a dictionary: 2 (the default), 1 (what older
        snippets sent) or 3 (version 2 plus the 14th envelope element, here 0: no
        dictionary). With a ``dictionary`` the batches are always version 3; ``version``
        must then be 2 or 3.
    dictionary:
        The site's :class:`~cemreplay.wire.Dictionary` (its ``site_key`` must be
        ``site_key``): the batches name it, refer to its strings by their position in it
        and send only the other strings in their sessions' string tables (wire version 3).

    Returns
    -------
    list[bytes]
        Batches in (session, batch) order.

    Raises
    ------
    ConfigError
        If ``version`` is not one cemreplay writes, or does not go with ``dictionary``, or the
        dictionary is another site's.
    SchemaError
        If the table lacks columns, a kind is unknown, a kind has a string in a slot it does
        not use, a batch holds more than 65,535 events, or a time step does not fit 32 bits.

    Examples
    --------
    >>> import cemreplay.events as ev
    >>> encode(ev.empty())
    []
    """
    if version not in SUPPORTED_WIRE_VERSIONS:
        raise ConfigError(
            f"encode(version={version!r}): cemreplay writes wire versions "
            f"{sorted(SUPPORTED_WIRE_VERSIONS)}; hint: leave version at its default"
        )
    if dictionary is not None:
        if not isinstance(dictionary, Dictionary):
            raise ConfigError(
                f"encode(dictionary=) takes a cemreplay.wire.Dictionary, got "
                f"{type(dictionary).__name__}"
            )
        if version == 1:
            raise ConfigError(
                "encode(version=1, dictionary=...): a dictionary needs wire version 3; "
                "hint: leave version at its default"
            )
        if dictionary.site_key != site_key:
            raise ConfigError(
                f"encode(dictionary=): the dictionary is site {dictionary.site_key!r}'s, the "
                f"batches are site {site_key!r}'s; hint: pass site_key=dictionary.site_key"
            )
        version = 3
    check(events, where="encode(events)")
    if events.height == 0:
        return []
    sess = _phys(events["session_id"])
    seq = events["batch"].cast(pl.Int64).to_numpy()
    ipos = events["i"].cast(pl.Int64).to_numpy()
    key_sorted = np.all(
        (sess[1:] > sess[:-1])
        | (
            (sess[1:] == sess[:-1])
            & ((seq[1:] > seq[:-1]) | ((seq[1:] == seq[:-1]) & (ipos[1:] >= ipos[:-1])))
        )
    )
    if not key_sorted:
        idx = np.lexsort((ipos, seq, sess))
        events = events[idx]
        sess, seq = sess[idx], seq[idx]
    kind = events["kind"].to_numpy()
    if kind.max() >= len(_LAYOUT) or (_LAYOUT[kind] < 0).any():
        bad = int(
            kind[(kind >= len(_LAYOUT)) | (_LAYOUT[np.minimum(kind, len(_LAYOUT) - 1)] < 0)][0]
        )
        raise SchemaError(
            f"encode(events): kind {bad} is not an EventKind; hint: see cemreplay.schema"
        )
    layout = _LAYOUT[kind]
    tg = _phys(events["target"])
    tx = _phys(events["text"])
    for name, codes, bit in (("target", tg, 16), ("text", tx, 32)):
        wrong = (codes >= 0) & ((layout & bit) == 0)
        if wrong.any():
            r = int(np.flatnonzero(wrong)[0])
            raise SchemaError(
                f"encode(events): row {r} ({EventKind(int(kind[r])).name}) has a {name} but that "
                "kind sends none; hint: see cemreplay.schema.FIELDS"
            )
    tg = np.where(layout & 16, tg, -1)
    tx = np.where(layout & 32, tx, -1)

    # Batch boundaries.
    n = len(kind)
    starts_mask = np.ones(n, np.bool_)
    starts_mask[1:] = (sess[1:] != sess[:-1]) | (seq[1:] != seq[:-1])
    bstart = np.flatnonzero(starts_mask)
    bounds = np.append(bstart, n)
    sizes = np.diff(bounds)
    if sizes.max() > MAX_EVENTS_PER_BATCH:
        j = int(np.argmax(sizes))
        raise SchemaError(
            f"encode(events): batch {int(seq[bstart[j]])} of a session holds "
            f"{int(sizes[j])} events (max {MAX_EVENTS_PER_BATCH}); "
            "hint: cemreplay.events.assign_batches() splits them"
        )
    row_batch = np.repeat(np.arange(len(bstart)), sizes)

    # Per-session string tables: order of first use (target before text within a row),
    # without the dictionary's strings (a reference to one is its position in the dictionary).
    strings = {**_names(events["target"]), **_names(events["text"])}
    pos = np.concatenate([np.arange(n) * 2, np.arange(n) * 2 + 1])
    code = np.concatenate([tg, tx])
    present = code >= 0
    pos, code = pos[present], code[present]
    n_dict = len(dictionary.strings) if dictionary is not None else 0
    rt = np.zeros(n, np.int64)
    rx = np.zeros(n, np.int64)
    if n_dict:
        assert dictionary is not None
        where = {s: k for k, s in enumerate(dictionary.strings)}
        ucode, uinv = np.unique(code, return_inverse=True)
        in_dict = np.array([where.get(strings[c], -1) for c in ucode.tolist()], np.int64)[uinv]
        hit = in_dict >= 0
        for refs, parity in ((rt, 0), (rx, 1)):
            sel = hit & (pos % 2 == parity)
            refs[pos[sel] // 2] = in_dict[sel] + 1
        pos, code = pos[~hit], code[~hit]
    row = pos // 2
    skey = (sess[row].astype(np.uint64) << np.uint64(32)) | code.astype(np.uint64)
    order = np.argsort(pos, kind="stable")  # already ascending, kept explicit
    skey, pos, row, code = skey[order], pos[order], row[order], code[order]
    uniq, first, inverse = np.unique(skey, return_index=True, return_inverse=True)
    u_sess = sess[row[first]]
    u_pos = pos[first]
    u_order = np.lexsort((u_pos, u_sess))
    local = np.empty(len(uniq), np.int64)
    s_sorted = u_sess[u_order]
    sess_head = np.ones(len(u_order), np.bool_)
    sess_head[1:] = s_sorted[1:] != s_sorted[:-1]
    head_idx = np.flatnonzero(sess_head)
    run_start = head_idx[np.cumsum(sess_head) - 1]
    local[u_order] = np.arange(len(u_order)) - run_start
    ref = local[inverse] + 1 + n_dict
    is_text = (pos % 2).astype(np.bool_)
    rt[row[~is_text]] = ref[~is_text]
    rx[row[is_text]] = ref[is_text]
    # New strings of each batch, in table order; str_base per batch.
    u_batch = row_batch[row[first]]
    new_order = np.lexsort((local, u_batch))
    new_per_batch = np.bincount(u_batch, minlength=len(bstart))
    b_sess_head = np.ones(len(bstart), np.bool_)
    b_sess_head[1:] = sess[bstart][1:] != sess[bstart][:-1]
    cum = np.cumsum(new_per_batch) - new_per_batch  # global running count before each batch
    sess_first_batch = np.flatnonzero(b_sess_head)[np.cumsum(b_sess_head) - 1]
    str_base = cum - cum[sess_first_batch]

    out = np.empty(int(n * 7 + int(np.bitwise_count(layout.astype(np.uint8)).sum()) * 5), np.uint8)
    sect = np.zeros((len(bstart), 5), np.int64)
    t = events["t"].to_numpy()
    cols = [events[c].to_numpy() for c in ("x", "y", "a", "b")]
    x, y, a, b = cols
    wrote = K.encode_sections(bounds, kind, t, x, y, a, b, rt, rx, _LAYOUT, out, sect, version >= 2)
    if wrote < 0:
        r = -1 - wrote
        raise SchemaError(
            f"encode(events): row {r}: the time step or integer field change from the previous "
            "event of its batch does not fit 32 bits; hint: split the batch"
        )
    raw = out[:wrote].tobytes()

    names_s = _names(events["session_id"])
    names_v = _names(events["visitor_id"])
    vis = _phys(events["visitor_id"])
    new_codes = code[first][new_order].tolist()
    new_strs = [strings[c] for c in new_codes]
    batch_new_start = np.cumsum(new_per_batch) - new_per_batch
    packb = msgpack.Packer(use_bin_type=True).pack
    tail = [] if version < 3 else [dictionary.id if dictionary is not None else 0]
    result = []
    for j, r0 in enumerate(bstart.tolist()):
        k0, k1, k2, k3, k4 = sect[j].tolist()
        s0 = int(batch_new_start[j])
        result.append(
            packb(
                [
                    version,
                    site_key,
                    names_v[int(vis[r0])],
                    names_s[int(sess[r0])],
                    int(seq[r0]),
                    int(t[r0]),
                    int(str_base[j]),
                    new_strs[s0 : s0 + int(new_per_batch[j])],
                    int(sizes[j]),
                    raw[k0:k1],
                    raw[k1:k2],
                    raw[k2:k3],
                    raw[k3:k4],
                    *tail,
                ]
            )
        )
    return result
