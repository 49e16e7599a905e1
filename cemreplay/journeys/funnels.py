"""Funnels: how many units pass each step, how long they take, and where the rest drop off."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import polars as pl

from cemreplay.errors import ConfigError
from cemreplay.events import check
from cemreplay.journeys._points import order_rows, points, unit_key
from cemreplay.journeys._urls import goal_mask
from cemreplay.journeys._work import prepare
from cemreplay.journeys.rules import Goal, SessionRules, check_unit
from cemreplay.schema import EventKind

__all__ = ["FunnelResult", "funnel"]

K = EventKind
_FIELD_KINDS = [int(K.FOCUS), int(K.BLUR), int(K.CHANGE), int(K.VALIDATION_ERROR)]
Order = Literal["ordered", "strict", "any"]


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


def _attempts(pts: pl.DataFrame, masks: list[pl.Expr], order: Order, window: int) -> pl.DataFrame:
    """Per attempt (a unit's possible start, ``o0``): the time each step was reached, or null."""
    n = len(masks)
    cand = [pts.filter(m).select("unit", "o", "t") for m in masks]
    if order == "any":
        anyhit = pl.any_horizontal(masks)
        cur = pts.filter(anyhit).select("unit", o0="o", t0="t")
        for k in range(n):
            cur = cur.sort("o0").join_asof(
                cand[k].rename({"o": f"o{k + 1}", "t": f"t{k + 1}"}).sort(f"o{k + 1}"),
                left_on="o0", right_on=f"o{k + 1}", by="unit", strategy="forward",
                check_sortedness=False,
            )  # fmt: skip
        ok = pl.lit(True)
        for k in range(n):
            t = pl.col(f"t{k + 1}")
            ok = ok & t.is_not_null() & (t - pl.col("t0") <= window)
            cur = cur.with_columns(pl.when(ok).then(t).alias(f"t{k + 1}"))
        return cur.drop("t0", *[f"o{k + 1}" for k in range(n)])
    cur = cand[0].select("unit", "o", o0="o", t0="t", t1="t")
    for k in range(1, n):
        if order == "ordered":
            nxt = cand[k].rename({"o": "_o", "t": "_t"}).sort("_o")
            cur = cur.sort("o").join_asof(
                nxt, left_on="o", right_on="_o", by="unit", strategy="forward",
                allow_exact_matches=False, check_sortedness=False,
            )  # fmt: skip
        else:  # strict: the very next point of the unit must be this step
            nxt = pts.filter(masks[k]).select("unit", _o="o", _t="t")
            cur = cur.with_columns(_next=pl.col("o") + 1).join(
                nxt, left_on=["unit", "_next"], right_on=["unit", "_o"], how="left"
            ).with_columns(_o=pl.when(pl.col("_t").is_not_null()).then(pl.col("_next")))
            cur = cur.drop("_next")
        hit = pl.col("_t").is_not_null() & (pl.col("_t") - pl.col("t0") <= window)
        hit = hit & pl.col(f"t{k}").is_not_null()
        cur = cur.with_columns(
            pl.when(hit).then(pl.col("_t")).alias(f"t{k + 1}"),
            o=pl.when(hit).then(pl.col("_o")).otherwise(pl.col("o")),
        ).drop("_o", "_t")
    return cur.drop("o", "t0")


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
    pts = points(work, unit, rules.urls)
    masks = [goal_mask(g, pl.col("kind"), pl.col("name"), pl.col("page")) for g in goals]
    n = len(goals)
    tcols = [f"t{k + 1}" for k in range(n)]
    att = _attempts(pts, masks, order, window)
    level = pl.lit(0, pl.UInt32)
    ok = pl.lit(True)
    for c in tcols:
        ok = ok & pl.col(c).is_not_null()
        level = level + ok.cast(pl.UInt32)
    units = (
        att.with_columns(level=level)
        .filter(pl.col("level") > 0)
        .sort("unit", "level", "o0", descending=[False, True, False])
        .unique("unit", keep="first", maintain_order=True)
        .select("unit", "level", *tcols)
    )
    step_rows = []
    for k in range(n):
        entered = units.filter(pl.col("level") >= k + 1)
        conv = units.filter(pl.col("level") >= min(k + 2, n))
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
    drops = _drops(work, pts, units, n, unit, window, findings)
    return FunnelResult(step_table, units, drops)


def _drops(
    work: pl.DataFrame,
    pts: pl.DataFrame,
    units: pl.DataFrame,
    n: int,
    unit: Literal["session", "visitor"],
    window: int,
    findings: pl.DataFrame | None,
) -> pl.DataFrame:
    """Dropped units with the last page, field and finding between their last step and the
    end of their window (or their last event)."""
    step_t = pl.coalesce([pl.col(f"t{k}") for k in range(n, 0, -1)]) if n else pl.lit(None)
    last_end = work.group_by(u=unit_key(unit)).agg(_end=pl.col("_tm").max())
    d = (
        units.filter(pl.col("level") < n)
        .select("unit", step="level", at=step_t, t1="t1")
        .join(last_end, left_on="unit", right_on="u", how="left")
        .with_columns(until=pl.min_horizontal("_end", pl.col("t1") + window))
        .drop("_end", "t1")
        .sort("until")
    )
    pages = pts.filter(pl.col("page").is_not_null()).select("unit", _pt="t", last_page="page")
    d = d.join_asof(
        pages.sort("_pt"), left_on="until", right_on="_pt", by="unit", check_sortedness=False
    )
    fields = work.filter(pl.col("kind").is_in(_FIELD_KINDS)).select(
        unit=unit_key(unit), _ft="_tm", last_field=pl.col("target").cast(pl.String)
    )
    d = d.join_asof(
        fields.sort("_ft"), left_on="until", right_on="_ft", by="unit", check_sortedness=False
    ).with_columns(last_field=pl.when(pl.col("_ft") >= pl.col("at")).then(pl.col("last_field")))
    if findings is not None and findings.height:
        d = d.join_asof(
            _finding_units(work, findings, unit).sort("_xt"), left_on="until",
            right_on="_xt", by="unit", check_sortedness=False,
        ).with_columns(
            last_finding=pl.when(pl.col("_xt") >= pl.col("at")).then(pl.col("last_finding"))
        )
    else:
        d = d.with_columns(last_finding=pl.lit(None, pl.String))
    return d.select("unit", "step", "at", "last_page", "last_field", "last_finding").sort("unit")


def _finding_units(work: pl.DataFrame, findings: pl.DataFrame, unit: str) -> pl.DataFrame:
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
    starts = order_rows(
        work.group_by("_gs").agg(
            pl.col("session_id", "visitor_id", "_piece", "batch", "i").first(),
            _tm=pl.col("_tm").first(),
        ).with_columns(unit=unit_key("visitor" if unit == "visitor" else "session"))
    ).select(pl.col("session_id").cast(pl.String), "unit", _st="_tm")
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
