"""Page alerts: a page whose struggle rate spikes above its baseline (a release broke it).

Every ``step`` the watcher takes, per page URL, the sessions that viewed it in the sliding
``window`` and how many of them struggled there (a finding on that page: the per-page
baselines of the store, ``page_sessions``), and compares that rate with the page's baseline
rate over the trailing ``baseline`` period before the window (the hourly sums,
``page_hours``). A page alerts when all of these hold (see ``docs/live.md`` for why):

* at least ``min_affected`` struggling sessions in the window (a handful of visitors is not
  an incident, whatever the ratio);
* its rate is over ``ratio`` times the baseline rate (a big effect, not a blip on a huge page);
* under the baseline rate, that many struggling sessions out of the window's sessions has a
  binomial upper-tail probability under ``alpha`` (not chance on a small page);
* the baseline has at least ``min_baseline_sessions`` sessions (a new page has no normal yet).

One alert per page per incident: while it fires, the page is compared with the baseline
frozen when it fired, and it clears when its rate has stayed at or under ``clear_ratio``
times that baseline for ``clear_steps`` steps in a row (hysteresis), or the window empties.

Time is a parameter everywhere (``now`` in ms), so :func:`replay` runs the same watcher over
stored data on simulated time; :func:`watch` runs it on the clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import numpy as np
import polars as pl

from cemreplay.errors import ConfigError
from cemreplay.store import HOUR_MS, PAGE_SESSIONS_SCHEMA, SQLiteStore

__all__ = [
    "Alert",
    "FrameSource",
    "StoreSource",
    "WatchConfig",
    "Watcher",
    "binomial_sf",
    "parse_duration",
    "replay",
    "watch",
]

MINUTE: Final = 60_000


@dataclass(frozen=True)
class WatchConfig:
    """Thresholds and windows of the page watcher (times in ms)."""

    #: Sliding window of recent sessions per page (10 min: enough sessions on a busy page
    #: to tell a spike from noise, short enough to alert within minutes).
    window_ms: int = 10 * MINUTE
    #: How often the pages are checked (the most an alert waits after its evidence is in).
    step_ms: int = MINUTE
    #: A shorter window checked too, so that a page that breaks outright alerts within a
    #: couple of minutes even when its baseline is high (0: only ``window_ms``).
    fast_window_ms: int = 2 * MINUTE
    #: Trailing period of the baseline before the window (7 days: every hour of the week).
    baseline_ms: int = 7 * 24 * HOUR_MS
    #: The window's struggle odds must exceed this many times the baseline's (the odds ratio:
    #: the rate ratio for rare struggle, and still reachable by a page whose baseline rate
    #: is over 50 %, which a rate ratio of 2 is not).
    ratio: float = 2.0
    #: Struggling sessions needed in the window.
    min_affected: int = 5
    #: Largest binomial upper-tail probability of the window's count under the baseline, for
    #: all pages together (divided by the number of page windows checked: Bonferroni; a
    #: site with 100 pages checked every minute would otherwise see false alarms daily).
    alpha: float = 1e-3
    #: An incident clears when the window's odds are at or under this many times its
    #: baseline's (frozen when it fired) ...
    clear_ratio: float = 1.25
    #: ... for this many steps in a row.
    clear_steps: int = 3
    #: Sessions the baseline needs before a page can alert.
    min_baseline_sessions: int = 30
    #: Struggling sessions named in an alert (the most recent).
    samples: int = 5

    def __post_init__(self) -> None:
        for name, lo in (
            ("window_ms", 1_000),
            ("fast_window_ms", 0),
            ("step_ms", 100),
            ("baseline_ms", HOUR_MS),
            ("min_affected", 1),
            ("clear_steps", 1),
            ("min_baseline_sessions", 1),
            ("samples", 0),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ConfigError(f"WatchConfig.{name} must be an int >= {lo}, got {v!r}")
        bounds: tuple[tuple[str, float, float], ...] = (
            ("ratio", 1.0, 1e6),
            ("clear_ratio", 0.0, 1e6),
            ("alpha", 0.0, 1.0),
        )
        for fname, flo, fhi in bounds:
            fv = getattr(self, fname)
            if not isinstance(fv, int | float) or not flo <= fv <= fhi:
                raise ConfigError(f"WatchConfig.{fname} must be within {flo}..{fhi}, got {fv!r}")
        if self.clear_ratio > self.ratio:
            raise ConfigError("WatchConfig.clear_ratio must not exceed ratio (hysteresis)")


def _odds(a: float, n: float = 1.0) -> float:
    """The odds of a rate a/n (infinite at 1)."""
    return math.inf if a >= n else a / (n - a)


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space (exact for the small n here).

    >>> round(binomial_sf(5, 10, 0.1), 5)
    0.00163
    """
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    lp, lq = math.log(p), math.log1p(-p)
    ln = math.lgamma(n + 1)
    terms = [
        ln - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * lp + (n - j) * lq
        for j in range(k, n + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


@dataclass(frozen=True)
class Alert:
    """A page alert firing, or clearing."""

    state: str  # "firing" | "cleared"
    page_url: str
    t: int  # the (possibly simulated) time of the check, epoch ms
    sessions: int  # sessions on the page in the window
    affected: int  # of them, struggling there
    rate: float
    baseline: float  # the baseline rate (frozen at firing for a clear)
    p_value: float
    kinds: dict[str, int]  # finding kinds on the page in the window -> sessions
    sample_sessions: tuple[str, ...]
    since: int  # when the incident started (its firing check)

    def to_json(self) -> dict[str, Any]:
        """The alert as printed and sent to the webhook."""
        return {
            "type": "page_alert",
            **{k: getattr(self, k) for k in self.__dataclass_fields__},
            "sample_sessions": list(self.sample_sessions),
        }

    def line(self) -> str:
        """One human line."""
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(self.t / 1000))
        kinds = ", ".join(f"{k} {n}" for k, n in self.kinds.items())
        head = "ALERT" if self.state == "firing" else "cleared"
        return (
            f"{when} {head} {self.page_url}: {self.affected}/{self.sessions} sessions struggling "
            f"({self.rate:.0%} vs baseline {self.baseline:.1%}) [{kinds}]"
            + (f" watch: {' '.join(self.sample_sessions)}" if self.state == "firing" else "")
        )


class Source(Protocol):
    """Where the watcher reads: the window's page rows and the baseline sums."""

    def window(self, since: int, until: int) -> pl.DataFrame: ...

    def baseline(self, since: int, until: int) -> pl.DataFrame: ...


class StoreSource:
    """Reads the store's ``page_sessions`` (window) and ``page_hours`` (baseline)."""

    def __init__(self, store: SQLiteStore):
        self.store = store

    def window(self, since: int, until: int) -> pl.DataFrame:
        return self.store.page_sessions(since=since, until=until)

    def baseline(self, since: int, until: int) -> pl.DataFrame:
        return self.store.page_hours(since=since, until=until)


class FrameSource:
    """The same from a frame of page rows (``PAGE_SESSIONS_SCHEMA``), for replays and tests."""

    def __init__(self, rows: pl.DataFrame):
        self.rows = rows.select(PAGE_SESSIONS_SCHEMA.names()).sort("t")
        self._t = self.rows["t"].to_numpy()
        self.hours = (
            self.rows.group_by("page_url", (pl.col("t") // HOUR_MS * HOUR_MS).alias("hour"))
            .agg(
                pl.len().cast(pl.Int64).alias("sessions"),
                pl.col("struggled").sum().cast(pl.Int64).alias("struggling"),
            )
            .sort("hour")
        )

    def window(self, since: int, until: int) -> pl.DataFrame:
        a, b = np.searchsorted(self._t, [since, until], side="left")
        return self.rows.slice(int(a), int(b - a))

    def baseline(self, since: int, until: int) -> pl.DataFrame:
        return self.hours.filter((pl.col("hour") >= since) & (pl.col("hour") < until))


@dataclass
class _Incident:
    since: int
    baseline: float
    calm: int = 0


@dataclass
class Watcher:
    """The alert state machine; :meth:`check` at each step."""

    config: WatchConfig = field(default_factory=WatchConfig)
    open: dict[str, _Incident] = field(default_factory=dict)

    def check(self, now: int, source: Source) -> list[Alert]:
        """Compare every page's windows ending at ``now`` with its baseline; new alerts."""
        cfg = self.config
        w0 = now - cfg.window_ms
        rows = source.window(w0, now)
        # whole hours before the window's hour, back over the baseline period
        b1 = w0 // HOUR_MS * HOUR_MS
        base = source.baseline(b1 - cfg.baseline_ms, b1)
        base = base.group_by("page_url").agg(pl.col("sessions").sum(), pl.col("struggling").sum())
        bmap = {u: (int(n), int(s)) for u, n, s in base.iter_rows()}
        fast = pl.col("t") >= now - cfg.fast_window_ms
        per = rows.group_by("page_url").agg(
            pl.len().alias("n"),
            pl.col("struggled").sum().alias("a"),
            fast.sum().alias("nf"),
            (pl.col("struggled") * fast).sum().alias("af"),
        )
        windows = 2 if 0 < cfg.fast_window_ms < cfg.window_ms else 1
        # Bonferroni: every page and window checked now is one test
        alpha = cfg.alpha / max(1, per.height * windows)
        out: list[Alert] = []
        seen: set[str] = set()
        for url, n_, a_, nf, af in per.iter_rows():
            seen.add(url)
            n, a = int(n_), int(a_)
            inc = self.open.get(url)
            if inc is not None:
                if _odds(a, n) <= cfg.clear_ratio * _odds(inc.baseline):
                    inc.calm += 1
                else:
                    inc.calm = 0
                if inc.calm >= cfg.clear_steps:
                    out.append(
                        self._alert("cleared", url, now, rows, n, a, inc.baseline, 1.0, inc.since)
                    )
                    del self.open[url]
                continue
            bn, bs = bmap.get(url, (0, 0))
            if bn < cfg.min_baseline_sessions:
                continue
            p0 = (bs + 1) / (bn + 2)  # Laplace: a page that never struggled is not at 0
            for wn, wa, span in ((int(nf), int(af), cfg.fast_window_ms), (n, a, cfg.window_ms)):
                if span == cfg.fast_window_ms and windows == 1:
                    continue
                if wa < cfg.min_affected or _odds(wa, wn) <= cfg.ratio * _odds(p0):
                    continue
                pv = binomial_sf(wa, wn, p0)
                if pv >= alpha:
                    continue
                self.open[url] = _Incident(now, p0)
                out.append(
                    self._alert(
                        "firing",
                        url,
                        now,
                        rows.filter(pl.col("t") >= now - span),
                        wn,
                        wa,
                        p0,
                        pv,
                        now,
                    )
                )
                break
        for url in [u for u in self.open if u not in seen]:  # no traffic left: clear
            inc = self.open[url]
            inc.calm += 1
            if inc.calm >= cfg.clear_steps:
                out.append(
                    self._alert("cleared", url, now, rows, 0, 0, inc.baseline, 1.0, inc.since)
                )
                del self.open[url]
        return out

    def _alert(
        self,
        state: str,
        url: str,
        now: int,
        rows: pl.DataFrame,
        n: int,
        a: int,
        base: float,
        pv: float,
        since: int,
    ) -> Alert:
        mine = rows.filter((pl.col("page_url") == url) & (pl.col("struggled") == 1))
        kinds = (
            mine.select(pl.col("kinds").str.split(","))
            .explode("kinds")
            .group_by("kinds")
            .len()
            .sort("len", "kinds", descending=[True, False])
        )
        sample = mine.sort("t", descending=True).head(self.config.samples)["session_id"]
        return Alert(
            state=state,
            page_url=url,
            t=now,
            sessions=n,
            affected=a,
            rate=round(a / n, 4) if n else 0.0,
            baseline=round(base, 4),
            p_value=float(f"{pv:.3g}"),
            kinds={str(k): int(v) for k, v in kinds.iter_rows()},
            sample_sessions=tuple(sample.to_list()),
            since=since,
        )


def replay(
    source: Source,
    start: int,
    end: int,
    config: WatchConfig | None = None,
    *,
    on_alert: Callable[[Alert], None] | None = None,
) -> list[Alert]:
    """Run a :class:`Watcher` on simulated time: a check every ``step_ms`` from ``start`` to
    ``end`` (epoch ms); every alert, in order."""
    w = Watcher(config or WatchConfig())
    out: list[Alert] = []
    now = start
    while now <= end:
        for a in w.check(now, source):
            out.append(a)
            if on_alert is not None:
                on_alert(a)
        now += w.config.step_ms
    return out


def watch(
    store: SQLiteStore,
    config: WatchConfig | None = None,
    *,
    on_alert: Callable[[Alert], None],
    analyze: bool = True,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    max_checks: int | None = None,
) -> Iterator[int]:
    """Watch on the clock: before each check analyze what changed (unless ``analyze`` is
    False: a collector with ``--live`` keeps the baselines current), check, sleep a step.
    Yields the time of each check; stop it by closing the generator (or Ctrl-C)."""
    w = Watcher(config or WatchConfig())
    src = StoreSource(store)
    k = 0
    while max_checks is None or k < max_checks:
        if analyze:
            store.analyze()
        now = int(clock() * 1000)
        for a in w.check(now, src):
            on_alert(a)
        yield now
        k += 1
        if max_checks is None or k < max_checks:
            sleep(w.config.step_ms / 1000)


_UNITS: Final = {"ms": 1, "s": 1_000, "m": MINUTE, "h": HOUR_MS, "d": 24 * HOUR_MS}


def parse_duration(text: str | int) -> int:
    """Milliseconds from ``90s``, ``10m``, ``24h``, ``7d``, ``500ms`` or a number of ms.

    >>> parse_duration("10m"), parse_duration("7d"), parse_duration(250)
    (600000, 604800000, 250)
    """
    if isinstance(text, int):
        return text
    s = str(text).strip().lower()
    for unit in ("ms", "s", "m", "h", "d"):
        if s.endswith(unit) and s[: -len(unit)].isdigit():
            return int(s[: -len(unit)]) * _UNITS[unit]
    if s.isdigit():
        return int(s)
    raise ConfigError(f"duration {text!r} is not like 90s, 10m, 24h or 7d")
