"""Paths: the ordered pages of each session, the most common paths, path trees and loops."""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl

from cemreplay.errors import ConfigError
from cemreplay.events import check
from cemreplay.journeys._scan import kind_rows
from cemreplay.journeys._work import prepare
from cemreplay.journeys.rules import SessionRules
from cemreplay.schema import EventKind

__all__ = ["path_tree", "paths", "top_paths"]


def paths(
    events: pl.DataFrame, rules: SessionRules | None = None, *, collapse_repeats: bool = True
) -> pl.DataFrame:
    """The ordered page sequence of each session.

    Parameters
    ----------
    events : pl.DataFrame
        An event table, any row order.
    rules : SessionRules, optional
        Splitting rules and ``rules.urls`` (pages are normalised URLs).
    collapse_repeats : bool
        Merge consecutive views of the same page (reloads, in-page routes) into one step.

    Returns
    -------
    pl.DataFrame
        One row per session with at least one page view, sorted by ``split_session_id``:
        ``split_session_id``, ``session_id``, ``visitor_id``, ``path`` (list of pages),
        ``length``, ``loops`` (steps that return to a page already in the path).

    Examples
    --------
    >>> import cemreplay.events as ev
    >>> paths(ev.empty()).columns
    ['split_session_id', 'session_id', 'visitor_id', 'path', 'length', 'loops']
    """
    check(events)
    rules = rules or SessionRules()
    work = prepare(events, rules)
    want = np.zeros(256, dtype=np.bool_)
    want[int(EventKind.PAGE_VIEW)] = True
    # A page view's session is that of its first event: its PAGE_VIEW, except for a snippet
    # session's first page view, which starts at the snippet session's first row.
    row, ses, _, _ = kind_rows(work.sid, work.starts, work.t, work.kind, want)
    sid = work.sid[row]
    opens = np.ones(row.shape[0], dtype=np.bool_)
    opens[1:] = sid[1:] != sid[:-1]
    ses = np.where(opens, ses - work.piece[ses], ses)
    first = np.where(opens, work.starts[ses], row)
    pages = work.pages_at(row, rules.urls)
    page = pages.of(work.tcode[row])
    keep = page >= 0
    if collapse_repeats:
        keep[1:] &= ~((page[1:] == page[:-1]) & (ses[1:] == ses[:-1]))
    kept = page[keep]
    pv = pl.DataFrame(
        {"_gs": ses[keep], "_first": first[keep], "_page": kept,
         "page": pages.names.gather(pl.Series(kept))}
    )  # fmt: skip
    out = pv.group_by("_gs", maintain_order=True).agg(
        _first=pl.col("_first").first(),
        path=pl.col("page"),
        length=pl.len().cast(pl.UInt32),
        loops=(pl.len() - pl.col("_page").n_unique()).cast(pl.UInt32),
    )
    names = work.names()
    gs = out["_gs"]
    out = pl.DataFrame(
        {
            "split_session_id": names["split_session_id"].gather(gs),
            "session_id": names["session_id"].gather(gs),
            "visitor_id": work.ev["visitor_id"].gather(out["_first"]).cast(pl.String),
            "path": out["path"],
            "length": out["length"],
            "loops": out["loops"],
        }
    )
    return out.sort("split_session_id")


def top_paths(
    path_table: pl.DataFrame, n: int = 10, *, max_depth: int | None = None
) -> pl.DataFrame:
    """The ``n`` most common paths (first ``max_depth`` pages of each), with counts and share.

    Examples
    --------
    >>> import cemreplay.events as ev
    >>> top_paths(paths(ev.empty())).columns
    ['path', 'sessions', 'share']
    """
    if n < 1 or (max_depth is not None and max_depth < 1):
        raise ConfigError(
            f"top_paths needs n >= 1 and max_depth >= 1 or None, got n={n}, "
            f"max_depth={max_depth}; hint: top_paths(table, 10, max_depth=5)"
        )
    p = pl.col("path") if max_depth is None else pl.col("path").list.head(max_depth)
    total = max(path_table.height, 1)
    return (
        path_table.group_by(p.alias("path"))
        .agg(sessions=pl.len().cast(pl.UInt32))
        .with_columns(share=pl.col("sessions") / total, _k=pl.col("path").list.join("\x1f"))
        .sort(["sessions", "_k"], descending=[True, False])
        .head(n)
        .drop("_k")
    )


def path_tree(
    path_table: pl.DataFrame,
    page: str,
    *,
    direction: Literal["forward", "reverse"] = "forward",
    depth: int = 3,
) -> pl.DataFrame:
    """Where sessions go after ``page`` (forward) or came from before it (reverse).

    Each session is anchored at its first view of ``page`` (forward) or its last (reverse);
    the tree follows up to ``depth`` steps from there.

    Returns
    -------
    pl.DataFrame
        One row per tree node, sorted by ``path``: ``depth`` (0 is ``page`` itself),
        ``path`` (pages from the root, nearest first in reverse trees), ``page`` (the node),
        ``sessions`` (sessions through this node), ``ends`` (sessions whose journey ends here:
        the session's exit forward, its entry in reverse).

    Examples
    --------
    >>> import cemreplay.events as ev
    >>> path_tree(paths(ev.empty()), "/cart").height
    0
    """
    if direction not in ("forward", "reverse"):
        raise ConfigError(
            f"direction must be 'forward' or 'reverse', got {direction!r}; "
            "hint: 'reverse' shows how visitors reached the page"
        )
    if depth < 0:
        raise ConfigError(f"depth must be >= 0, got {depth}; hint: depth=3")
    seq = pl.col("path") if direction == "forward" else pl.col("path").list.reverse()
    anchored = (
        path_table.select(seq.alias("seq"))
        .with_columns(at=pl.col("seq").list.eval(pl.element() == page).list.arg_max())
        .filter(pl.col("seq").list.contains(page))
        .with_columns(rest=pl.col("seq").list.slice(pl.col("at")))
        .with_columns(
            n=pl.col("rest").list.len(),
            k=pl.int_ranges(1, pl.min_horizontal(pl.col("rest").list.len(), depth + 1) + 1),
        )
        .explode("k")
    )
    nodes = anchored.select(
        path=pl.col("rest").list.head(pl.col("k")),
        end=pl.col("k") == pl.col("n"),
    )
    return (
        nodes.group_by("path")
        .agg(sessions=pl.len().cast(pl.UInt32), ends=pl.col("end").sum().cast(pl.UInt32))
        .with_columns(
            depth=(pl.col("path").list.len() - 1).cast(pl.UInt32),
            page=pl.col("path").list.last(),
            _k=pl.col("path").list.join("\x1f"),
        )
        .sort("_k")
        .select("depth", "path", "page", "sessions", "ends")
    )
