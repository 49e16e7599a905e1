"""URL normalisation and URL patterns, computed once per distinct URL."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from cemreplay.journeys._scan import first_index
from cemreplay.journeys.rules import DEFAULT_ID_PATTERNS, Goal, UrlRules

__all__ = ["PageLookup", "normalise", "page_lookup", "pattern_regex"]


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


@dataclass(frozen=True)
class PageLookup:
    """Normalised pages of the PAGE_VIEW targets of one table, by target code.

    ``page[code]`` is an index into ``names`` (-1: no PAGE_VIEW has that target); equal
    normalised URLs share one index, so page equality is integer equality.
    """

    page: npt.NDArray[np.int64]
    names: pl.Series
    slot: npt.NDArray[np.int64]
    raw: pl.Series

    def of(self, code: npt.NDArray[np.uint32]) -> npt.NDArray[np.int64]:
        """Page index per target code (-1 for a code with no page, or NULL)."""
        c = code.astype(np.int64)
        if self.page.shape[0] == 0:
            return np.full(c.shape[0], -1, dtype=np.int64)
        ok = c < self.page.shape[0]
        return np.where(ok, self.page[np.where(ok, c, 0)], -1)

    def urls(self, code: npt.NDArray[np.uint32], valid: npt.NDArray[np.bool_]) -> pl.Series:
        """The raw URLs (String) of target codes ``code`` (null where not ``valid``)."""
        c = code.astype(np.int64)
        if self.slot.shape[0] == 0:
            return pl.Series(np.full(c.shape[0], None), dtype=pl.String)
        ok = valid & (c < self.slot.shape[0])
        idx = np.where(ok, self.slot[np.where(ok, c, 0)], -1)
        s = pl.Series(idx)
        if (idx < 0).any():
            s = s.to_frame("r").select(pl.when(pl.col("r") >= 0).then(pl.col("r"))).to_series()
        return self.raw.gather(s)

    def strings(self, idx: npt.NDArray[np.int64]) -> pl.Series:
        """The page names of ``idx`` (null for -1), as String."""
        s = pl.Series(idx)
        if (idx < 0).any():
            s = s.to_frame("r").select(pl.when(pl.col("r") >= 0).then(pl.col("r"))).to_series()
        return self.names.gather(s)

    def matching(self, goal: Goal) -> npt.NDArray[np.bool_]:
        """True per target code whose page matches ``goal.url``."""
        assert goal.url is not None
        hit = self.names.str.contains(pattern_regex(goal.url)).fill_null(False).to_numpy()
        out = np.zeros(self.page.shape[0], dtype=np.bool_)
        ok = self.page >= 0
        out[ok] = hit[self.page[ok]]
        return out


def page_lookup(
    target: pl.Series, tcode: npt.NDArray[np.uint32], at: npt.NDArray[np.int64], rules: UrlRules
) -> PageLookup:
    """Normalise each distinct ``target`` of rows ``at`` once (``tcode``: its codes).

    Look-ups are valid for the codes of those rows only.
    """
    sub = tcode[at]
    first = first_index(sub)
    present = np.flatnonzero(first >= 0)
    raw = target.gather(pl.Series(at[first[present]])).cast(pl.String)
    norm = normalise(raw, rules).alias("n")
    names = norm.unique(maintain_order=True)
    pid = (
        norm.to_frame()
        .join(names.to_frame().with_row_index("pid"), on="n", how="left",
              maintain_order="left", nulls_equal=True)["pid"]
        .to_numpy()
        .astype(np.int64)
    )  # fmt: skip
    page = np.full(first.shape[0], -1, dtype=np.int64)
    page[present] = pid
    slot = np.full(first.shape[0], -1, dtype=np.int64)
    slot[present] = np.arange(present.shape[0])
    return PageLookup(page, names, slot, raw)
