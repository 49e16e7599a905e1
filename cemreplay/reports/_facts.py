"""Facts: the compact per-session tables every report table is computed from.

A report never keeps the event table. :func:`facts_from_events` turns one chunk of events
(whole visitors) into small per-session tables (page visits, field touches, submits,
validation errors, funnel units and drop-offs, clicks to each goal); :func:`from_store`
streams a store's events chunk by chunk (``Store.iter_events``) and concatenates those
tables, so memory grows with sessions, not with events. Every table carries ``session_id``,
so a filter (:meth:`Facts.where`) or a segment (``by=``) is a semi-join on the sessions
index.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any, Final

import msgpack
import polars as pl

from cemreplay.errors import CemReplayError, ConfigError
from cemreplay.journeys import Goal, clicks_to_goal, funnel
from cemreplay.journeys._urls import normalise
from cemreplay.journeys.rules import UrlRules
from cemreplay.schema import FINDINGS_SCHEMA, EventKind

__all__ = [
    "CHECKOUT",
    "SEGMENTS",
    "STORED_TABLES",
    "Facts",
    "FactsFormatError",
    "ReportConfig",
    "facts_blob",
    "facts_from_events",
    "facts_of_blob",
    "from_store",
]

K = EventKind
#: The shop's checkout funnel (the synthetic shop's and the demo's).
CHECKOUT: Final = ("/cart", "/checkout", "/checkout/payment", "/confirmation")
#: Columns of the sessions index a table can be broken down by (``by=``) or filtered on.
SEGMENTS: Final = ("country", "campaign", "device", "locale")

_FORM_KINDS: Final = [
    int(K.PAGE_VIEW),
    int(K.FOCUS),
    int(K.BLUR),
    int(K.CHANGE),
    int(K.SUBMIT),
    int(K.VALIDATION_ERROR),
    int(K.MILESTONE),
]
_TOUCH: Final = [int(K.FOCUS), int(K.BLUR), int(K.CHANGE)]

SESSIONS_COLUMNS: Final = pl.Schema(
    {
        "session_id": pl.String(),
        "visitor_id": pl.String(),
        "first_ts": pl.Int64(),
        "last_ts": pl.Int64(),
        "pages": pl.Int64(),
        "events": pl.Int64(),
        "locale": pl.String(),
        "country": pl.String(),
        "campaign": pl.String(),
        "device": pl.String(),
        "score": pl.Float64(),
    }
)


@dataclass(frozen=True)
class ReportConfig:
    """What the facts are computed for.

    Parameters
    ----------
    funnel : sequence of str or Goal
        The funnel's steps (default :data:`CHECKOUT`).
    goals : sequence of str or Goal
        Goals for clicks-to-goal (default the cart and the confirmation page).
    max_clicks : int
        The click budget of clicks-to-goal's ``within_max_clicks`` (default 3).
    urls : UrlRules
        How page URLs are normalised (default: path only, ids collapsed to ``:id``).
    error_window_ms : int
        A submit followed by a validation error within this long (or preceded by one within
        50 ms) was rejected (default 5000, as the ``failed_submit`` detector).
    success_window_ms : int
        A submit not rejected counts as a completion when a page view or milestone follows
        within this long (default 10000, as ``failed_submit``).
    """

    funnel: tuple[str | Goal, ...] = CHECKOUT
    goals: tuple[str | Goal, ...] = ("/cart", "/confirmation")
    max_clicks: int = 3
    urls: UrlRules = field(default_factory=UrlRules)
    error_window_ms: int = 5_000
    success_window_ms: int = 10_000

    def __post_init__(self) -> None:
        if not self.funnel:
            raise ConfigError("ReportConfig.funnel needs at least one step; hint: CHECKOUT")
        for name in ("max_clicks", "error_window_ms", "success_window_ms"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"ReportConfig.{name} must be an int >= 0, got {v!r}")

    def key(self) -> str:
        """A text naming what of this config shapes the facts (all but ``max_clicks``, which
        only the tables read): facts kept in a store (computed by ``analyze`` with the default
        config) are used only for a report whose config has the same key."""
        return repr(replace(self, max_clicks=0))

    def goal_labels(self) -> list[str]:
        """The goals' names as they appear in tables."""
        return [g.label if isinstance(g, Goal) else g for g in self.goals]


