"""URL normalisation and URL patterns, computed once per distinct URL."""

from __future__ import annotations

import re

import polars as pl

from cemreplay.journeys.rules import DEFAULT_ID_PATTERNS, Goal, UrlRules

__all__ = ["goal_mask", "normalise", "pattern_regex"]


def _collapse(path: pl.Expr, ids: str) -> pl.Expr:
    seg = pl.element()
    return (
        path.str.split("/")
        .list.eval(pl.when(seg.str.contains(ids)).then(pl.lit(":id")).otherwise(seg))
        .list.join("/")
    )


def _normalise_expr(url: pl.Expr, rules: UrlRules) -> pl.Expr:
    frag = url.str.extract(r"#(.*)$", 1)
    rest = url.str.replace(r"#.*$", "")
    query = rest.str.extract(r"\?(.*)$", 1)
    path = rest.str.replace(r"\?.*$", "")
    if not rules.keep_host:
        path = path.str.replace(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^/]*", "")
        path = pl.when(path == "").then(pl.lit("/")).otherwise(path)
    if rules.lowercase:
        path = path.str.to_lowercase()
    ids = "^(?:" + "|".join((*DEFAULT_ID_PATTERNS, *rules.id_patterns)) + ")$"
    if rules.collapse_ids:
        path = _collapse(path, ids)
    if rules.strip_trailing_slash:
        path = path.str.replace(r"(.)/+$", "${1}")
    out = path
    if rules.keep_query == ("*",):
        out = pl.when(query.is_not_null() & (query != "")).then(
            pl.concat_str(out, pl.lit("?"), query)
        ).otherwise(out)
    elif rules.keep_query:
        names = "^(?:" + "|".join(re.escape(q) for q in rules.keep_query) + ")(?:=|$)"
        kept = (
            query.str.split("&").list.eval(pl.element().filter(pl.element().str.contains(names)))
            .list.join("&")
        )
        out = pl.when(kept.is_not_null() & (kept != "")).then(
            pl.concat_str(out, pl.lit("?"), kept)
        ).otherwise(out)
    if rules.keep_hash_routes:
        route = frag.str.extract(r"^(!?/.*)$", 1)
        if rules.collapse_ids:
            route = _collapse(route, ids)
        out = pl.when(route.is_not_null()).then(
            pl.concat_str(out, pl.lit("#"), route)
        ).otherwise(out)
    return out


def normalise(urls: pl.Series, rules: UrlRules) -> pl.Series:
    """Normalised URLs (String), same length and order as ``urls``; nulls stay null.

    The work is done once per distinct URL and mapped back.
    """
    s = urls.cast(pl.String)
    if s.len() == 0:
        return s.alias(urls.name)
    distinct = s.unique().drop_nulls().to_frame("u")
    mapping = distinct.with_columns(n=_normalise_expr(pl.col("u"), rules))
    out = s.to_frame("u").join(mapping, on="u", how="left", maintain_order="left")
    return out["n"].alias(urls.name)


def pattern_regex(pattern: str) -> str:
    """A goal/step URL pattern as an anchored regular expression.

    ``re:...`` is taken as is; otherwise the text must match the whole normalised URL and
    ``*`` matches anything.
    """
    if pattern.startswith("re:"):
        return pattern[3:]
    return "^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$"


def goal_mask(goal: Goal, kind: pl.Expr, name: pl.Expr, url: pl.Expr) -> pl.Expr:
    """True where a point (page view or milestone) reaches ``goal``.

    ``name`` is the milestone name (Categorical or String), ``url`` the normalised page URL.
    """
    if goal.milestone is not None:
        return (kind == 19) & (name.cast(pl.String) == goal.milestone).fill_null(False)
    assert goal.url is not None
    return (kind == 1) & url.cast(pl.String).str.contains(pattern_regex(goal.url)).fill_null(
        False
    )
