"""The detectors' order check (``_base._scan``) against a plain-Python reading of its rule."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cemreplay.detectors import _parallel as P
from cemreplay.detectors._base import _scan
from cemreplay.schema import EventKind

PV = int(EventKind.PAGE_VIEW)


def naive(
    sid: list[int], batch: list[int], idx: list[int], t: list[int], kind: list[int]
) -> tuple[bool, bool, list[int], list[int]]:
    n = len(sid)
    starts = [j for j in range(n) if j == 0 or sid[j] != sid[j - 1]]
    heads = [sid[j] for j in starts]
    in_order = len(set(heads)) == len(heads) and all(
        (batch[j - 1], idx[j - 1]) < (batch[j], idx[j]) for j in range(1, n) if sid[j] == sid[j - 1]
    )
    t_sorted = all(t[j - 1] <= t[j] for j in range(1, n) if sid[j] == sid[j - 1])
    views = [j for j in range(n) if kind[j] == PV]
    return in_order, t_sorted, [*starts, n], views


rows = st.lists(
    st.tuples(
        st.integers(0, 3),  # session code
        st.integers(0, 3),  # batch
        st.integers(0, 4),  # i
        st.integers(0, 5),  # t
        st.integers(1, 4),  # kind
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(rows, st.integers(1, 3))
def test_scan_matches_naive(table: list[tuple[int, ...]], threads: int) -> None:
    cols = [list(c) for c in zip(*table, strict=True)] if table else [[] for _ in range(5)]
    sid, batch, idx, t, kind = cols
    arrays = (
        np.array(sid, dtype=np.uint32),
        np.array(batch, dtype=np.uint32),
        np.array(idx, dtype=np.uint16),
        np.array(t, dtype=np.int64),
        np.array(kind, dtype=np.uint8),
    )
    with P.threads(threads, min_rows=1):
        in_order, t_sorted, starts, views = _scan(*arrays)
    want = naive(sid, batch, idx, t, kind)
    assert (in_order, t_sorted) == want[:2]
    assert starts.tolist() == want[2]
    assert views.tolist() == want[3]
