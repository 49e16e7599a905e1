"""Funnels: how many units pass each step, how long they take, and where the rest drop off."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from cemreplay.errors import ConfigError
from cemreplay.events import check
from cemreplay.journeys._points import Units, units
from cemreplay.journeys._scan import kind_rows, session_t0, unit_bounds, unit_last
from cemreplay.journeys._steps import match_steps
from cemreplay.journeys._work import Work, prepare, rows
from cemreplay.journeys.rules import Goal, SessionRules, check_unit
from cemreplay.journeys.sessions import goal_codes
from cemreplay.schema import EventKind

__all__ = ["FunnelResult", "funnel"]

K = EventKind
_FIELD_KINDS = [int(K.FOCUS), int(K.BLUR), int(K.CHANGE), int(K.VALIDATION_ERROR)]
_PV, _MS = int(K.PAGE_VIEW), int(K.MILESTONE)
Order = Literal["ordered", "strict", "any"]
_ORDERS = {"ordered": 0, "strict": 1, "any": 2}


@dataclass(frozen=True)
class FunnelResult:
    """What :func:`funnel` returns.

    Attributes
    ----------
    steps : pl.DataFrame
        One row per step: ``step`` (1-based), ``name``, ``entered``, ``converted`` (went on
        to the next step; the last step's converted = entered), ``dropped``,
        ``conversion`` (converted / entered), ``median_ms_to_next``,
        ``median_ms_from_start``.
    units : pl.DataFrame
        One row per unit that entered: ``unit``, ``level`` (steps reached) and ``t1..tN``.
    drops : pl.DataFrame
        One row per unit that dropped: ``unit``, ``step`` (last reached), ``at`` (its time),
        ``last_page``, ``last_field`` and ``last_finding`` (kind of the last finding) seen
        after that step and before the window closed.
    """

    steps: pl.DataFrame
    units: pl.DataFrame
    drops: pl.DataFrame


def _check(steps: Sequence[Goal | str], order: str, window_ms: int | None) -> list[Goal]:
    if len(steps) < 1:
        raise ConfigError("a funnel needs at least one step; hint: funnel(events, ['/cart', ...])")
    if order not in ("ordered", "strict", "any"):
        raise ConfigError(
            f"order must be 'ordered', 'strict' or 'any', got {order!r}; "
            "hint: 'ordered' allows other pages between steps, 'strict' does not"
        )
    if window_ms is not None and (isinstance(window_ms, bool) or window_ms <= 0):
        raise ConfigError(
            f"window_ms must be a positive number of milliseconds or None, got {window_ms!r}; "
            "hint: 7 * 24 * 3_600_000 for a week"
        )
    out = []
    for s in steps:
        if isinstance(s, str):
            out.append(Goal(url=s))
        elif isinstance(s, Goal):
            out.append(s)
        else:
            raise ConfigError(
                f"a funnel step must be a Goal or a URL pattern string, got {s!r}; "
                "hint: Goal(milestone='cart_add') or '/checkout/*'"
            )
    return out


def funnel(
    events: pl.DataFrame,
    steps: Sequence[Goal | str],
    *,
    order: Order = "ordered",
    window_ms: int | None = None,
    by: Literal["session", "visitor"] = "session",
    rules: SessionRules | None = None,
    findings: pl.DataFrame | None = None,
) -> FunnelResult:
    """Count units through ordered steps and tag where the others dropped off.

    Parameters
    ----------
    events : pl.DataFrame
        An event table, any row order.
    steps : sequence of Goal or str
        Page patterns (``"/cart"``, ``"/product/*"``, ``"re:^/p/\\d+$"``, matched against
        normalised URLs) or ``Goal(milestone=...)``.
    order : {"ordered", "strict", "any"}
        ``ordered``: steps in order, anything in between; ``strict``: each step must be the
        very next page view or milestone after the previous one; ``any``: the steps up to k
        all happened, in any order.
    window_ms : int or None
        Every step must happen within this long of the first (default: no limit).
    by : {"session", "visitor"}
        Count sessions (split by ``rules``) or visitors (all their sessions together).
    rules : SessionRules, optional
        Session splitting and URL normalisation.
    findings : pl.DataFrame, optional
        Findings with at least ``session_id`` (snippet's), ``t`` and ``kind``, used to tag
        drop-offs with the last struggle seen before them.

    Returns
    -------
    FunnelResult
        ``steps``, ``units`` and ``drops`` tables. Each unit counts once, through its attempt
        (a start at a first-step event) that gets furthest, the earliest one on ties.

    Examples
    --------
    >>> import cemreplay.events as ev
    >>> funnel(ev.empty(), ["/cart", "/checkout"]).steps["entered"].to_list()
    [0, 0]
    """
    check(events)
    goals = _check(steps, order, window_ms)
    unit = check_unit(by)
    rules = rules or SessionRules()
    window = window_ms if window_ms is not None else 2**62
    work = prepare(events, rules)
    u = units(work, unit)
    n = len(goals)
    tcols = [f"t{k + 1}" for k in range(n)]
    want = np.zeros(256, dtype=np.bool_)
    want[[_PV, _MS]] = True
    pts, ses, tm, t_end = kind_rows(work.sid, work.starts, work.t, work.kind, want)
    sort = u.order(pts, ses, tm)
    pts, ses, tm = pts[sort], ses[sort], tm[sort]
    kind = work.kind[pts]
    code = work.tcode[pts].astype(np.int64)
    hit = np.zeros((pts.shape[0], n), dtype=np.bool_)
    for k, g in enumerate(goals):
        goal_kind, table = goal_codes(work, g, rules.urls)
        ok = code < table.shape[0]
        if table.shape[0]:
            hit[:, k] = (kind == goal_kind) & ok & table[np.where(ok, code, 0)]
    level, times = match_steps(u.of(pts, ses), tm, hit, _ORDERS[order], window, u.n)
    reached = np.flatnonzero(level > 0)
    cols: dict[str, object] = {"unit": u.names(reached), "level": level[reached]}
    for k, c in enumerate(tcols):
        cols[c] = times[reached, k]
    units_table = pl.DataFrame(cols).with_columns(
        pl.when(pl.col("level") > k).then(pl.col(c)).alias(c) for k, c in enumerate(tcols)
    )
    units_table = units_table.sort("unit") if units_table.height else units_table
    step_rows = []
    for k in range(n):
        entered = units_table.filter(pl.col("level") >= k + 1)
        conv = units_table.filter(pl.col("level") >= min(k + 2, n))
        to_next = (
            (conv[tcols[k + 1]] - conv[tcols[k]]).median() if k + 1 < n and conv.height else None
        )
        from_start = (entered[tcols[k]] - entered["t1"]).median() if entered.height else None
        step_rows.append(
            {
                "step": k + 1,
                "name": goals[k].label,
                "entered": entered.height,
                "converted": conv.height,
                "dropped": entered.height - conv.height,
                "conversion": conv.height / entered.height if entered.height else None,
                "median_ms_to_next": to_next,
                "median_ms_from_start": from_start,
            }
        )
    step_table = pl.DataFrame(
        step_rows,
        schema={
            "step": pl.UInt32, "name": pl.String, "entered": pl.UInt32, "converted": pl.UInt32,
            "dropped": pl.UInt32, "conversion": pl.Float64, "median_ms_to_next": pl.Float64,
            "median_ms_from_start": pl.Float64,
        },
    )  # fmt: skip
    tmax = t_end if u.by_rows else unit_bounds(work.sid, work.starts, work.t, u.vis, u.n)
    drops = _drops(work, u, reached, level, times, tmax, window, findings)
    return FunnelResult(step_table, units_table, drops)


def _drops(
    work: Work,
    u: Units,
    entered: npt.NDArray[np.int64],
    level: npt.NDArray[np.uint32],
    times: npt.NDArray[np.int64],
    tmax: npt.NDArray[np.int64],
    window: int,
    findings: pl.DataFrame | None,
) -> pl.DataFrame:
    """Dropped units with the last page, field and finding between their last step and the
    end of their window (or their last event)."""
    n = times.shape[1]
    dropped = entered[level[entered] < n]
    lv = level[dropped].astype(np.int64)
    at = times[dropped, np.maximum(lv - 1, 0)]
    until = np.full(u.n, np.iinfo(np.int64).min, dtype=np.int64)
    until[dropped] = np.minimum(tmax[dropped], times[dropped, 0] + window)
    pages = work.pages(work.rules.urls)
    fields = np.zeros(256, dtype=np.bool_)
    fields[_FIELD_KINDS] = True
    if u.by_rows:  # read only the dropped sessions' rows
        last_pv, _, last_f, last_ft = unit_last(
            work.sid, work.starts, work.piece, work.t, work.kind, work.tcode, u.vis, u.rank,
            until[dropped], pages.page >= 0, fields, dropped,
        ) if dropped.shape[0] else (dropped, dropped, dropped, dropped)  # fmt: skip
    else:
        last_pv, _, last_f, last_ft = unit_last(
            work.sid, work.starts, work.piece, work.t, work.kind, work.tcode, u.vis, u.rank,
            until, pages.page >= 0, fields, np.zeros(0, dtype=np.int64),
        )  # fmt: skip
        last_pv, last_f, last_ft = last_pv[dropped], last_f[dropped], last_ft[dropped]
    last_f = np.where((last_f >= 0) & (last_ft >= at), last_f, -1)
    page_idx = np.where(last_pv >= 0, pages.of(work.tcode[np.maximum(last_pv, 0)]), -1)
    d = pl.DataFrame(
        {
            "unit": u.names(dropped),
            "step": lv.astype(np.uint32),
            "at": at,
            "last_page": pages.strings(page_idx),
            "last_field": work.ev["target"].gather(rows(last_f)).cast(pl.String),
            "until": until[dropped],
        }
    )
    if findings is not None and findings.height:
        d = d.sort("until").join_asof(
            _finding_units(work, u, findings).sort("_xt"), left_on="until",
            right_on="_xt", by="unit", check_sortedness=False,
        ).with_columns(
            last_finding=pl.when(pl.col("_xt") >= pl.col("at")).then(pl.col("last_finding"))
        )  # fmt: skip
    else:
        d = d.with_columns(last_finding=pl.lit(None, pl.String))
    return d.select("unit", "step", "at", "last_page", "last_field", "last_finding").sort("unit")


def _finding_units(work: Work, u: Units, findings: pl.DataFrame) -> pl.DataFrame:
    """Findings (session_id, t, kind) mapped to units: ``unit, _xt, last_finding``."""
    missing = {"session_id", "t", "kind"} - set(findings.columns)
    if missing:
        raise ConfigError(
            f"findings lack column(s) {sorted(missing)}; hint: pass the findings table the "
            "detectors return (session_id, t, kind, ...)"
        )
    f = findings.select(
        session_id=pl.col("session_id").cast(pl.String),
        _xt=pl.col("t").cast(pl.Int64),
        last_finding=pl.col("kind").cast(pl.String),
    )
    heads = work.starts
    ses = np.arange(work.n_sessions, dtype=np.uint32)
    starts = pl.DataFrame(
        {
            "session_id": work.ev["session_id"].gather(pl.Series(heads)).cast(pl.String),
            "unit": u.names(u.of(heads, ses).astype(np.int64)),
            "_st": session_t0(work.sid, heads, work.t),
        }
    )
    first = starts.group_by("session_id").agg(_u0=pl.col("unit").first())
    mapped = f.sort("_xt").join_asof(
        starts.sort("_st"),
        left_on="_xt",
        right_on="_st",
        by="session_id",
        check_sortedness=False,
    )
    # a finding stamped before its session's first event belongs to the first piece
    mapped = mapped.join(first, on="session_id", how="left")
    return (
        mapped.with_columns(unit=pl.coalesce("unit", "_u0"))
        .filter(pl.col("unit").is_not_null())
        .select("unit", "_xt", "last_finding")
    )
