"""The report tables: struggle by page and element, forms and fields, funnels, traffic by hour,
clicks to goal. Each takes :class:`Facts` and returns a polars frame; each accepts ``where=``
(filters, as :meth:`Facts.where`) and ``by=`` (a segment column or several: the table once per
segment value, the value in front). Shares come with Wilson 95 % intervals (``_lo``, ``_hi``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

import polars as pl

from cemreplay.errors import ConfigError
from cemreplay.reports._facts import SEGMENTS, Facts
from cemreplay.reports._stats import mann_whitney_p, two_proportion_p, wilson_exprs

__all__ = [
    "abandoners_vs_completers",
    "cart_abandonment",
    "clicks_to_goal_distribution",
    "form_fields",
    "forms",
    "funnel_drops",
    "funnel_steps",
    "goal_summary",
    "segment",
    "struggle_by_element",
    "struggle_by_hour",
    "struggle_by_page",
    "traffic_by_hour",
    "validation_errors",
    "worst_sessions",
]

By = str | Sequence[str] | None
Where = Mapping[str, Any] | None
WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: Label of a segment value that is not set (direct traffic has no campaign).
NONE_LABEL: Final = "(none)"


def _segments(by: By) -> list[str]:
    cols = [by] if isinstance(by, str) else list(by or [])
    for c in cols:
        if c not in SEGMENTS:
            raise ConfigError(f"cannot break down by {c!r}; hint: by= one of {', '.join(SEGMENTS)}")
    return cols


def _run(
    facts: Facts, by: By, where: Where, table: Callable[[Facts], pl.DataFrame],
    uses: Sequence[str] | None = None,
) -> pl.DataFrame:  # fmt: skip
    """``table`` over the facts filtered by ``where``, once per segment of ``by``.

    ``uses``: the only facts tables ``table`` reads besides ``sessions`` (the others are not
    filtered or split: emptied first)."""
    if uses is not None and (where or by):
        unused = {n: df.clear() for n, df in facts.tables().items() if n not in {*uses, "sessions"}}
        facts = replace(facts, **unused)  # type: ignore[arg-type]
    if where:
        facts = facts.where(**dict(where))
    cols = _segments(by)
    if not cols:
        return table(facts)
    seg = facts.sessions.select(
        "session_id", *[pl.col(c).fill_null(NONE_LABEL) for c in cols]
    )
    parts = []
    for key, part in _partition(facts, seg, cols):
        t = table(part)
        lits = [pl.lit(v, pl.String).alias(c) for c, v in zip(cols, key, strict=True)]
        parts.append(t.with_columns(lits).select(*cols, pl.exclude(cols)))
    if not parts:
        empty = table(facts)
        return empty.with_columns(pl.lit(None, pl.String).alias(c) for c in cols).select(
            *cols, pl.exclude(cols)
        )
    return pl.concat(parts, how="diagonal_relaxed").sort(cols, maintain_order=True)


def _partition(
    facts: Facts, seg: pl.DataFrame, cols: list[str]
) -> list[tuple[tuple[Any, ...], Facts]]:
    """The facts of each segment (``seg``: session_id and the segment columns), in the order
    the segments first appear: one join per table rather than one per table and segment (as
    :meth:`Facts.only` per segment would be; the same rows in the same order)."""
    keys = [f"__seg{k}" for k in range(len(cols))]
    s = seg.rename(dict(zip(cols, keys, strict=True)))
    split: dict[str, dict[tuple[Any, ...], pl.DataFrame]] = {}
    for name, df in facts.tables().items():
        j = df.join(s, on="session_id", how="inner", maintain_order="left")
        split[name] = j.partition_by(keys, as_dict=True, include_key=False, maintain_order=True)
    out = []
    for (key,) in seg.select(pl.struct(cols).unique(maintain_order=True)).iter_rows():
        k = tuple(key[c] for c in cols)
        tables = {n: split[n].get(k, df.clear()) for n, df in facts.tables().items()}
        out.append((k, Facts(**tables, config=facts.config)))
    return out


def segment(
    table: Callable[..., pl.DataFrame], facts: Facts, by: By, **kwargs: Any
) -> pl.DataFrame:
    """``table(facts, by=by, **kwargs)``: any table broken down by segment(s).

    >>> from cemreplay.reports._facts import empty_facts
    >>> segment(funnel_steps, empty_facts(), "country").columns[:2]
    ['country', 'step']
    """
    return table(facts, by=by, **kwargs)


# -- struggle ---------------------------------------------------------------------------------


def _split(facts: Facts, split_at: int | None) -> int | None:
    if split_at is not None:
        return split_at
    span = facts.span()
    return None if span is None else (span[0] + span[1] + 1) // 2


def _watch(f: pl.DataFrame, sessions: pl.DataFrame, keys: list[str], n: int) -> pl.DataFrame:
    """The ``n`` highest-scored affected sessions per key, as a space-separated string."""
    s = f.select(*keys, "session_id").unique().join(
        sessions.select("session_id", "score"), on="session_id", how="left"
    )
    return (
        s.sort("score", "session_id", descending=[True, False])
        .group_by(keys, maintain_order=True)
        .agg(watch=pl.col("session_id").head(n).str.join(" "))
    )


def _struggle(
    facts: Facts, keys: list[str], denom: pl.DataFrame, split_at: int | None, watch: int,
    kinds: Sequence[str] | None,
) -> pl.DataFrame:  # fmt: skip
    """Findings grouped by ``keys`` with the sessions affected among ``denom`` (one row per
    session and ``keys[0]``: the sessions that could have been affected)."""
    f = facts.findings.with_columns(pl.col("page").fill_null("(unknown)"))
    if kinds is not None:
        f = f.filter(pl.col("kind").is_in(list(kinds)))
    cut = _split(facts, split_at)
    cut = 0 if cut is None else cut  # no sessions: nothing before or after
    started = facts.sessions.select("session_id", "first_ts")
    f = f.join(started, on="session_id", how="left")
    g = f.group_by(keys).agg(
        findings=pl.len().cast(pl.UInt32),
        affected=pl.col("session_id").n_unique().cast(pl.UInt32),
        _aff_after=pl.col("session_id").filter(pl.col("first_ts") >= cut).n_unique(),
        _aff_before=pl.col("session_id").filter(pl.col("first_ts") < cut).n_unique(),
        top_kind=pl.col("kind").mode().sort().first(),
    )
    d = denom.join(started, on="session_id", how="left")
    page = keys[0]
    n = d.group_by(page).agg(
        sessions=pl.col("session_id").n_unique().cast(pl.UInt32),
        _n_after=pl.col("session_id").filter(pl.col("first_ts") >= cut).n_unique(),
        _n_before=pl.col("session_id").filter(pl.col("first_ts") < cut).n_unique(),
    )
    by_kind = (
        f.group_by(*keys, "kind").agg(n=pl.len().cast(pl.UInt32))
        .pivot(on="kind", index=keys, values="n").fill_null(0)
    )  # fmt: skip
    kind_cols = sorted(c for c in by_kind.columns if c not in keys)
    g = g.join(n, on=page, how="left").with_columns(
        pl.col("sessions").fill_null(pl.col("affected")),
        pl.col("_n_after").fill_null(pl.col("_aff_after")),
        pl.col("_n_before").fill_null(pl.col("_aff_before")),
    )
    g = g.with_columns(
        # a finding on a page without a page view of it (page view 0) still counts its session
        sessions=pl.max_horizontal("sessions", "affected"),
        _n_after=pl.max_horizontal("_n_after", "_aff_after"),
        _n_before=pl.max_horizontal("_n_before", "_aff_before"),
    )
    g = g.with_columns(*wilson_exprs("affected", "sessions", "share"))
    g = g.with_columns(
        share_before=pl.when(pl.col("_n_before") > 0).then(
            pl.col("_aff_before") / pl.col("_n_before")
        ),
        share_after=pl.when(pl.col("_n_after") > 0).then(
            pl.col("_aff_after") / pl.col("_n_after")
        ),
    ).with_columns(change_pp=(pl.col("share_after") - pl.col("share_before")) * 100)
    g = g.join(by_kind, on=keys, how="left").join(
        _watch(f, facts.sessions, keys, watch), on=keys, how="left"
    )
    cols = [
        *keys, "sessions", "affected", "share", "share_lo", "share_hi", "findings", "top_kind",
        *kind_cols, "share_before", "share_after", "change_pp", "watch",
    ]  # fmt: skip
    order = [True, True] + [False] * len(keys)
    return g.select(cols).sort(["affected", "findings", *keys], descending=order)


def struggle_by_page(
    facts: Facts,
    *,
    by: By = None,
    where: Where = None,
    split_at: int | None = None,
    kinds: Sequence[str] | None = None,
    watch: int = 3,
) -> pl.DataFrame:
    """Struggle per page: where visitors struggle.

    Columns: ``page``; ``sessions`` that viewed it; ``affected`` (sessions with a finding on
    it), ``share`` = affected / sessions with its Wilson interval; ``findings``; ``top_kind``;
    one count column per finding kind; ``share_before``/``share_after`` the share among
    sessions that started before/after ``split_at`` (default: the middle of the data's span;
    give a release time to compare before and after it) and ``change_pp`` their difference
    in percentage points; ``watch``: the highest-scored affected sessions (space-separated).

    >>> from cemreplay.reports._facts import empty_facts
    >>> struggle_by_page(empty_facts()).columns[:3]
    ['page', 'sessions', 'affected']
    """
    return _run(
        facts, by, where,
        lambda f: _struggle(f, ["page"], f.visits.select("session_id", "page"), split_at,
                            watch, kinds),
    )  # fmt: skip


def struggle_by_element(
    facts: Facts,
    *,
    by: By = None,
    where: Where = None,
    split_at: int | None = None,
    kinds: Sequence[str] | None = None,
    watch: int = 3,
) -> pl.DataFrame:
    """Struggle per element (selector, or field for form findings) and page: what visitors
    struggle with. Columns as :func:`struggle_by_page`, with ``element`` after ``page``;
    ``share`` is among the sessions that viewed the page. ``kinds`` keeps some finding
    kinds only (``["rage_click"]``)."""
    return _run(
        facts, by, where,
        lambda f: _struggle(
            replace(f, findings=f.findings.filter(pl.col("element").is_not_null())),
            ["page", "element"], f.visits.select("session_id", "page"), split_at, watch, kinds,
        ),
    )  # fmt: skip


def worst_sessions(facts: Facts, n: int = 20, *, where: Where = None) -> pl.DataFrame:
    """The ``n`` sessions with the highest struggle score, to watch first: ids, score, start,
    segments, pages, findings and a summary of their kinds (``rage_click x2, ...``)."""
    if where:
        facts = facts.where(**dict(where))
    top = facts.sessions.filter(pl.col("score") > 0).sort(
        "score", "session_id", descending=[True, False]
    ).head(n)
    kinds = (
        facts.findings.join(top.select("session_id"), on="session_id", how="semi")
        .group_by("session_id", "kind").agg(n=pl.len())
        .sort("n", "kind", descending=[True, False])
        .group_by("session_id", maintain_order=True)
        .agg(
            findings=pl.col("n").sum().cast(pl.UInt32),
            kinds=pl.format("{} x{}", "kind", "n").str.join(", "),
        )
    )  # fmt: skip
    return top.join(kinds, on="session_id", how="left").select(
        "session_id", "visitor_id", "score", "first_ts", "country", "device", "campaign",
        "locale", "pages", "findings", "kinds",
    ).sort("score", "session_id", descending=[True, False])  # fmt: skip


# -- forms --------------------------------------------------------------------------------------


def _field_forms_of(facts: Facts) -> pl.DataFrame:
    """Which form each (page, field) belongs to: the form it was most often submitted with in
    one page view; a field never submitted belongs to ``(unsent) <page>``."""
    sf = facts.submit_fields.group_by("page", "field", "form").agg(n=pl.len())
    best = sf.sort("n", "form", descending=[True, False]).group_by(
        "page", "field", maintain_order=True
    ).agg(form=pl.col("form").first())
    touched = facts.touches.select("page", "field").unique()
    out = touched.join(best, on=["page", "field"], how="left").with_columns(
        form=pl.coalesce("form", pl.format("(unsent) {}", pl.col("page").fill_null("?")))
    )
    return pl.concat([out, best.select(out.columns)]).unique(["page", "field"])


_MEMO: dict[tuple[int, str], pl.DataFrame] = {}


def _memo(facts: Facts, fn: Callable[[Facts], pl.DataFrame]) -> pl.DataFrame:
    """``fn(facts)``, computed once per facts object (several tables share these frames)."""
    key = (id(facts), fn.__name__)
    got = _MEMO.get(key)
    if got is None:
        got = _MEMO[key] = fn(facts)
        weakref.finalize(facts, _MEMO.pop, key, None)
    return got


def _form_sessions(facts: Facts) -> pl.DataFrame:
    return _memo(facts, _form_sessions_of)


def _field_forms(facts: Facts) -> pl.DataFrame:
    return _memo(facts, _field_forms_of)


def _form_sessions_of(facts: Facts) -> pl.DataFrame:
    """One row per session and form: viewed, started, submits, completed, first/last touch,
    the last field touched (the drop-off field when abandoned), completion time."""
    ff = _field_forms(facts)
    t = facts.touches.join(ff, on=["page", "field"], how="left")
    started = t.sort("last_t", "field").group_by("session_id", "form").agg(
        first_touch=pl.col("first_t").min(),
        last_touch=pl.col("last_t").max(),
        last_field=pl.col("field").last(),
    )
    sub = facts.submits.group_by("session_id", "form").agg(
        submits=pl.col("submits").sum(),
        completed=pl.col("completed").any(),
        last_submit_t=pl.col("last_submit_t").max(),
    )
    pages = pl.concat(
        [ff.select("form", "page"), facts.submits.select("form", "page")]
    ).unique()
    viewed = facts.visits.select("session_id", "page").join(pages, on="page").select(
        "session_id", "form"
    ).unique()
    keys = ["session_id", "form"]
    s = (
        viewed.join(started, on=keys, how="full", coalesce=True)
        .join(sub, on=keys, how="full", coalesce=True)
    )
    return s.with_columns(
        started=pl.col("first_touch").is_not_null(),
        submits=pl.col("submits").fill_null(0),
        completed=pl.col("completed").fill_null(False),
    ).with_columns(
        abandoned=pl.col("started") & ~pl.col("completed"),
        complete_ms=pl.when(pl.col("completed") & pl.col("started")).then(
            pl.col("last_submit_t") - pl.col("first_touch")
        ),
    )


def _forms(facts: Facts) -> pl.DataFrame:
    s = _form_sessions(facts)
    g = s.group_by("form").agg(
        views=pl.len().cast(pl.UInt32),
        starters=pl.col("started").sum().cast(pl.UInt32),
        submitters=(pl.col("submits") >= 1).sum().cast(pl.UInt32),
        resubmitters=(pl.col("submits") >= 2).sum().cast(pl.UInt32),
        completions=pl.col("completed").sum().cast(pl.UInt32),
        abandons=pl.col("abandoned").sum().cast(pl.UInt32),
        median_complete_ms=pl.col("complete_ms").median(),
    )
    drop = (
        s.filter(pl.col("abandoned")).group_by("form", "last_field").agg(n=pl.len())
        .sort("n", "last_field", descending=[True, False])
        .group_by("form", maintain_order=True)
        .agg(drop_off_field=pl.col("last_field").first(), _drop_n=pl.col("n").first())
    )  # fmt: skip
    g = g.join(drop, on="form", how="left").with_columns(
        drop_off_share=pl.when(pl.col("abandons") > 0).then(
            pl.col("_drop_n") / pl.col("abandons")
        )
    )
    g = g.with_columns(
        *wilson_exprs("starters", "views", "start_rate"),
        *wilson_exprs("completions", "starters", "completion_rate"),
    )
    return g.select(
        "form", "views", "starters", "submitters", "resubmitters", "completions", "abandons",
        "start_rate", "start_rate_lo", "start_rate_hi", "completion_rate", "completion_rate_lo",
        "completion_rate_hi", "drop_off_field", "drop_off_share", "median_complete_ms",
    ).sort("starters", "form", descending=[True, False])  # fmt: skip


def forms(facts: Facts, *, by: By = None, where: Where = None) -> pl.DataFrame:
    """Form analytics per form, with the Matomo Form Analytics and Zuko definitions.

    ``views``: sessions that viewed a page of the form; ``starters``: sessions that focused or
    changed one of its fields; ``submitters``: sessions that submitted it at least once,
    ``resubmitters`` at least twice; ``completions``: sessions with a submit that was not
    rejected (no validation error within ``error_window_ms``) and was followed by a page view
    or milestone within ``success_window_ms``; ``abandons``: starters without a completion;
    ``start_rate`` = starters / views and ``completion_rate`` = completions / starters, each
    with its Wilson interval; ``drop_off_field``: the field most abandoners touched last, and
    ``drop_off_share`` its share of the abandons; ``median_complete_ms``: first touch to the
    last submit, completers. A field belongs to the form it is submitted with (see
    docs/reports.md).

    >>> from cemreplay.reports._facts import empty_facts
    >>> forms(empty_facts()).height
    0
    """
    return _run(facts, by, where, _forms)


def _form_fields(facts: Facts, form: str | None) -> pl.DataFrame:
    ff = _field_forms(facts)
    s = _form_sessions(facts)
    if form is not None:
        ff = ff.filter(pl.col("form") == form)
        s = s.filter(pl.col("form") == form)
    t = facts.touches.join(ff, on=["page", "field"], how="inner")
    per = t.group_by("session_id", "form", "field").agg(
        focuses=pl.col("focuses").sum(),
        time_ms=pl.col("time_ms").sum(),
        hesitation_ms=pl.col("hesitation_ms").min(),
        returns=pl.col("returns").sum(),
        refills=pl.col("refills").sum(),
        errors=pl.col("errors").sum(),
    )
    g = per.group_by("form", "field").agg(
        starters=pl.len().cast(pl.UInt32),
        median_time_ms=pl.col("time_ms").median(),
        median_hesitation_ms=pl.col("hesitation_ms").median(),
        returns=pl.col("returns").sum().cast(pl.UInt32),
        sessions_returning=(pl.col("returns") > 0).sum().cast(pl.UInt32),
        refills=pl.col("refills").sum().cast(pl.UInt32),
        errors=pl.col("errors").sum().cast(pl.UInt32),
        sessions_with_errors=(pl.col("errors") > 0).sum().cast(pl.UInt32),
    )
    aband = s.filter(pl.col("abandoned"))
    n_ab = aband.group_by("form").agg(_abandons=pl.len())
    drops = aband.group_by("form", pl.col("last_field").alias("field")).agg(
        drop_offs=pl.len().cast(pl.UInt32)
    )
    # blank on submit: sessions that submitted the form on a page where the field belongs to
    # it, with the field empty or untouched before the submit
    expected = facts.submits.select("session_id", "page", "form").unique().join(
        ff, on=["page", "form"], how="inner"
    )
    if form is not None:
        expected = expected.filter(pl.col("form") == form)
    filled = facts.submit_fields.filter(pl.col("length") > 0).select(
        "session_id", "page", "form", "field"
    ).unique()
    expected = expected.join(
        filled.with_columns(_f=pl.lit(True)), on=["session_id", "page", "form", "field"],
        how="left",
    )  # fmt: skip
    n_sub = (
        expected.group_by("form", "field", "session_id")
        .agg(_filled=pl.col("_f").fill_null(False).all())
        .group_by("form", "field")
        .agg(_submitters=pl.len(), _filled=pl.col("_filled").sum())
    )
    g = (
        g.join(drops, on=["form", "field"], how="left")
        .join(n_ab, on="form", how="left")
        .join(n_sub, on=["form", "field"], how="left")
        .with_columns(
            pl.col("drop_offs").fill_null(0),
            pl.col("_abandons").fill_null(0),
            pl.col("_submitters").fill_null(0),
            pl.col("_filled").fill_null(0),
        )
    )
    g = g.with_columns(
        drop_off_share=pl.when(pl.col("_abandons") > 0).then(
            pl.col("drop_offs") / pl.col("_abandons")
        ),
        blank_on_submit=(pl.col("_submitters") - pl.col("_filled")).clip(lower_bound=0)
        .cast(pl.UInt32),
    ).with_columns(
        *wilson_exprs("blank_on_submit", "_submitters", "blank_on_submit_share"),
        *wilson_exprs("sessions_with_errors", "starters", "error_rate"),
    )
    return g.select(
        "form", "field", "starters", "median_time_ms", "median_hesitation_ms", "returns",
        "sessions_returning", "refills", "errors", "sessions_with_errors", "error_rate",
        "error_rate_lo", "error_rate_hi", "drop_offs", "drop_off_share", "blank_on_submit",
        "blank_on_submit_share", "blank_on_submit_share_lo", "blank_on_submit_share_hi",
    ).sort("form", "drop_offs", "field", descending=[False, True, False])  # fmt: skip


def form_fields(
    facts: Facts, form: str | None = None, *, by: By = None, where: Where = None
) -> pl.DataFrame:
    """Form analytics per field (of ``form``, default every form).

    ``starters``: sessions that touched it; ``median_time_ms``: focus to blur, summed per
    session; ``median_hesitation_ms``: the pause before its first focus (since the page view
    or the previous form event); ``returns`` (Zuko's field returns: a focus after leaving it
    filled) and ``sessions_returning``; ``refills`` (Matomo's amendments: each change after
    the first); ``errors`` and ``sessions_with_errors``, ``error_rate`` with its interval;
    ``drop_offs``: abandoners who touched it last, ``drop_off_share`` of the form's abandons;
    ``blank_on_submit``: sessions that submitted the form where the field is (on a page where
    it belongs to the form) and left it empty or untouched, and their share of those.
    """
    return _run(facts, by, where, lambda f: _form_fields(f, form))


def _top(col: str, n: int) -> pl.Expr:
    return pl.format("{} ({})", col, "_n").head(n).str.join("; ")


def _validation_errors(facts: Facts, top: int) -> pl.DataFrame:
    ff = _field_forms(facts)
    e = facts.errors.join(ff, on=["page", "field"], how="left").with_columns(
        pl.col("form").fill_null("(unsent) " + pl.col("page").fill_null("?")),
        pl.col("shape").fill_null("(empty)"),
        pl.col("message").fill_null("(no message)"),
    )
    g = e.group_by("form", "field").agg(
        errors=pl.len().cast(pl.UInt32),
        sessions=pl.col("session_id").n_unique().cast(pl.UInt32),
    )
    tops = []
    for col in ("shape", "message"):
        c = (
            e.group_by("form", "field", col).agg(_n=pl.len())
            .sort("_n", col, descending=[True, False])
            .group_by("form", "field", maintain_order=True)
            .agg(_top(col, top).alias(f"top_{col}s"))
        )  # fmt: skip
        tops.append(c)
    for c in tops:
        g = g.join(c, on=["form", "field"], how="left")
    return g.sort("errors", "form", "field", descending=[True, False, False])


def validation_errors(
    facts: Facts, top: int = 3, *, by: By = None, where: Where = None
) -> pl.DataFrame:
    """Validation errors per form and field: ``errors``, ``sessions``, the ``top`` most common
    masked shapes of what was typed (``+99 999 99 999 (41)``: the shape from the field's last
    change before the error, never a value) and messages."""
    return _run(facts, by, where, lambda f: _validation_errors(f, top))


def _abandoners_vs_completers(facts: Facts, form: str | None) -> pl.DataFrame:
    s = _form_sessions(facts).filter(pl.col("started"))
    if form is not None:
        s = s.filter(pl.col("form") == form)
    ff = _field_forms(facts)
    t = facts.touches.join(ff, on=["page", "field"], how="inner").group_by(
        "session_id", "form", "field"
    ).agg(time_ms=pl.col("time_ms").sum(), errors=pl.col("errors").sum())
    groups = s.select("session_id", "form", "abandoned")
    t = t.join(groups, on=["session_id", "form"], how="inner")
    sizes = groups.group_by("form").agg(
        n_abandoners=pl.col("abandoned").sum(), n_completers=(~pl.col("abandoned")).sum()
    )
    rows: list[dict[str, Any]] = []
    for (frm, fld), part in t.group_by("form", "field", maintain_order=True):
        size = sizes.filter(pl.col("form") == frm)
        na, nc = int(size["n_abandoners"][0]), int(size["n_completers"][0])
        ab = part.filter(pl.col("abandoned"))
        co = part.filter(~pl.col("abandoned"))
        ea = int((ab["errors"] > 0).sum())
        ec = int((co["errors"] > 0).sum())
        rows.append(
            {
                "form": frm, "field": fld, "abandoners": na, "completers": nc,
                "touched_abandoners": ab.height, "touched_completers": co.height,
                "error_rate_abandoners": ea / na if na else None,
                "error_rate_completers": ec / nc if nc else None,
                "p_errors": two_proportion_p(ea, na, ec, nc),
                "median_time_ms_abandoners": ab["time_ms"].median(),
                "median_time_ms_completers": co["time_ms"].median(),
                "p_time": mann_whitney_p(ab["time_ms"].to_numpy(), co["time_ms"].to_numpy()),
            }
        )  # fmt: skip
    schema = {
        "form": pl.String, "field": pl.String, "abandoners": pl.Int64, "completers": pl.Int64,
        "touched_abandoners": pl.Int64, "touched_completers": pl.Int64,
        "error_rate_abandoners": pl.Float64, "error_rate_completers": pl.Float64,
        "p_errors": pl.Float64, "median_time_ms_abandoners": pl.Float64,
        "median_time_ms_completers": pl.Float64, "p_time": pl.Float64,
    }  # fmt: skip
    out = pl.DataFrame(rows, schema=schema)
    return out.sort("p_errors", "form", "field", nulls_last=True)


def abandoners_vs_completers(
    facts: Facts, form: str | None = None, *, by: By = None, where: Where = None
) -> pl.DataFrame:
    """How abandoners and completers of a form differ, per field, with significance tests.

    Per form and field: group sizes; the share of each group that got a validation error on
    the field and the two-sided p-value of a pooled two-proportion z-test (``p_errors``);
    the median time in the field of each group (of those who touched it) and the
    Mann-Whitney U p-value (``p_time``). Sorted by ``p_errors``: the field that separates the
    groups best comes first. Needs scipy (``pip install 'cemreplay[report]'``).
    """
    return _run(facts, by, where, lambda f: _abandoners_vs_completers(f, form))


# -- funnels ------------------------------------------------------------------------------------


def _labels(facts: Facts) -> list[str]:
    from cemreplay.journeys import Goal

    return [s.label if isinstance(s, Goal) else s for s in facts.config.funnel]


def _funnel_steps(facts: Facts) -> pl.DataFrame:
    names = _labels(facts)
    n = len(names)
    u = facts.funnel_units
    rows = []
    for k in range(n):
        entered = u.filter(pl.col("level") >= k + 1)
        conv = u.filter(pl.col("level") >= min(k + 2, n))
        to_next = None
        if k + 1 < n and conv.height:
            to_next = (conv[f"t{k + 2}"] - conv[f"t{k + 1}"]).median()
        rows.append(
            {
                "step": k + 1, "name": names[k], "entered": entered.height,
                "converted": conv.height, "dropped": entered.height - conv.height,
                "median_ms_to_next": to_next,
            }
        )  # fmt: skip
    t = pl.DataFrame(
        rows,
        schema={"step": pl.UInt32, "name": pl.String, "entered": pl.UInt32,
                "converted": pl.UInt32, "dropped": pl.UInt32, "median_ms_to_next": pl.Float64},
    )  # fmt: skip
    return t.with_columns(*wilson_exprs("converted", "entered", "conversion")).select(
        "step", "name", "entered", "converted", "dropped", "conversion", "conversion_lo",
        "conversion_hi", "median_ms_to_next",
    )  # fmt: skip


def funnel_steps(facts: Facts, *, by: By = None, where: Where = None) -> pl.DataFrame:
    """The funnel (``ReportConfig.funnel``) per step: ``entered``, ``converted`` (went on to
    the next step), ``dropped``, ``conversion`` with its Wilson interval,
    ``median_ms_to_next``."""
    return _run(facts, by, where, _funnel_steps)


def _funnel_drops(facts: Facts, top: int) -> pl.DataFrame:
    names = _labels(facts)
    d = facts.funnel_drops.with_columns(
        name=pl.col("step").map_elements(lambda s: names[int(s) - 1], return_dtype=pl.String)
        if facts.funnel_drops.height
        else pl.lit(None, pl.String),
        last_finding=pl.col("last_finding").fill_null("(none)"),
        last_field=pl.col("last_field").fill_null("(none)"),
        last_page=pl.col("last_page").fill_null("(none)"),
    )
    per_step = d.group_by("step").agg(_step_drops=pl.len())
    g = d.group_by("step", "name", "last_page", "last_field", "last_finding").agg(
        sessions=pl.len().cast(pl.UInt32),
        watch=pl.col("session_id").sort().head(top).str.join(" "),
    )
    g = g.join(per_step, on="step", how="left").with_columns(
        *wilson_exprs("sessions", "_step_drops", "share_of_step")
    )
    return g.select(
        "step", "name", "last_page", "last_field", "last_finding", "sessions", "share_of_step",
        "share_of_step_lo", "share_of_step_hi", "watch",
    ).sort(
        "step", "sessions", "last_finding", "last_field", "last_page",
        descending=[False, True, False, False, False],
    )  # fmt: skip


def funnel_drops(
    facts: Facts, *, by: By = None, where: Where = None, watch: int = 3
) -> pl.DataFrame:
    """What preceded each drop-off: per step dropped at and (last page, last field, last
    finding before leaving), the ``sessions`` and their share of that step's drop-offs, with
    sessions to watch."""
    return _run(facts, by, where, lambda f: _funnel_drops(f, watch))


def _counts(values: pl.Series) -> pl.DataFrame:
    """Value counts, most common first, ties by value (whatever the rows' order)."""
    c = values.value_counts()
    return c.sort(["count", values.name], descending=[True, False])


def _cart_abandonment(facts: Facts) -> pl.DataFrame:
    n = len(facts.config.funnel)
    u = facts.funnel_units
    carts = u.height
    done = int((u["level"] >= n).sum()) if carts else 0
    d = facts.funnel_drops

    def top(col: str) -> tuple[str | None, float | None]:
        """The most common non-null value among the drops and its share of all drops."""
        c = _counts(d[col].drop_nulls())
        if c.height == 0:
            return None, None
        return str(c[0, 0]), float(c[0, 1] / d.height)

    names = _labels(facts)
    step, step_share = (None, None)
    if d.height:
        s = _counts(d["step"])
        step, step_share = names[int(s[0, 0]) - 1], float(s[0, 1] / d.height)
    finding, finding_share = top("last_finding")
    fld, fld_share = top("last_field")
    t = pl.DataFrame(
        {
            "carts": [carts], "abandoned": [carts - done],
            "top_step": [step], "top_step_share": [step_share],
            "top_finding": [finding], "top_finding_share": [finding_share],
            "top_field": [fld], "top_field_share": [fld_share],
        },
        schema={"carts": pl.UInt32, "abandoned": pl.UInt32, "top_step": pl.String,
                "top_step_share": pl.Float64, "top_finding": pl.String,
                "top_finding_share": pl.Float64, "top_field": pl.String,
                "top_field_share": pl.Float64},
    )  # fmt: skip
    t = t.with_columns(*wilson_exprs("abandoned", "carts", "abandon_rate"))
    return t.select(
        "carts", "abandoned", "abandon_rate", "abandon_rate_lo", "abandon_rate_hi", "top_step",
        "top_step_share", "top_finding", "top_finding_share", "top_field", "top_field_share",
    )  # fmt: skip


def cart_abandonment(facts: Facts, *, by: By = None, where: Where = None) -> pl.DataFrame:
    """Sessions that entered the funnel (the cart) and did not finish it, in one row per
    segment: ``carts``, ``abandoned``, ``abandon_rate`` with its Wilson interval, the step most
    left at, and the most common last finding and last field before leaving (among the
    abandons that had one), with their shares of all the abandons.

    "How many carts did Norwegian visitors from the spring promotion abandon, and what went
    wrong" is ``cart_abandonment(facts, where={"country": "NO", "campaign": "spring-promo"})``.
    """
    return _run(facts, by, where, _cart_abandonment, uses=("funnel_units", "funnel_drops"))


# -- time ---------------------------------------------------------------------------------------


def _local(facts: Facts, tz: str) -> pl.DataFrame:
    try:
        ts = pl.from_epoch(facts.sessions["first_ts"], time_unit="ms").dt.replace_time_zone(
            "UTC"
        ).dt.convert_time_zone(tz)
    except Exception as exc:  # polars raises ComputeError for an unknown zone
        raise ConfigError(
            f"unknown time zone {tz!r}; hint: an IANA name such as Europe/Oslo"
        ) from exc
    return facts.sessions.select("session_id", "score").with_columns(
        weekday=ts.dt.weekday().cast(pl.UInt8), hour=ts.dt.hour().cast(pl.UInt8)
    )


def traffic_by_hour(
    facts: Facts, *, tz: str = "UTC", by: By = None, where: Where = None
) -> pl.DataFrame:
    """Sessions started per weekday (1 = Monday ... 7 = Sunday, ``day`` its name) and hour
    of day in ``tz``: when visitors are on the site, to staff support hours. Every one of the
    168 cells is present (0 when empty)."""

    def table(f: Facts) -> pl.DataFrame:
        s = _local(f, tz)
        grid = pl.DataFrame({"weekday": list(range(1, 8))}, schema={"weekday": pl.UInt8}).join(
            pl.DataFrame({"hour": list(range(24))}, schema={"hour": pl.UInt8}), how="cross"
        )
        c = s.group_by("weekday", "hour").agg(sessions=pl.len().cast(pl.UInt32))
        out = grid.join(c, on=["weekday", "hour"], how="left").with_columns(
            pl.col("sessions").fill_null(0),
            day=pl.col("weekday").map_elements(lambda d: WEEKDAYS[d - 1], return_dtype=pl.String),
        )
        return out.select("weekday", "day", "hour", "sessions").sort("weekday", "hour")

    return _run(facts, by, where, table)


def struggle_by_hour(
    facts: Facts, *, tz: str = "UTC", by: By = None, where: Where = None
) -> pl.DataFrame:
    """Per hour of day (``tz``): sessions, ``struggling`` (sessions with a finding), their
    ``share`` with its Wilson interval, findings and the mean struggle score."""

    def table(f: Facts) -> pl.DataFrame:
        s = _local(f, tz)
        with_f = f.findings.group_by("session_id").agg(_n=pl.len())
        s = s.join(with_f, on="session_id", how="left").with_columns(pl.col("_n").fill_null(0))
        g = s.group_by("hour").agg(
            sessions=pl.len().cast(pl.UInt32),
            struggling=(pl.col("_n") > 0).sum().cast(pl.UInt32),
            findings=pl.col("_n").sum().cast(pl.UInt32),
            mean_score=pl.col("score").mean(),
        )
        grid = pl.DataFrame({"hour": list(range(24))}, schema={"hour": pl.UInt8})
        g = grid.join(g, on="hour", how="left").with_columns(
            pl.col("sessions", "struggling", "findings").fill_null(0)
        )
        return g.with_columns(*wilson_exprs("struggling", "sessions", "share")).select(
            "hour", "sessions", "struggling", "share", "share_lo", "share_hi", "findings",
            "mean_score",
        ).sort("hour")  # fmt: skip

    return _run(facts, by, where, table)


# -- clicks to goal -------------------------------------------------------------------------------


def clicks_to_goal_distribution(
    facts: Facts, *, cap: int = 20, by: By = None, where: Where = None
) -> pl.DataFrame:
    """How many clicks sessions that reached each goal needed: per goal and click count
    (``cap`` and more counted as ``cap``), ``sessions``, ``share`` and ``cumulative`` share of
    the sessions that reached it."""

    def table(f: Facts) -> pl.DataFrame:
        g = f.goals.filter(pl.col("reached")).with_columns(
            clicks=pl.col("clicks").clip(upper_bound=cap)
        )
        c = g.group_by("goal", "clicks").agg(sessions=pl.len().cast(pl.UInt32)).sort(
            "goal", "clicks"
        )
        return c.with_columns(
            share=pl.col("sessions") / pl.col("sessions").sum().over("goal"),
        ).with_columns(cumulative=pl.col("share").cum_sum().over("goal"))

    return _run(facts, by, where, table)


def goal_summary(facts: Facts, *, by: By = None, where: Where = None) -> pl.DataFrame:
    """Per goal: ``sessions``, ``reached``, ``reach_rate``, median and 90th-percentile clicks
    and time of those who reached it, and ``within_max_clicks``: the share of them that needed
    at most ``ReportConfig.max_clicks`` clicks (is three clicks enough?), with intervals."""
    budget = facts.config.max_clicks

    def table(f: Facts) -> pl.DataFrame:
        g = f.goals.group_by("goal", maintain_order=True).agg(
            sessions=pl.len().cast(pl.UInt32),
            reached=pl.col("reached").sum().cast(pl.UInt32),
            within=(pl.col("reached") & (pl.col("clicks") <= budget)).sum().cast(pl.UInt32),
            median_clicks=pl.col("clicks").filter(pl.col("reached")).median(),
            p90_clicks=pl.col("clicks").filter(pl.col("reached")).quantile(0.9, "nearest"),
            median_ms=pl.col("ms").filter(pl.col("reached")).median(),
        )
        return g.with_columns(
            *wilson_exprs("reached", "sessions", "reach_rate"),
            *wilson_exprs("within", "reached", "within_max_clicks"),
            max_clicks=pl.lit(budget, pl.UInt32),
        ).select(
            "goal", "sessions", "reached", "reach_rate", "reach_rate_lo", "reach_rate_hi",
            "median_clicks", "p90_clicks", "median_ms", "max_clicks", "within_max_clicks",
            "within_max_clicks_lo", "within_max_clicks_hi",
        )  # fmt: skip

    return _run(facts, by, where, table)