@dataclass(frozen=True)
class Facts:
    """The per-session tables reports are computed from (see the module docstring).

    Attributes
    ----------
    sessions : one row per session: ids, times, counts, segments, struggle score.
    findings : the detectors' findings plus ``page`` (normalised) and ``element``.
    visits : one row per session and page: ``views``, ``first_t``.
    touches : one row per session, page and field: focus/blur/change counts, ``time_ms``
        (focus to blur), ``hesitation_ms`` (pause before the first focus), ``returns``,
        ``refills``, ``errors``, ``first_t``, ``last_t``.
    submits : one row per session, page and form: ``submits``, ``completed``,
        ``first_submit_t``, ``last_submit_t``.
    submit_fields : fields touched in a page view before a submit (each touch belongs to the
        first submit after it), with their last ``length``: per session, page, form, field.
    errors : one row per validation error: session, page, field, ``shape``, ``message``, t.
    funnel_units : per session reaching the first funnel step: ``level``, ``t1..tN``.
    funnel_drops : per session that dropped: ``step``, ``at``, ``last_page``, ``last_field``,
        ``last_finding``.
    goals : per session and goal: ``reached``, ``clicks``, ``page_views``, ``ms``.
    config : the :class:`ReportConfig` they were computed with.
    """

    sessions: pl.DataFrame
    findings: pl.DataFrame
    visits: pl.DataFrame
    touches: pl.DataFrame
    submits: pl.DataFrame
    submit_fields: pl.DataFrame
    errors: pl.DataFrame
    funnel_units: pl.DataFrame
    funnel_drops: pl.DataFrame
    goals: pl.DataFrame
    config: ReportConfig = field(default_factory=ReportConfig)

    # -- filtering

    def tables(self) -> dict[str, pl.DataFrame]:
        """The tables by name (everything but ``config``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "config"}

    def only(self, session_ids: pl.Series) -> Facts:
        """The facts of these sessions only."""
        keep = pl.DataFrame({"session_id": session_ids.cast(pl.String)}).unique()
        out = {
            name: df.join(keep, on="session_id", how="semi") for name, df in self.tables().items()
        }
        return Facts(**out, config=self.config)

    def where(
        self,
        *,
        since: int | datetime | str | None = None,
        until: int | datetime | str | None = None,
        **segments: str | Sequence[str] | None,
    ) -> Facts:
        """The facts of the sessions that match every condition.

        ``since``/``until``: sessions that started at or after / before that time (epoch ms,
        a datetime or an ISO date, UTC); each keyword of :data:`SEGMENTS` (``country="NO"``,
        ``campaign=["spring-promo", "summer-sale"]``) keeps sessions with that value (or one
        of those values).

        >>> f = empty_facts()
        >>> f.where(country="NO").sessions.height
        0
        """
        cond = pl.lit(True)
        for name, value in segments.items():
            if name not in SEGMENTS:
                raise ConfigError(
                    f"cannot filter on {name!r}; hint: one of {', '.join(SEGMENTS)}, since, until"
                )
            if value is None:
                continue
            values = [value] if isinstance(value, str) else list(value)
            cond = cond & pl.col(name).is_in(values)
        t0, t1 = _ms(since, "since"), _ms(until, "until")
        if t0 is not None:
            cond = cond & (pl.col("first_ts") >= t0)
        if t1 is not None:
            cond = cond & (pl.col("first_ts") < t1)
        return self.only(self.sessions.filter(cond)["session_id"])

    def span(self) -> tuple[int, int] | None:
        """First and last session start (epoch ms), None without sessions."""
        if self.sessions.height == 0:
            return None
        ts = self.sessions["first_ts"]
        return int(ts.min()), int(ts.max())  # type: ignore[arg-type]


def _ms(value: int | datetime | str | None, what: str) -> int | None:
    from cemreplay.store import parse_since

    try:
        return parse_since(value)
    except ConfigError as exc:
        raise ConfigError(f"{what}: {exc}") from None


# ----------------------------------------------------------------------------------------------
# Building facts from one chunk of events


def _empty(schema: Mapping[str, pl.DataType | type[pl.DataType]]) -> pl.DataFrame:
    return pl.DataFrame(schema=dict(schema))


TOUCH_SCHEMA: Final = {
    "session_id": pl.String, "page": pl.String, "field": pl.String, "focuses": pl.UInt32,
    "blurs": pl.UInt32, "changes": pl.UInt32, "time_ms": pl.Int64, "hesitation_ms": pl.Int64,
    "returns": pl.UInt32, "refills": pl.UInt32, "errors": pl.UInt32, "first_t": pl.Int64,
    "last_t": pl.Int64,
}  # fmt: skip
SUBMIT_SCHEMA: Final = {
    "session_id": pl.String, "page": pl.String, "form": pl.String, "submits": pl.UInt32,
    "completed": pl.Boolean, "first_submit_t": pl.Int64, "last_submit_t": pl.Int64,
}  # fmt: skip
SUBMIT_FIELD_SCHEMA: Final = {
    "session_id": pl.String, "page": pl.String, "form": pl.String, "field": pl.String,
    "length": pl.Int64,
}  # fmt: skip
ERROR_SCHEMA: Final = {
    "session_id": pl.String, "page": pl.String, "field": pl.String, "shape": pl.String,
    "message": pl.String, "t": pl.Int64,
}  # fmt: skip
VISIT_SCHEMA: Final = {
    "session_id": pl.String, "page": pl.String, "views": pl.UInt32, "first_t": pl.Int64,
}  # fmt: skip
DROP_SCHEMA: Final = {
    "session_id": pl.String, "unit": pl.String, "step": pl.UInt32, "at": pl.Int64,
    "last_page": pl.String, "last_field": pl.String, "last_finding": pl.String,
}  # fmt: skip
GOAL_SCHEMA: Final = {
    "session_id": pl.String, "goal": pl.String, "reached": pl.Boolean, "clicks": pl.UInt32,
    "page_views": pl.UInt32, "ms": pl.Int64,
}  # fmt: skip


def _unit_session(unit: pl.Expr) -> pl.Expr:
    """The snippet session of a split-session unit name (``<sid>`` or ``<sid>~<k>``)."""
    return unit.str.split("~").list.first()


def _form_rows(events: pl.DataFrame, urls: UrlRules) -> pl.DataFrame:
    """The form-related rows with their session, page-view ordinal and normalised page."""
    # windows run over the categoricals' physical codes (_s session, _f target): much
    # cheaper than over strings
    fe = events.filter(pl.col("kind").is_in(_FORM_KINDS)).select(
        pl.col("session_id").to_physical().alias("_s"),
        pl.col("target").to_physical().alias("_f"),
        pl.col("session_id").cast(pl.String),
        "t",
        "kind",
        "a",
        pl.col("target").cast(pl.String),
        pl.col("text").cast(pl.String),
    )
    pv = int(K.PAGE_VIEW)
    fe = fe.with_columns(
        pv=(pl.col("kind") == pv).cast(pl.UInt32).cum_sum().over("_s"),
        url=pl.when(pl.col("kind") == pv).then(pl.col("target")).forward_fill().over("_s"),
    )
    pages = fe.select(pl.col("url").unique().drop_nulls())
    pages = pages.with_columns(page=normalise(pages["url"], urls))
    return fe.join(pages, on="url", how="left").drop("url")


def _touches(fe: pl.DataFrame) -> pl.DataFrame:
    F, B, C, V = int(K.FOCUS), int(K.BLUR), int(K.CHANGE), int(K.VALIDATION_ERROR)
    kind, t, a = pl.col("kind"), pl.col("t"), pl.col("a")
    # pause before each row: since the previous form event (page view, field event) of the
    # page view
    fe = fe.with_columns(_gap=t - t.shift(1).over("_s", "pv"))
    f = fe.filter(kind.is_in([F, B, C, V]))
    key = ["_s", "_f"]
    f = f.rename({"target": "field"}).with_columns(
        _focus_t=pl.when(kind == F).then(t).forward_fill().over(key),
        _prev_blur_len=pl.when(kind == B).then(a).forward_fill().shift(1).over(key),
    )
    touch = f.filter(kind != V)
    where = ["session_id", "page", "field"]
    errs = f.filter(kind == V).group_by(where).agg(errors=pl.len().cast(pl.UInt32))
    g = touch.group_by("session_id", "page", "field").agg(
        focuses=(kind == F).sum().cast(pl.UInt32),
        blurs=(kind == B).sum().cast(pl.UInt32),
        changes=(kind == C).sum().cast(pl.UInt32),
        time_ms=pl.when(kind == B).then(t - pl.col("_focus_t")).sum().cast(pl.Int64),
        hesitation_ms=pl.col("_gap").filter(kind == F).first(),
        returns=((kind == F) & (pl.col("_prev_blur_len") > 0)).sum().cast(pl.UInt32),
        first_t=t.min(),
        last_t=t.max(),
    )
    g = g.with_columns(
        refills=(pl.col("changes").cast(pl.Int64) - 1).clip(lower_bound=0).cast(pl.UInt32)
    ).join(errs, on=where, how="left", nulls_equal=True)
    g = g.with_columns(pl.col("errors").fill_null(0))
    return g.select(list(TOUCH_SCHEMA)).cast(TOUCH_SCHEMA)  # type: ignore[arg-type]


def _submits(fe: pl.DataFrame, cfg: ReportConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    PV, S, V, M = int(K.PAGE_VIEW), int(K.SUBMIT), int(K.VALIDATION_ERROR), int(K.MILESTONE)
    kind, t = pl.col("kind"), pl.col("t")
    x = fe.with_columns(
        _next_err=pl.when(kind == V).then(t).backward_fill().over("_s"),
        _prev_err=pl.when(kind == V).then(t).forward_fill().over("_s"),
        _next_ok=pl.when(kind.is_in([PV, M])).then(t).shift(-1).backward_fill().over("_s"),
    )
    sub = x.filter(kind == S).with_columns(
        _rejected=((pl.col("_next_err") - t) <= cfg.error_window_ms).fill_null(False)
        | ((t - pl.col("_prev_err")) <= 50).fill_null(False),
    )
    sub = sub.with_columns(
        _ok=~pl.col("_rejected")
        & ((pl.col("_next_ok") - t) <= cfg.success_window_ms).fill_null(False)
    )
    submits = sub.group_by("session_id", "page", pl.col("target").alias("form")).agg(
        submits=pl.len().cast(pl.UInt32),
        completed=pl.col("_ok").any(),
        first_submit_t=t.min(),
        last_submit_t=t.max(),
    )
    # each field touch belongs to the first submit after it in its page view; per form, the
    # field's last length before its submits
    B, C, F = int(K.BLUR), int(K.CHANGE), int(K.FOCUS)
    y = fe.with_columns(
        _form=pl.when(kind == S).then(pl.col("target")).backward_fill().over("_s", "pv")
    )
    sf = y.filter(kind.is_in([F, B, C]) & pl.col("_form").is_not_null())
    sf = sf.group_by(
        "session_id", "page", pl.col("_form").alias("form"), pl.col("target").alias("field")
    ).agg(length=pl.col("a").filter(kind != F).last().fill_null(0).cast(pl.Int64))
    return (
        submits.select(list(SUBMIT_SCHEMA)).cast(SUBMIT_SCHEMA),  # type: ignore[arg-type]
        sf.select(list(SUBMIT_FIELD_SCHEMA)).cast(SUBMIT_FIELD_SCHEMA),  # type: ignore[arg-type]
    )


def _errors(fe: pl.DataFrame) -> pl.DataFrame:
    B, C, V = int(K.BLUR), int(K.CHANGE), int(K.VALIDATION_ERROR)
    kind = pl.col("kind")
    f = fe.filter(kind.is_in([B, C, V])).with_columns(
        shape=pl.when(kind != V).then(pl.col("text")).forward_fill().over("_s", "_f")
    )
    e = f.filter(kind == V).select(
        "session_id", "page", field="target", shape="shape", message="text", t="t"
    )
    return e.cast(ERROR_SCHEMA)  # type: ignore[arg-type]


def _visits(fe: pl.DataFrame) -> pl.DataFrame:
    v = (
        fe.filter(pl.col("kind") == int(K.PAGE_VIEW))
        .group_by("session_id", "page")
        .agg(views=pl.len().cast(pl.UInt32), first_t=pl.col("t").min())
    )
    return v.select(list(VISIT_SCHEMA)).cast(VISIT_SCHEMA)  # type: ignore[arg-type]


def _with_pages(findings: pl.DataFrame, urls: UrlRules) -> pl.DataFrame:
    f = findings.select(
        [pl.col(c).cast(dt) for c, dt in FINDINGS_SCHEMA.items() if c in findings.columns]
    )
    for c, dt in FINDINGS_SCHEMA.items():
        if c not in f.columns:
            f = f.with_columns(pl.lit(None, dt).alias(c))
    f = f.select(list(FINDINGS_SCHEMA))
    u = f.select(pl.col("page_url").unique().drop_nulls())
    u = u.with_columns(page=normalise(u["page_url"], urls))
    # the element: a field for form findings, else the selector (or the form); a quick
    # back's target is the page before, not an element
    return f.join(u, on="page_url", how="left").with_columns(
        element=pl.when(pl.col("kind") != "quick_back").then(pl.coalesce("field", "target"))
    )


def _session_table(events: pl.DataFrame, findings: pl.DataFrame) -> pl.DataFrame:
    from cemreplay.events import session_stats
    from cemreplay.score import score

    s = session_stats(events)
    vis = events.group_by(pl.col("session_id").cast(pl.String)).agg(
        visitor_id=pl.col("visitor_id").first().cast(pl.String)
    )
    s = s.join(vis, on="session_id", how="left")
    if findings.height:
        sc = score(findings).select(pl.col("session_id").cast(pl.String), "score")
        s = s.join(sc, on="session_id", how="left")
    else:
        s = s.with_columns(score=pl.lit(None, pl.Float64))
    s = s.with_columns(pl.col("score").fill_null(0.0))
    return s.select(list(SESSIONS_COLUMNS)).cast(SESSIONS_COLUMNS)


def facts_from_events(
    events: pl.DataFrame,
    findings: pl.DataFrame | None = None,
    *,
    sessions: pl.DataFrame | None = None,
    config: ReportConfig | None = None,
) -> Facts:
    """The facts of an event table (whole sessions, canonical order as decoded).

    Parameters
    ----------
    events : pl.DataFrame
        An event table (``EVENT_SCHEMA``); every session in it whole.
    findings : pl.DataFrame, optional
        Its findings (default: ``cemreplay.detect(events)``).
    sessions : pl.DataFrame, optional
        Its sessions index rows (the store's); default computed from the events, scored with
        ``cemreplay.score``.
    config : ReportConfig, optional
        Funnel, goals and form rules.

    Examples
    --------
    >>> import cemreplay.events as ev
    >>> facts_from_events(ev.empty()).sessions.height
    0
    """
    cfg = config or ReportConfig()
    if findings is None:
        from cemreplay.detectors import detect

        findings = detect(events) if events.height else pl.DataFrame(schema=FINDINGS_SCHEMA)
    if sessions is None:
        sessions = _session_table(events, findings)
    else:
        sessions = _conform(sessions, SESSIONS_COLUMNS)
    if events.height == 0:
        return empty_facts(cfg, sessions=sessions, findings=_with_pages(findings, cfg.urls))
    fe = _form_rows(events, cfg.urls)
    submits, submit_fields = _submits(fe, cfg)
    # the struggle before a drop-off, not the drop-off's own funnel_abandon finding
    before = findings.filter(pl.col("kind") != "funnel_abandon")
    fu = funnel(events, list(cfg.funnel), findings=before)
    units = fu.units.with_columns(session_id=_unit_session(pl.col("unit")))
    drops = fu.drops.with_columns(session_id=_unit_session(pl.col("unit")))
    goals = []
    for goal, label in zip(cfg.goals, cfg.goal_labels(), strict=True):
        g = clicks_to_goal(events, goal, max_clicks=cfg.max_clicks).units
        goals.append(g.with_columns(session_id=_unit_session(pl.col("unit")), goal=pl.lit(label)))
    return Facts(
        sessions=sessions,
        findings=_with_pages(findings, cfg.urls),
        visits=_visits(fe),
        touches=_touches(fe),
        submits=submits,
        submit_fields=submit_fields,
        errors=_errors(fe),
        funnel_units=units.select("session_id", pl.exclude("session_id")),
        funnel_drops=drops.select(list(DROP_SCHEMA)).cast(DROP_SCHEMA),  # type: ignore[arg-type]
        goals=pl.concat(goals).select(list(GOAL_SCHEMA)).cast(GOAL_SCHEMA),  # type: ignore[arg-type]
        config=cfg,
    )


def _conform(df: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    missing = [c for c in ("session_id",) if c not in df.columns]
    if missing:
        raise ConfigError(
            "sessions lack a session_id column; hint: pass the store's sessions index "
            "(store.sessions(limit=None))"
        )
    out = df.with_columns(
        pl.lit(None, dt).alias(c) for c, dt in schema.items() if c not in df.columns
    )
    return out.select(list(schema)).cast(dict(schema))  # type: ignore[arg-type]


def _funnel_units_schema(cfg: ReportConfig) -> dict[str, Any]:
    s: dict[str, Any] = {"session_id": pl.String, "unit": pl.String, "level": pl.UInt32}
    for k in range(len(cfg.funnel)):
        s[f"t{k + 1}"] = pl.Int64
    return s


def empty_facts(
    config: ReportConfig | None = None,
    *,
    sessions: pl.DataFrame | None = None,
    findings: pl.DataFrame | None = None,
) -> Facts:
    """Facts with no rows (every table with its columns)."""
    cfg = config or ReportConfig()
    fnd = findings if findings is not None else _with_pages(
        pl.DataFrame(schema=FINDINGS_SCHEMA), cfg.urls
    )  # fmt: skip
    return Facts(
        sessions=sessions if sessions is not None else _empty(SESSIONS_COLUMNS),
        findings=fnd,
        visits=_empty(VISIT_SCHEMA),
        touches=_empty(TOUCH_SCHEMA),
        submits=_empty(SUBMIT_SCHEMA),
        submit_fields=_empty(SUBMIT_FIELD_SCHEMA),
        errors=_empty(ERROR_SCHEMA),
        funnel_units=_empty(_funnel_units_schema(cfg)),
        funnel_drops=_empty(DROP_SCHEMA),
        goals=_empty(GOAL_SCHEMA),
        config=cfg,
    )


def concat_facts(parts: Iterable[Facts], config: ReportConfig | None = None) -> Facts:
    """One :class:`Facts` from the facts of disjoint chunks of sessions."""
    items = list(parts)
    cfg = config or (items[0].config if items else ReportConfig())
    if not items:
        return empty_facts(cfg)
    tables: dict[str, pl.DataFrame] = {}
    for name in items[0].tables():
        frames = [getattr(p, name) for p in items]
        tables[name] = pl.concat(frames, how="vertical_relaxed", rechunk=True)
    return Facts(**tables, config=cfg)


# ----------------------------------------------------------------------------------------------
# Facts kept in a store

#: The facts tables a store keeps per session (``analyze`` computes them with the default
#: :class:`ReportConfig`); the sessions and findings tables come from its index and findings.
STORED_TABLES: Final = (
    "visits", "touches", "submits", "submit_fields", "errors", "funnel_units", "funnel_drops",
    "goals",
)  # fmt: skip
_BLOB_VERSION: Final = 1


class FactsFormatError(CemReplayError):
    """Stored report facts cannot be read (written by another cemreplay, or damaged)."""


def facts_blob(
    events: pl.DataFrame,
    findings: pl.DataFrame,
    config: ReportConfig | None = None,
    *,
    sessions: pl.DataFrame | None = None,
) -> bytes:
    """The facts of ``events`` (whole sessions) as bytes for a store to keep.

    What :meth:`cemreplay.store.SQLiteStore.analyze` stores per analyzed chunk: the
    :data:`STORED_TABLES` of :func:`facts_from_events` (given the chunk's ``findings``, as
    the store keeps them) and, when ``sessions`` (the chunk's sessions index rows, as the
    store keeps them) is given, those rows and the findings with their pages, so that a
    report needs neither the index nor the findings table. Each table as Arrow IPC (zstd),
    in one msgpack map with a format version. :func:`from_store` reads them back
    (:func:`facts_of_blob`) instead of decoding the events again.
    """
    ids = events.select(pl.col("session_id").cast(pl.String).unique())
    f = facts_from_events(events, findings, sessions=ids, config=config)
    tables = {name: getattr(f, name) for name in STORED_TABLES}
    if sessions is not None:
        tables["sessions"] = _conform(sessions, SESSIONS_COLUMNS)
        tables["findings"] = f.findings
    out: dict[str, Any] = {"v": _BLOB_VERSION}
    for name, df in tables.items():
        buf = io.BytesIO()
        df.write_ipc(buf, compression="zstd")
        out[name] = buf.getvalue()
    return msgpack.packb(out)  # type: ignore[no-any-return]


def facts_of_blob(data: bytes, sessions: list[str] | None = None) -> dict[str, pl.DataFrame]:
    """The tables kept in ``data`` (:func:`facts_blob`: the :data:`STORED_TABLES`, and
    ``sessions`` and ``findings`` when kept), of the sessions ``sessions`` only when given."""
    try:
        got = msgpack.unpackb(data, raw=False)
        if got.get("v") != _BLOB_VERSION:
            raise ValueError(f"format version {got.get('v')!r}, expected {_BLOB_VERSION}")
        names = [*STORED_TABLES, *(n for n in ("sessions", "findings") if n in got)]
        tables = {name: pl.read_ipc(io.BytesIO(got[name])) for name in names}
    except (ValueError, KeyError, TypeError, AttributeError, pl.exceptions.PolarsError) as exc:
        raise FactsFormatError(
            f"stored report facts cannot be read: {exc}; hint: run `cemreplay analyze` with "
            "this cemreplay to rewrite them"
        ) from exc
    if sessions is not None:
        keep = pl.DataFrame({"session_id": sessions}, schema={"session_id": pl.String})
        tables = {n: df.join(keep, on="session_id", how="semi") for n, df in tables.items()}
    return tables


def _chunk_facts(
    path: str, sessions: list[str], findings: pl.DataFrame, index: pl.DataFrame,
    cfg: ReportConfig,
) -> Facts:  # fmt: skip
    """The facts of one chunk of sessions, read from the store at ``path`` (a worker's job)."""
    from cemreplay.store import open_store

    with open_store(path, create=False) as st:
        events = st.events(sessions=sessions)
    return _part(events, findings, index, cfg)


def _part(events: pl.DataFrame, fnd: pl.DataFrame, index: pl.DataFrame, cfg: ReportConfig) -> Facts:
    ids = events.select(pl.col("session_id").cast(pl.String).unique())
    part_f = fnd.join(ids, on="session_id", how="semi")
    part_s = index.join(ids, on="session_id", how="semi")
    part = facts_from_events(events, part_f, sessions=part_s, config=cfg)
    return replace(part, findings=part.findings.clear())  # the whole table is added at the end


def from_store(
    store: Any,
    *,
    config: ReportConfig | None = None,
    chunk_visitors: int = 20_000,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
    kept: bool = True,
) -> Facts:
    """The facts of a whole store.

    Reads the facts ``analyze`` kept per session (store version 4 on, computed with the
    default :class:`ReportConfig`), with the session's index row (segments, score) and
    findings as ``analyze`` stored them: no event is decoded. When some sessions have no kept
    facts for this ``config`` (analyzed before version 4, findings replaced since by
    ``save_findings``, or a config other than the default), the index and findings are read
    from the store's tables and those sessions' facts are computed from their events, a
    chunk of ``chunk_visitors`` visitors at a time, decoded and dropped after their facts
    are taken. ``workers`` > 1 reads, decodes and takes facts of such chunks
    in that many processes at once (an SQLite store only; each opens the file read-only, WAL
    lets them read together), at most two chunks per worker in flight.
    ``progress(done, total)`` is called as sessions' facts are read or computed.
    ``kept=False`` ignores the kept facts and computes every session's from its events (the
    same tables, slower: for checking and benchmarks).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be an int >= 1, got {workers!r}")
    cv = chunk_visitors
    if isinstance(cv, bool) or not isinstance(cv, int) or cv < 1:
        raise ConfigError(f"chunk_visitors must be an int >= 1, got {chunk_visitors!r}")
    cfg = config or ReportConfig()
    has_kept = all(
        hasattr(store, m)
        for m in ("facts_parts", "sessions_without_facts", "dirty_sessions", "session_count")
    )
    if not (kept and has_kept):
        index, fnd = _index_and_findings(store)
        if progress is not None:
            progress(0, index.height)
        made = _computed(store, index, fnd, cfg, chunk_visitors, workers, 0, index.height, progress)
        return replace(concat_facts(made, cfg), sessions=index, findings=_with_pages(fnd, cfg.urls))
    dirty = store.dirty_sessions()
    if dirty:
        raise _not_analyzed(dirty)
    total = store.session_count()
    done = 0
    if progress is not None:
        progress(0, total)
    parts: list[Facts] = []
    base = empty_facts(cfg)
    kept_sessions, kept_findings = [], []
    for data, n, ids in store.facts_parts(cfg.key()):
        tables = facts_of_blob(data, ids)
        s, f = tables.pop("sessions", None), tables.pop("findings", None)
        if s is not None and f is not None:
            kept_sessions.append(s)
            kept_findings.append(f)
        parts.append(replace(base, **tables))  # type: ignore[arg-type]
        done = min(total, done + n)
        if progress is not None:
            progress(done, total)
    missing = store.sessions_without_facts(cfg.key())
    if missing or len(kept_sessions) < len(parts):
        # the index and findings from the store's tables; facts of the missing from events
        index, fnd = _index_and_findings(store)
        todo = index.join(pl.DataFrame({"session_id": missing}), on="session_id", how="semi")
        parts += _computed(
            store, todo, fnd, cfg, chunk_visitors, workers, total - todo.height, total, progress
        )
        return replace(
            concat_facts(parts, cfg), sessions=index, findings=_with_pages(fnd, cfg.urls)
        )
    # in the order the store's sessions() and findings() give them
    index = pl.concat(kept_sessions).sort("first_ts", "session_id", descending=[True, False])
    found = pl.concat(kept_findings).sort("session_id", "t", "kind", maintain_order=True)
    return replace(concat_facts(parts, cfg), sessions=index, findings=found)


def _not_analyzed(n: int) -> ConfigError:
    return ConfigError(
        f"{n} session(s) in the store are not analyzed; hint: run `cemreplay analyze --db PATH` "
        "first"
    )


def _index_and_findings(store: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The store's sessions index (conformed) and findings, read whole."""
    index = store.sessions(limit=None)
    if index.height and not bool(index["analyzed"].all()):
        raise _not_analyzed(int((~index["analyzed"]).sum()))
    fnd = store.findings().with_columns(pl.col("session_id").cast(pl.String))
    return _conform(index, SESSIONS_COLUMNS), fnd


def _computed(
    store: Any, todo: pl.DataFrame, fnd: pl.DataFrame, cfg: ReportConfig, chunk_visitors: int,
    workers: int, done: int, total: int, progress: Callable[[int, int], None] | None,
) -> list[Facts]:  # fmt: skip
    """The facts of the sessions in ``todo`` (index rows) computed from their events, a
    chunk of visitors at a time."""
    vis = todo["visitor_id"].unique().sort().to_list()
    chunks = [vis[k : k + chunk_visitors] for k in range(0, len(vis), chunk_visitors)]
    ids_of = {
        v: g["session_id"].to_list()
        for (v,), g in todo.select("visitor_id", "session_id").group_by("visitor_id")
    }

    def sessions_of(c: list[str]) -> list[str]:
        return [s for v in c for s in ids_of[v]]

    parts: list[Facts] = []
    path = getattr(store, "path", None)
    if workers > 1 and path is not None and len(chunks) > 1:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

        ctx = multiprocessing.get_context("spawn")  # polars' threads do not survive a fork
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
        try:
            pending = list(reversed(chunks))
            running: dict[Future[Facts], int] = {}
            while pending or running:
                while pending and len(running) < 2 * workers:
                    ids = sessions_of(pending.pop())
                    sub = pl.DataFrame({"session_id": ids}, schema={"session_id": pl.String})
                    sub_f = fnd.join(sub, on="session_id", how="semi")
                    sub_s = todo.join(sub, on="session_id", how="semi")
                    fut = pool.submit(_chunk_facts, str(path), ids, sub_f, sub_s, cfg)
                    running[fut] = len(ids)
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    parts.append(fut.result())
                    done += running.pop(fut)
                    if progress is not None:
                        progress(done, total)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return parts
    # read and decode the next chunk in a thread while this one's facts are taken (SQLite and
    # polars release the GIL): one chunk of events ahead at most
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as ahead:
        per_chunk = [sessions_of(c) for c in chunks]
        nxt = ahead.submit(store.events, sessions=per_chunk[0]) if chunks else None
        for k in range(len(chunks)):
            assert nxt is not None
            events = nxt.result()
            nxt = None
            if k + 1 < len(chunks):
                nxt = ahead.submit(store.events, sessions=per_chunk[k + 1])
            parts.append(_part(events, fnd, todo, cfg))
            del events
            done += len(per_chunk[k])
            if progress is not None:
                progress(done, total)
    return parts
