"""Seeded synthetic traffic of a web shop, with planted struggles and a ground-truth table.

:func:`generate` returns a :class:`Traffic`: an event table (``EVENT_SCHEMA``, canonical
order) and ``truth``, one row per planted thing: every struggle a correct detector must find
(including the ones a planted struggle implies, and natural funnel drop-offs) and every
negative look-alike it must not report. ``docs/synth.md`` lists the exact parameters.

How it scales: one numba kernel (:mod:`cemreplay._synth_kernel`) writes all per-event
columns into preallocated arrays, session after session, each session from its own seed;
strings are codes into one fixed vocabulary, turned into polars Categoricals at the end. No
Python object per event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from cemreplay._synth_kernel import (
    _CAMPAIGNS,
    _LOC_US,
    _LOCALE_P,
    _LOCALES,
    _TRUTH_COLS,
    _TZ_CODES,
    _VOCAB,
    KINDS,
    NEGATIVE_KINDS,
    STRUGGLE_KINDS,
    _kernel,
)
from cemreplay.errors import ConfigError
from cemreplay.events import empty
from cemreplay.schema import EVENT_SCHEMA, DeviceClass

__all__ = ["KINDS", "NEGATIVE_KINDS", "STRUGGLE_KINDS", "TRUTH_SCHEMA", "Traffic", "generate"]


#: The schema of :attr:`Traffic.truth`.
TRUTH_SCHEMA: Final = pl.Schema(
    {
        "session_id": pl.Categorical(),
        "visitor_id": pl.Categorical(),
        "kind": pl.String(),
        "t": pl.Int64(),
        "page_url": pl.String(),
        "target": pl.String(),
        "field": pl.String(),
        "detail": pl.String(),
    }
)


@dataclass(frozen=True)
class Traffic:
    """Generated traffic: the event table and its ground truth."""

    #: The event table (``cemreplay.schema.EVENT_SCHEMA``), sorted by session_id, batch, i.
    events: pl.DataFrame
    #: One row per planted thing (:data:`TRUTH_SCHEMA`), sorted by session_id, t, kind.
    truth: pl.DataFrame


# ----------------------------------------------------------------------------------------------
# Python side: plan visitors and sessions, run the kernel, build the frames.

_CROCKFORD = np.frombuffer(b"0123456789ABCDEFGHJKMNPQRSTVWXYZ", dtype=np.uint8)
_VIEWPORTS = {
    int(DeviceClass.DESKTOP): ((1920, 969), (1536, 730), (1440, 789), (1366, 657), (2560, 1305)),
    int(DeviceClass.TABLET): ((820, 1180), (768, 1024), (1024, 1366)),
    int(DeviceClass.MOBILE): ((390, 844), (393, 852), (412, 915), (360, 800), (375, 667)),
}
#: Share of sessions by hour of day (UTC), a shop's evening peak.
_HOURS = np.array(
    [1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 7, 7, 6, 6, 6, 7, 8, 9, 10, 10, 8, 5, 2], dtype=np.float64
)
#: Share of sessions with a negative look-alike planted.
_NEG_RATE = 0.15
#: Rough events per session, for the first guess of how many sessions ``events=`` needs.
_EVENTS_PER_SESSION = 90


def _ids(rng: np.random.Generator, n: int) -> npt.NDArray[np.str_]:
    """``n`` distinct random 10-character Crockford base32 ids, in ascending order (which is
    also their lexical order: the alphabet is in ASCII order)."""
    got = np.unique(rng.integers(0, 1 << 50, size=n, dtype=np.int64))
    while len(got) < n:
        more = rng.integers(0, 1 << 50, size=n - len(got) + 8, dtype=np.int64)
        got = np.unique(np.concatenate([got, more]))
    if len(got) > n:
        got = np.sort(rng.permutation(got)[:n])
    shifts = np.arange(45, -1, -5, dtype=np.int64)
    chars = _CROCKFORD[(got[:, None] >> shifts) & 31]
    return np.ascontiguousarray(chars).view("S10").ravel().astype("U10")


def _plan(seed: int, n: int, start_ms: int, days: int) -> dict[str, Any]:
    """Per-session inputs of the kernel for ``n`` candidate sessions, in generation order."""
    rng = np.random.default_rng([seed, n])
    per = np.minimum(rng.geometric(0.6, size=n), 6)  # sessions per visitor (mean ~1.6)
    visitors = int(np.searchsorted(np.cumsum(per), n)) + 1
    vis = np.repeat(np.arange(visitors), per[:visitors])[:n]
    vis = vis[rng.permutation(n)]
    # Visitor attributes: one browser, so one device, viewport and locale.
    dev_v = rng.choice(
        [int(DeviceClass.DESKTOP), int(DeviceClass.MOBILE), int(DeviceClass.TABLET)],
        size=visitors,
        p=[0.52, 0.40, 0.08],
    )
    vw_v = np.zeros(visitors, np.int64)
    vh_v = np.zeros(visitors, np.int64)
    for d, sizes in _VIEWPORTS.items():
        m = dev_v == d
        pick = rng.integers(0, len(sizes), size=int(m.sum()))
        vw_v[m] = np.array([w for w, _ in sizes])[pick]
        vh_v[m] = np.array([h for _, h in sizes])[pick]
    loc_v = rng.choice(len(_LOCALES), size=visitors, p=np.array(_LOCALE_P))
    tz_v = np.array([_TZ_CODES[li][0] for li in loc_v], dtype=np.int64)
    us = np.flatnonzero(loc_v == _LOC_US)
    tz_v[us] = np.array(_TZ_CODES[_LOC_US])[rng.integers(0, 3, size=len(us))]
    # Session times: a day, an hour from the daily curve, a moment in it.
    hour = rng.choice(24, size=n, p=_HOURS / _HOURS.sum())
    starts = (
        start_ms
        + rng.integers(0, days, size=n) * 86_400_000
        + hour * 3_600_000
        + rng.integers(0, 3_600_000, size=n)
    )
    # Returning: not the visitor's first session in time.
    order = np.lexsort((starts, vis))
    first = np.ones(n, dtype=bool)
    first[1:] = vis[order][1:] != vis[order][:-1]
    ret = np.zeros(n, np.int64)
    ret[order] = (~first).astype(np.int64)
    camp = np.where(rng.random(n) < 0.25, rng.integers(1, len(_CAMPAIGNS) + 1, size=n), 0)
    return {
        "vis": vis,
        "visitors": visitors,
        "seeds": rng.integers(0, 2**32 - 1, size=n, dtype=np.uint32),
        "starts": starts.astype(np.int64),
        "dev": dev_v[vis].astype(np.int64),
        "vw": vw_v[vis],
        "vh": vh_v[vis],
        "loc": loc_v[vis].astype(np.int64),
        "tz": tz_v[vis],
        "camp": camp.astype(np.int64),
        "ret": ret,
        "rng": rng,
    }


def _run(plan: dict[str, Any], rate: float, max_events: int, cap: int) -> tuple[Any, ...]:
    """Run the kernel, growing the buffers until everything fits."""
    n = len(plan["seeds"])
    tcap = max(64, n * 2)
    while True:
        # Rows: t (ms after the session's start), kind, x, y, a, b, target, text, batch, i.
        ev = np.empty((10, cap), np.int32)
        R = np.empty((tcap, _TRUTH_COLS), np.int64)
        soff = np.zeros(n + 1, np.int64)
        used, total, ntruth = _kernel(
            plan["seeds"], plan["starts"], plan["dev"], plan["vw"], plan["vh"], plan["loc"],
            plan["tz"], plan["camp"], plan["ret"], float(rate), _NEG_RATE, max_events, ev, R,
            soff,
        )
        if total <= cap and ntruth <= tcap:
            return ev, R, soff, int(used), int(total), int(ntruth)
        cap = max(cap, int(total))
        tcap = max(tcap, int(ntruth))


def _categorical(vocab: pl.Series, codes: npt.NDArray[Any]) -> pl.Series:
    """A Categorical column from codes into ``vocab`` (-1 = null)."""
    keep = vocab.cast(pl.Categorical)
    phys = keep.to_physical().to_numpy()
    idx = codes.astype(np.int64, copy=False)
    col = pl.Series(phys[np.maximum(idx, 0)])
    null = idx < 0
    if null.any():
        col = col.set(pl.Series(null), None)
    out = col.cast(pl.UInt32).cat.to(pl.Categorical)
    del keep  # the categories stay alive until the codes are turned into a Categorical
    return out


def generate(
    sessions: int = 1_000,
    *,
    seed: int = 0,
    start_ms: int = 1_767_225_600_000,
    days: int = 7,
    struggle_rate: float = 0.3,
    events: int | None = None,
) -> Traffic:
    """Synthetic shop traffic with planted struggles, look-alikes and their ground truth.

    ``sessions`` sessions (or, with ``events``, about that many events: as many sessions as
    it takes) from visitors spread over ``days`` days from ``start_ms``. A share
    ``struggle_rate`` of the sessions gets one or two planted struggles; see
    ``docs/synth.md`` for what is planted and how. The same arguments give identical frames.
    """
    def _int(name: str, value: object, lo: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ConfigError(
                f"generate(): {name} must be an int >= {lo}, got {value!r}; "
                "hint: see docs/synth.md for the arguments"
            )

    _int("sessions", sessions, 0)
    _int("seed", seed, 0)
    _int("days", days, 1)
    if events is not None:
        _int("events", events, 1)
    if not isinstance(struggle_rate, int | float) or not 0.0 <= float(struggle_rate) <= 1.0:
        raise ConfigError(
            f"generate(): struggle_rate must be within 0..1, got {struggle_rate!r}; "
            "hint: 0.3 plants struggles in about 30 % of the sessions"
        )
    if not isinstance(start_ms, int) or not 0 <= start_ms < 2**53 - days * 86_400_000 - 10**9:
        raise ConfigError(
            f"generate(): start_ms must be epoch milliseconds, got {start_ms!r}; "
            "hint: the default 1_767_225_600_000 is 2026-01-01T00:00Z"
        )
    if events is None and sessions == 0:
        return Traffic(events=empty(), truth=pl.DataFrame(schema=TRUTH_SCHEMA))
    if events is None:
        n = sessions
        plan = _plan(seed, n, start_ms, days)
        ev, R, soff, used, total, ntruth = _run(plan, struggle_rate, -1, max(1, n * 120))
    else:
        n = events // _EVENTS_PER_SESSION * 2 + 16
        while True:
            plan = _plan(seed, n, start_ms, days)
            ev, R, soff, used, total, ntruth = _run(plan, struggle_rate, events, events + 20_000)
            if total >= events or used < n:
                break
            n *= 2
    return _frames(plan, ev, R, soff, used, total, ntruth)


def _frames(
    plan: dict[str, Any], ev: Any, R: Any, soff: Any, used: int, total: int,
    ntruth: int,
) -> Traffic:
    rng: np.random.Generator = plan["rng"]
    sid = _ids(rng, used)
    vis_of_session = plan["vis"][:used]
    vis_used, vis_code = np.unique(vis_of_session, return_inverse=True)
    vid = _ids(rng, len(vis_used))
    # Visitor ids are ascending by visitor number; shuffle which visitor gets which.
    vid = vid[rng.permutation(len(vid))]
    counts = np.diff(soff[: used + 1])
    sid_s = pl.Series(sid, dtype=pl.String)
    vid_s = pl.Series(vid, dtype=pl.String)
    ses_code = np.repeat(np.arange(used, dtype=np.int64), counts)
    vocab = pl.Series(_VOCAB, dtype=pl.String)
    events = pl.DataFrame(
        {
            "session_id": _categorical(sid_s, ses_code),
            "visitor_id": _categorical(vid_s, vis_code[ses_code]),
            "t": np.repeat(plan["starts"][:used], counts) + ev[0, :total],
            "batch": ev[8, :total].astype(np.uint32),
            "i": ev[9, :total].astype(np.uint16),
            "kind": ev[1, :total].astype(np.uint8),
            "x": ev[2, :total],
            "y": ev[3, :total],
            "a": ev[4, :total],
            "b": ev[5, :total],
            "target": _categorical(vocab, ev[6, :total]),
            "text": _categorical(vocab, ev[7, :total]),
        }
    )
    events = events.select(list(EVENT_SCHEMA.names()))
    rows = R[:ntruth]
    truth = _truth_frame(rows, sid_s, vid_s, vis_code)
    return Traffic(events=events, truth=truth)


def _detail(kind: int, dnum: int, dcode: int) -> str:
    name = KINDS[kind]
    text = _VOCAB[dcode] if dcode >= 0 else ""
    if name == "rage_click" or name.startswith("negative:"):
        return f"{dnum} clicks"
    if name == "dead_click":
        return f"no response for {dnum} ms"
    if name == "error_click":
        return f"JS_ERROR {text}" if dnum < 0 else f"NETWORK_FAILURE {dnum} {text}"
    if name == "thrashed_cursor":
        return f"{dnum} moves, {dnum - 2} x reversals"
    if name == "excessive_scroll":
        return f"{dnum} scroll reversals"
    if name == "quick_back":
        return f"back after {dnum} ms"
    if name == "form_error":
        return text
    if name == "failed_submit":
        return f"validation error: {text}" if dnum == 0 else "no success within 5 s"
    if name == "field_refill":
        return f"changed again after {dnum} ms"
    if name == "form_abandon":
        return f"{dnum} field(s) touched"
    return f"left at step {text}"


def _truth_frame(
    rows: npt.NDArray[np.int64], sid: pl.Series, vid: pl.Series, vis_code: Any
) -> pl.DataFrame:
    def s(codes: npt.NDArray[np.int64]) -> list[str | None]:
        return [_VOCAB[c] if c >= 0 else None for c in codes.tolist()]

    sess = rows[:, 0]
    df = pl.DataFrame(
        {
            "session_id": _categorical(sid, sess),
            "visitor_id": _categorical(vid, vis_code[sess]),
            "kind": pl.Series([KINDS[k] for k in rows[:, 1].tolist()], dtype=pl.String),
            "t": pl.Series(rows[:, 2], dtype=pl.Int64),
            "page_url": pl.Series(s(rows[:, 3]), dtype=pl.String),
            "target": pl.Series(s(rows[:, 4]), dtype=pl.String),
            "field": pl.Series(s(rows[:, 5]), dtype=pl.String),
            "detail": pl.Series(
                [_detail(k, d, c) for k, d, c in rows[:, [1, 6, 7]].tolist()], dtype=pl.String
            ),
            "_s": sess,
        },
        schema_overrides={"_s": pl.Int64},
    )
    return df.sort("_s", "t", "kind").drop("_s")
