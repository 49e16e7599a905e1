"""Detectors: turn the event table into findings, each explained in numbers.

One module per kind of finding, each with a frozen config dataclass whose defaults cite their
source, all registered in :data:`REGISTRY`; :func:`detect` runs them over a whole event table
at once. See ``docs/detectors.md`` for the rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import polars as pl

from cemreplay.detectors import (  # noqa: F401 - importing a detector registers it
    dead_click,
    error_click,
    excessive_scroll,
    failed_submit,
    field_refill,
    form_abandon,
    form_error,
    funnel_abandon,
    quick_back,
    rage_click,
    thrashed_cursor,
)
from cemreplay.detectors._base import (
    REGISTRY,
    Context,
    assemble,
    assemble_all,
    prepare,
)
from cemreplay.detectors.baselines import Baselines
from cemreplay.detectors.dead_click import DeadClickConfig
from cemreplay.detectors.error_click import ErrorClickConfig
from cemreplay.detectors.excessive_scroll import ExcessiveScrollConfig
from cemreplay.detectors.failed_submit import FailedSubmitConfig
from cemreplay.detectors.field_refill import FieldRefillConfig
from cemreplay.detectors.form_abandon import FormAbandonConfig
from cemreplay.detectors.form_error import FormErrorConfig
from cemreplay.detectors.funnel_abandon import FunnelAbandonConfig
from cemreplay.detectors.quick_back import QuickBackConfig
from cemreplay.detectors.rage_click import RageClickConfig
from cemreplay.detectors.thrashed_cursor import ThrashedCursorConfig
from cemreplay.errors import ConfigError
from cemreplay.schema import FINDING_KINDS, FINDINGS_SCHEMA

__all__ = [
    "DEFERRED",
    "FINDINGS_SCHEMA",
    "KINDS",
    "REGISTRY",
    "UNKNOWN",
    "Baselines",
    "Config",
    "DeadClickConfig",
    "ErrorClickConfig",
    "ExcessiveScrollConfig",
    "FailedSubmitConfig",
    "FieldRefillConfig",
    "FormAbandonConfig",
    "FormErrorConfig",
    "FunnelAbandonConfig",
    "QuickBackConfig",
    "RageClickConfig",
    "Split",
    "ThrashedCursorConfig",
    "detect",
    "detect_prepared",
    "detect_split",
]

#: The kinds of finding, in the order detectors run (see cemreplay.schema.FINDING_KINDS).
KINDS: tuple[str, ...] = FINDING_KINDS
#: The kind of a click that may be dead in a session that captured no response signals.
UNKNOWN = "unknown"

assert set(KINDS) == set(REGISTRY), "every detector module registers itself"


@dataclass(frozen=True)
class Config:
    """The configuration of every detector, one field per kind (defaults everywhere)."""

    rage_click: RageClickConfig = field(default_factory=RageClickConfig)
    dead_click: DeadClickConfig = field(default_factory=DeadClickConfig)
    error_click: ErrorClickConfig = field(default_factory=ErrorClickConfig)
    thrashed_cursor: ThrashedCursorConfig = field(default_factory=ThrashedCursorConfig)
    excessive_scroll: ExcessiveScrollConfig = field(default_factory=ExcessiveScrollConfig)
    quick_back: QuickBackConfig = field(default_factory=QuickBackConfig)
    form_error: FormErrorConfig = field(default_factory=FormErrorConfig)
    failed_submit: FailedSubmitConfig = field(default_factory=FailedSubmitConfig)
    field_refill: FieldRefillConfig = field(default_factory=FieldRefillConfig)
    form_abandon: FormAbandonConfig = field(default_factory=FormAbandonConfig)
    funnel_abandon: FunnelAbandonConfig = field(default_factory=FunnelAbandonConfig)

    def __post_init__(self) -> None:
        for f in fields(self):
            want = REGISTRY[f.name].config
            got = getattr(self, f.name)
            if not isinstance(got, want):
                raise ConfigError(
                    f"Config.{f.name} must be a {want.__name__}, got {type(got).__name__}; "
                    f"hint: Config({f.name}={want.__name__}(...))"
                )

    @classmethod
    def of(cls, config: Config | Mapping[str, Any] | None) -> Config:
        """A Config from None, a Config, or a mapping of kind -> detector config."""
        if config is None:
            return cls()
        if isinstance(config, Config):
            return config
        if isinstance(config, Mapping):
            unknown = sorted(set(config) - set(KINDS))
            if unknown:
                raise ConfigError(
                    f"unknown detector kind(s) in config: {', '.join(map(str, unknown))}; "
                    f"hint: kinds are {', '.join(KINDS)}"
                )
            return cls(**dict(config))
        raise ConfigError(
            f"config must be a cemreplay.detectors.Config, a mapping or None, got "
            f"{type(config).__name__}; hint: Config(rage_click=RageClickConfig(min_clicks=4))"
        )


def _kinds(kinds: Iterable[str] | str | None) -> tuple[str, ...]:
    if kinds is None:
        return (*KINDS, UNKNOWN)
    if isinstance(kinds, str):
        kinds = (kinds,)
    chosen = tuple(kinds)
    bad = [k for k in chosen if k not in KINDS and k != UNKNOWN]
    if bad:
        raise ConfigError(
            f"unknown detector kind(s): {', '.join(map(str, bad))}; "
            f"hint: kinds are {', '.join((*KINDS, UNKNOWN))}"
        )
    return chosen


def detect(
    events: pl.DataFrame,
    config: Config | Mapping[str, Any] | None = None,
    *,
    kinds: Iterable[str] | str | None = None,
    baselines: Baselines | None = None,
) -> pl.DataFrame:
    """Run the detectors over an event table and return the findings.

    Parameters
    ----------
    events:
        An event table (:data:`cemreplay.schema.EVENT_SCHEMA`), any number of sessions.
    config:
        A :class:`Config`, a mapping of kind -> detector config, or None for the defaults.
    kinds:
        Kinds to report (default: all, plus ``unknown``). Detectors another one depends on
        still run, with their config.
    baselines:
        Page baselines of all the data when ``events`` is only part of it (a partition, a
        chunk of visitors): ``Baselines.merge(Baselines.of(p) for p in parts)``. Default:
        the baselines of ``events`` itself, i.e. ``Baselines.of(events)``. With them, the
        findings of the parts (each holding whole sessions) concatenated equal those of the
        whole, row for row.

    Returns
    -------
    A frame with :data:`FINDINGS_SCHEMA`, one row per finding, sorted by session_id, t, kind.
    """
    cfg, wanted = _checked(config, kinds, baselines)  # bad arguments fail before any work
    return detect_prepared(prepare(events), cfg, kinds=wanted, baselines=baselines)


def _checked(
    config: Config | Mapping[str, Any] | None,
    kinds: Iterable[str] | str | None,
    baselines: Baselines | None,
) -> tuple[Config, tuple[str, ...]]:
    if baselines is not None and not isinstance(baselines, Baselines):
        raise ConfigError(
            f"baselines must be a cemreplay.detectors.Baselines or None, got "
            f"{type(baselines).__name__}; hint: Baselines.merge(Baselines.of(p) for p in parts)"
        )
    return Config.of(config), _kinds(kinds)


def _configure(ctx: Context, cfg: Config) -> None:
    """Every kind's config where detectors that read another kind's find it."""
    for kind in KINDS:
        ctx.cache[f"cfg:{kind}"] = getattr(cfg, kind)


def _in_order(found: pl.DataFrame) -> pl.DataFrame:
    """Findings in :func:`detect`'s order: by session, t, kind, page view and target, ties
    in the order the detectors gave them."""
    return found.sort("session_id", "t", "kind", "page_view", "target", maintain_order=True)


def detect_prepared(
    ctx: Context,
    config: Config | Mapping[str, Any] | None = None,
    *,
    kinds: Iterable[str] | str | None = None,
    baselines: Baselines | None = None,
) -> pl.DataFrame:
    """:func:`detect` on an event table already prepared by
    :func:`cemreplay.detectors._base.prepare` (the checks and session boundaries every kind
    shares): the same findings. What the detectors compute on the way is kept in
    ``ctx.cache``; clear it to run again from the prepared table alone."""
    cfg, wanted = _checked(config, kinds, baselines)
    if baselines is not None:
        ctx.cache["baselines"] = baselines
    _configure(ctx, cfg)
    parts: list[pl.DataFrame] = []
    raws: list[tuple[str, pl.DataFrame]] = []
    need_all = "funnel_abandon" in wanted
    for kind in KINDS:
        if kind == "funnel_abandon":
            parts.append(assemble_all(ctx, raws))
            raws = []
            ctx.cache["findings"] = parts[0]
        if kind not in wanted and not (need_all and kind != "funnel_abandon"):
            continue
        raws.append((kind, REGISTRY[kind].run(ctx, getattr(cfg, kind))))
    if UNKNOWN in wanted:
        raws.append((UNKNOWN, dead_click.unknown(ctx, cfg.dead_click)))
    parts.append(assemble_all(ctx, raws))
    out = pl.concat(parts)
    return _in_order(out.filter(pl.col("kind").is_in(list(wanted))))


# ----------------------------------------------------------------------------- in two steps

#: Kinds a part of the input cannot finish alone: ``excessive_scroll`` and ``quick_back``
#: compare with page baselines over all input, and ``funnel_abandon`` names the last struggle
#: among every other finding of the session (those two kinds included).
DEFERRED: tuple[str, ...] = ("excessive_scroll", "quick_back", "funnel_abandon")


@dataclass
class Split:
    """One table's detection in two steps (:func:`detect_split`, then :meth:`finish`), so
    that the table can go before the page baselines of all input are known.

    Attributes
    ----------
    findings:
        The findings of every kind but :data:`DEFERRED` (``unknown`` included), sorted as
        :func:`detect` sorts.
    rest:
        The rows the deferred kinds read (an event table): every PAGE_VIEW, each session's
        last row, the scrolls of sessions where a page view could be an excessive scroll and
        the interactions of sessions holding a return that could be a quick back (a few
        percent of the rows). A Split is plain tables: it pickles and can be written out.
    baselines:
        The table's share of the page baselines (:meth:`Baselines.of`).
    config:
        The detectors' configuration.
    """

    findings: pl.DataFrame
    rest: pl.DataFrame
    baselines: Baselines
    config: Config

    def finish(self, baselines: Baselines | None = None) -> pl.DataFrame:
        """All findings, as :func:`detect` gives them for the table, with ``baselines``
        (merged over all input; default: the table's own)."""
        ctx, cfg = prepare(self.rest), self.config
        _checked(cfg, None, baselines)  # a wrong type raises, naming what to pass
        ctx.cache["baselines"] = baselines if baselines is not None else self.baselines
        _configure(ctx, cfg)
        raws = [(kind, REGISTRY[kind].run(ctx, getattr(cfg, kind))) for kind in DEFERRED[:-1]]
        # funnel_abandon sees the other kinds' findings, as in detect_prepared
        others = pl.concat([self.findings, assemble_all(ctx, raws)])
        ctx.cache["findings"] = others.filter(pl.col("kind") != UNKNOWN)
        kind = DEFERRED[-1]
        parts = [others, assemble(ctx, kind, REGISTRY[kind].run(ctx, getattr(cfg, kind)))]
        return _in_order(pl.concat(parts))


def detect_split(ctx: Context, config: Config | Mapping[str, Any] | None = None) -> Split:
    """The first step of :func:`detect` on a prepared table (all kinds): every kind but
    :data:`DEFERRED`, and what those need kept. ``detect_split(ctx).finish(baselines)``
    equals ``detect_prepared(ctx, baselines=baselines)`` row for row; in between, only
    ``Split.rest`` (a few percent of the rows) holds events."""
    cfg = Config.of(config)
    _configure(ctx, cfg)
    raws = [(k, REGISTRY[k].run(ctx, getattr(cfg, k))) for k in KINDS if k not in DEFERRED]
    raws.append((UNKNOWN, dead_click.unknown(ctx, cfg.dead_click)))
    found = _in_order(assemble_all(ctx, raws))
    base = Baselines.of_context(ctx)
    keep = np.zeros(ctx.n, dtype=np.bool_)
    keep[ctx.views] = True
    keep[ctx.starts[1:] - 1] = True  # each session's end (funnel_abandon's window)
    keep[excessive_scroll.kept_rows(ctx, cfg.excessive_scroll)] = True
    keep[quick_back.kept_rows(ctx)] = True
    return Split(found, ctx.events.filter(pl.Series(keep)), base, cfg)
