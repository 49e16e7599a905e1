"""Small statistics the tables need: Wilson intervals, a two-proportion z-test, Mann-Whitney U.

scipy does the distributions; these wrappers only handle empty groups (no test: null) and
vectorise over polars columns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import polars as pl

#: z for a two-sided 95 % interval.
Z95: Final = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson score interval of a proportion (Wilson 1927; what ``statsmodels``'
    ``proportion_confint(method="wilson")`` returns). ``(None, None)`` when ``n`` is 0.

    >>> lo, hi = wilson(5, 10)
    >>> round(lo, 4), round(hi, 4)
    (0.2366, 0.7634)
    """
    if n <= 0:
        return None, None
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_exprs(successes: str, n: str, prefix: str, z: float = Z95) -> list[pl.Expr]:
    """``{prefix}``, ``{prefix}_lo``, ``{prefix}_hi``: the share ``successes / n`` and its Wilson
    interval, as polars expressions (null where ``n`` is 0)."""
    s = pl.col(successes).cast(pl.Float64)
    nn = pl.col(n).cast(pl.Float64)
    ok = nn > 0
    p = s / nn
    z2 = z * z
    centre = (p + z2 / (2 * nn)) / (1 + z2 / nn)
    half = z * ((p * (1 - p) / nn + z2 / (4 * nn * nn)).sqrt()) / (1 + z2 / nn)
    return [
        pl.when(ok).then(p).alias(prefix),
        pl.when(ok).then((centre - half).clip(0.0, 1.0)).alias(f"{prefix}_lo"),
        pl.when(ok).then((centre + half).clip(0.0, 1.0)).alias(f"{prefix}_hi"),
    ]


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test of ``x1/n1`` against ``x2/n2``
    (None when a group is empty or the pooled share is 0 or 1: no test).

    >>> round(two_proportion_p(30, 100, 10, 100), 5)
    0.00041
    """
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    if pooled <= 0.0 or pooled >= 1.0:
        return None
    from scipy.stats import norm

    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (x1 / n1 - x2 / n2) / se
    return float(2 * norm.sf(abs(z)))


def mann_whitney_p(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray
) -> float | None:
    """Two-sided p-value of the Mann-Whitney U test (scipy's ``mannwhitneyu``, asymptotic with
    tie correction for large groups); None when a group is empty or every value is equal.

    >>> mann_whitney_p([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) < 0.05
    True
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.size == 0 or y.size == 0:
        return None
    both = np.concatenate([x, y])
    if np.all(both == both[0]):
        return None
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(x, y, alternative="two-sided").pvalue)
