"""The struggle score: a transparent weighted sum of findings.

``score = sum over findings of weight[kind] * severity``, per page view or per session. The
weights are plain numbers in :class:`ScoreWeights` (visible in every result as the
``breakdown`` column: kind, findings, weight, points), so anyone can redo the sum by hand.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import polars as pl

from cemreplay.detectors._base import check_float
from cemreplay.errors import ConfigError, SchemaError
from cemreplay.schema import FINDINGS_SCHEMA

__all__ = ["ScoreWeights", "score"]


@dataclass(frozen=True)
class ScoreWeights:
    """Points per finding of full severity, by kind. Defaults rank what blocks a visitor
    (errors, failed submits, funnel drop-offs) above what only slows one down."""

    rage_click: float = 3.0
    dead_click: float = 2.0
    error_click: float = 4.0
    thrashed_cursor: float = 1.0
    excessive_scroll: float = 1.0
    quick_back: float = 1.5
    form_error: float = 1.5
    failed_submit: float = 3.0
    field_refill: float = 0.5
    form_abandon: float = 2.5
    funnel_abandon: float = 4.0
    unknown: float = 0.0

    def __post_init__(self) -> None:
        for name in asdict(self):
            check_float(self, name, 0.0, 1e6)


def score(
    findings: pl.DataFrame,
    weights: ScoreWeights | None = None,
    *,
    level: Literal["session", "page_view"] = "session",
) -> pl.DataFrame:
    """Struggle score per session (default) or per page view, highest first.

    Returns one row per session (``session_id``, ``visitor_id``) or page view (plus
    ``page_view``, ``page_url``) that has findings, with ``score``, ``findings`` (how many)
    and ``breakdown`` (a list of structs kind, findings, weight, points, summing to score),
    sorted by score descending then by key.
    """
    weights = weights or ScoreWeights()
    if not isinstance(weights, ScoreWeights):
        raise ConfigError(
            f"weights must be a ScoreWeights, got {type(weights).__name__}; "
            "hint: ScoreWeights(rage_click=5.0)"
        )
    if level not in ("session", "page_view"):
        raise ConfigError(f"level must be 'session' or 'page_view', got {level!r}")
    missing = [
        c
        for c in ("session_id", "visitor_id", "page_view", "page_url", "kind", "severity")
        if c not in findings.columns
    ]
    if missing:
        raise SchemaError(
            f"findings lack column(s) {', '.join(missing)}; hint: pass the output of "
            "cemreplay.detect()"
        )
    keys = ["session_id", "visitor_id"] + (
        ["page_view", "page_url"] if level == "page_view" else []
    )
    table = pl.DataFrame(
        {"kind": list(asdict(weights)), "weight": list(asdict(weights).values())},
        schema={"kind": pl.String, "weight": pl.Float64},
    )
    parts = (
        findings.join(table, on="kind", how="left")
        .with_columns(pl.col("weight").fill_null(0.0))
        .group_by(*keys, "kind")
        .agg(
            pl.len().alias("findings"),
            pl.col("weight").first(),
            (pl.col("weight") * pl.col("severity")).sum().alias("points"),
        )
        .sort(*keys, "kind")
    )
    out = parts.group_by(*keys, maintain_order=True).agg(
        pl.col("points").sum().alias("score"),
        pl.col("findings").sum(),
        pl.struct("kind", "findings", "weight", "points").alias("breakdown"),
    )
    if out.height == 0:
        out = pl.DataFrame(
            schema={
                **{k: FINDINGS_SCHEMA[k] for k in keys},
                "score": pl.Float64,
                "findings": pl.UInt32,
                "breakdown": pl.List(
                    pl.Struct(
                        {
                            "kind": pl.String,
                            "findings": pl.UInt32,
                            "weight": pl.Float64,
                            "points": pl.Float64,
                        }
                    )
                ),
            }
        )
    return out.sort(["score", *keys], descending=[True] + [False] * len(keys))
