"""The three rules in plain pandas: groupby, shift, forward/backward fill (what a data scientist
would write in a notebook). ``load(events)`` converts the events to a pandas frame before the
clock starts; each rule then does its own page-view numbering and time ordering, as the SQL
peer's queries do (see ``benchmarks.peers.duckdb_sql``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl

from benchmarks.peers.rules import (
    CHANGE,
    CLICK,
    DEAD_ELEMENT,
    DEAD_NEVER,
    DEAD_TIMEOUT_MS,
    DEAD_TOLERANCE_MS,
    ERROR_MIN_STATUS,
    ERROR_WINDOW_MS,
    FOCUS,
    JSERR,
    MILESTONE,
    MUTATION,
    NETFAIL,
    PV,
    RAGE_BAD,
    RAGE_DIST2,
    RAGE_GAP_MS,
    RAGE_MIN,
    REQUEST,
    RESPONSE,
    SUBMIT,
    SUBMIT_ERROR_MS,
    SUBMIT_SUCCESS_MS,
    SUBMIT_TOLERANCE_MS,
    UNKNOWN_ELEMENT,
    VALID,
    Found,
)

name = "pandas"


def load(events: pl.DataFrame) -> pd.DataFrame:
    """The events as pandas, in recording order (session, batch, i), strings as categories."""
    return events.select(
        "session_id", "t", "batch", "i", "kind", "x", "y", "a", "b", "target"
    ).to_pandas()


def ordered(df: pd.DataFrame) -> pd.DataFrame:
    """Page view and URL per event (recording order), then rows in time order per session
    with ``rn`` their position."""
    df = df.sort_values(["session_id", "batch", "i"], kind="stable")
    is_pv = df["kind"] == PV
    pv = (is_pv.astype(np.int64).groupby(df["session_id"], observed=True).cumsum() - 1).clip(0)
    url = df["target"].where(is_pv)
    df = df.assign(pv=pv, url=url.groupby([df["session_id"], pv], observed=True).transform("first"))
    df = df.sort_values(["session_id", "t"], kind="stable")
    return df.assign(rn=np.arange(len(df)))


def _bursts(o: pd.DataFrame) -> pd.DataFrame:
    c = o[o["kind"] == CLICK]
    ok = (c["a"] & RAGE_BAD) == 0
    g = c.groupby("session_id", observed=True)
    prev = g[["t", "x", "y", "pv"]].shift(1)
    same_target = (c["target"] == g["target"].shift(1)) | (
        c["target"].isna() & g["target"].shift(1).isna() & g["t"].shift(1).notna()
    )
    pok = ok.groupby(c["session_id"], observed=True).shift(1, fill_value=False)
    dist2 = (c["x"] - prev["x"]) ** 2 + (c["y"] - prev["y"]) ** 2
    joins = ok & pok & same_target & (c["pv"] == prev["pv"]) & (c["t"] - prev["t"] <= RAGE_GAP_MS)
    joins &= dist2 <= RAGE_DIST2
    chain = (~joins).cumsum()
    okc = c[ok].assign(chain=chain[ok])
    b = okc.groupby("chain").agg(
        session_id=("session_id", "first"),
        t=("t", "min"),
        first=("rn", "min"),
        last=("rn", "max"),
        n=("rn", "size"),
    )
    return b[b["n"] >= RAGE_MIN]


def _found(df: pd.DataFrame) -> Found:
    return list(zip(df["session_id"].astype(str), df["t"].astype(int).tolist(), strict=True))


def rage(df: pd.DataFrame) -> Found:
    return _found(_bursts(ordered(df)))


def dead(df: pd.DataFrame) -> Found:
    o = ordered(df)
    sid = o["session_id"]
    g = o.groupby("session_id", observed=True)
    resp_t = o["t"].where(o["kind"].isin(RESPONSE))
    prev_resp = resp_t.groupby(sid, observed=True).ffill()  # t ascends: latest = last seen
    next_resp = resp_t.groupby(sid, observed=True).bfill()
    is_click = o["kind"] == CLICK
    click_rn = o["rn"].where(is_click).groupby(sid, observed=True).ffill()
    click_t = o["t"].where(is_click).groupby(sid, observed=True).ffill()
    is_err = (o["kind"] == JSERR) | (
        (o["kind"] == NETFAIL) & ((o["a"] == 0) | (o["a"] >= ERROR_MIN_STATUS))
    )
    tied = click_rn[is_err & click_rn.notna() & (o["t"] - click_t <= ERROR_WINDOW_MS)]
    signals = g["kind"].transform(lambda k: k.isin((MUTATION, REQUEST)).any())
    a = o["a"]
    cand = (
        is_click
        & ((a & DEAD_ELEMENT) != 0)
        & ((a & DEAD_NEVER) == 0)
        & ((a & UNKNOWN_ELEMENT) == 0)
        & signals.astype(bool)
        & ~(prev_resp >= o["t"] - DEAD_TOLERANCE_MS).fillna(False)
        & ~(next_resp <= o["t"] + DEAD_TIMEOUT_MS).fillna(False)
        & ~o["rn"].isin(tied.astype(np.int64))
    )
    b = _bursts(o)
    in_burst = np.zeros(len(o) + 1, dtype=np.int64)
    np.add.at(in_burst, b["first"].to_numpy(), 1)
    np.add.at(in_burst, b["last"].to_numpy() + 1, -1)
    cand &= np.cumsum(in_burst)[:-1] == 0
    return _found(o[cand])


def form_abandon(df: pd.DataFrame) -> Found:
    o = ordered(df)
    o = o.assign(end_t=o.groupby("session_id", observed=True)["t"].transform("max"))
    f = o[o["kind"].isin((PV, FOCUS, CHANGE, SUBMIT, VALID, MILESTONE))]
    sid = f["session_id"]
    err_t = f["t"].where(f["kind"] == VALID)
    ok_t = f["t"].where(f["kind"].isin((PV, MILESTONE)))
    next_err = err_t.groupby(sid, observed=True).bfill()
    prev_err = err_t.groupby(sid, observed=True).ffill()
    next_ok = ok_t.groupby(sid, observed=True).bfill()
    t = f["t"]
    failed = (
        (next_err - t <= SUBMIT_ERROR_MS).fillna(False)
        | (t - prev_err <= SUBMIT_TOLERANCE_MS).fillna(False)
        | (~(next_ok - t <= SUBMIT_SUCCESS_MS).fillna(False) & (f["end_t"] - t > SUBMIT_SUCCESS_MS))
    )
    url = f["url"].astype(object).where(f["url"].notna(), "\0none")
    sent = (
        f[(f["kind"] == SUBMIT) & ~failed]
        .assign(url=url)
        .groupby(["session_id", "url"], observed=True)["rn"]
        .max()
        .rename("ok_rn")
    )
    touch = f[f["kind"].isin((FOCUS, CHANGE)) & f["target"].notna()].assign(url=url)
    last = touch.loc[touch.groupby(["session_id", "url"], observed=True)["rn"].idxmax()]
    last = last.join(sent, on=["session_id", "url"])
    return _found(last[last["ok_rn"].isna() | (last["ok_rn"] < last["rn"])])


RULES = {"rage_click": rage, "dead_click": dead, "form_abandon": form_abandon}


def run(df: pd.DataFrame, rule: str) -> Found:
    return RULES[rule](df)
