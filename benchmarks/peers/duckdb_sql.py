"""The three rules as DuckDB window SQL over the raw event table (what an analyst with a
warehouse would write). ``load(events)`` copies the events into a DuckDB table before the clock
starts; each rule is one query.

Common steps: page views are numbered in recording order (``batch, i``; events before the
first PAGE_VIEW belong to page view 0) and take the URL of their PAGE_VIEW event; events are
then ordered by time within each session (``t, batch, i``), as the detectors order them.
"""

from __future__ import annotations

import duckdb
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

name = "DuckDB window SQL"


def load(events: pl.DataFrame, threads: int = 2) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"PRAGMA threads={threads}")
    table = events.select(
        pl.col("session_id").cast(pl.String),
        "t",
        "batch",
        "i",
        "kind",
        "x",
        "y",
        "a",
        "b",
        pl.col("target").cast(pl.String),
    ).to_arrow()
    con.register("raw", table)
    con.execute("CREATE TABLE ev AS SELECT * FROM raw")
    con.unregister("raw")
    return con


_ORDERED = f"""
p AS (
  SELECT *, greatest(sum(CASE WHEN kind = {PV} THEN 1 ELSE 0 END) OVER (
           PARTITION BY session_id ORDER BY batch, i ROWS UNBOUNDED PRECEDING) - 1, 0) AS pv
  FROM ev
), o AS (
  SELECT *,
    first_value(CASE WHEN kind = {PV} THEN target END IGNORE NULLS) OVER (
      PARTITION BY session_id, pv ORDER BY batch, i
      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS url,
    row_number() OVER (PARTITION BY session_id ORDER BY t, batch, i) AS rn
  FROM p
)"""

_BURSTS = f"""
c AS (
  SELECT session_id, rn, t, x, y, target, pv, (a & {RAGE_BAD}) = 0 AS ok FROM o WHERE kind = {CLICK}
), l AS (
  SELECT *, lag(t) OVER w AS pt, lag(x) OVER w AS px, lag(y) OVER w AS py,
         lag(target) OVER w AS ptg, lag(pv) OVER w AS ppv, lag(ok) OVER w AS pok
  FROM c WINDOW w AS (PARTITION BY session_id ORDER BY rn)
), ch AS (
  SELECT *, sum(CASE WHEN ok AND pok AND target IS NOT DISTINCT FROM ptg AND pv = ppv
                      AND t - pt <= {RAGE_GAP_MS}
                      AND (x - px) * (x - px) + (y - py) * (y - py) <= {RAGE_DIST2}
                 THEN 0 ELSE 1 END) OVER (
           PARTITION BY session_id ORDER BY rn ROWS UNBOUNDED PRECEDING) AS chain
  FROM l
), bursts AS (
  SELECT session_id, chain, min(t) AS t, min(rn) AS first_rn, max(rn) AS last_rn
  FROM ch WHERE ok GROUP BY session_id, chain HAVING count(*) >= {RAGE_MIN}
)"""

RAGE = f"WITH {_ORDERED}, {_BURSTS} SELECT session_id, t FROM bursts"

_RESP = ", ".join(map(str, RESPONSE))

DEAD = f"""WITH {_ORDERED}, {_BURSTS}, r AS (
  SELECT *,
    max(CASE WHEN kind IN ({_RESP}) THEN t END) OVER (
      PARTITION BY session_id ORDER BY rn ROWS UNBOUNDED PRECEDING) AS prev_resp,
    min(CASE WHEN kind IN ({_RESP}) THEN t END) OVER (
      PARTITION BY session_id ORDER BY rn ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)
      AS next_resp,
    max(CASE WHEN kind = {CLICK} THEN rn END) OVER (
      PARTITION BY session_id ORDER BY rn ROWS UNBOUNDED PRECEDING) AS click_rn,
    max(CASE WHEN kind = {CLICK} THEN t END) OVER (
      PARTITION BY session_id ORDER BY rn ROWS UNBOUNDED PRECEDING) AS click_t,
    bool_or(kind IN ({MUTATION}, {REQUEST})) OVER (PARTITION BY session_id) AS signals
  FROM o
), ties AS (
  SELECT DISTINCT session_id, click_rn AS rn FROM r
  WHERE (kind = {JSERR} OR (kind = {NETFAIL} AND (a = 0 OR a >= {ERROR_MIN_STATUS})))
    AND click_rn IS NOT NULL AND t - click_t <= {ERROR_WINDOW_MS}
)
SELECT r.session_id, r.t FROM r
WHERE r.kind = {CLICK} AND (r.a & {DEAD_ELEMENT}) <> 0 AND (r.a & {DEAD_NEVER}) = 0
  AND (r.a & {UNKNOWN_ELEMENT}) = 0 AND r.signals
  AND NOT coalesce(r.prev_resp >= r.t - {DEAD_TOLERANCE_MS}, false)
  AND NOT coalesce(r.next_resp <= r.t + {DEAD_TIMEOUT_MS}, false)
  AND NOT EXISTS (SELECT 1 FROM ties WHERE ties.session_id = r.session_id AND ties.rn = r.rn)
  AND NOT EXISTS (SELECT 1 FROM bursts b WHERE b.session_id = r.session_id
                  AND r.rn BETWEEN b.first_rn AND b.last_rn)
"""

FORM_ABANDON = f"""WITH {_ORDERED}, e AS (
  SELECT *, max(t) OVER (PARTITION BY session_id) AS end_t FROM o
), f AS (
  SELECT * FROM e WHERE kind IN ({PV}, {FOCUS}, {CHANGE}, {SUBMIT}, {VALID}, {MILESTONE})
), s AS (
  SELECT *,
    min(CASE WHEN kind = {VALID} THEN t END) OVER (
      PARTITION BY session_id ORDER BY rn ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)
      AS next_err,
    max(CASE WHEN kind = {VALID} THEN t END) OVER (
      PARTITION BY session_id ORDER BY rn ROWS UNBOUNDED PRECEDING) AS prev_err,
    min(CASE WHEN kind IN ({PV}, {MILESTONE}) THEN t END) OVER (
      PARTITION BY session_id ORDER BY rn ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)
      AS next_ok
  FROM f
), sent AS (
  SELECT session_id, url, max(rn) AS ok_rn FROM s
  WHERE kind = {SUBMIT}
    AND NOT coalesce(next_err - t <= {SUBMIT_ERROR_MS}, false)
    AND NOT coalesce(t - prev_err <= {SUBMIT_TOLERANCE_MS}, false)
    AND NOT (NOT coalesce(next_ok - t <= {SUBMIT_SUCCESS_MS}, false)
             AND end_t - t > {SUBMIT_SUCCESS_MS})
  GROUP BY session_id, url
), touched AS (
  SELECT session_id, url, max(rn) AS last_rn, arg_max(t, rn) AS t FROM f
  WHERE kind IN ({FOCUS}, {CHANGE}) AND target IS NOT NULL GROUP BY session_id, url
)
SELECT touched.session_id, touched.t FROM touched LEFT JOIN sent
  ON sent.session_id = touched.session_id AND sent.url IS NOT DISTINCT FROM touched.url
WHERE sent.ok_rn IS NULL OR sent.ok_rn < touched.last_rn
"""

QUERIES = {"rage_click": RAGE, "dead_click": DEAD, "form_abandon": FORM_ABANDON}


def run(con: duckdb.DuckDBPyConnection, rule: str) -> Found:
    return [(str(s), int(t)) for s, t in con.execute(QUERIES[rule]).fetchall()]
