"""Naive detectors: plain Python loops over event dicts, one obvious step at a time.

``findings(events, config)`` returns the same findings as :func:`cemreplay.detectors.detect`
as a set of tuples (session_id, kind, t, page_view, target, field, count, duration_ms,
detail), explanations aside. Input is ``table.to_dicts()``.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

from tests.naive.journeys import recording_order

PV, ATTR, CLICK, MOVE, SCROLL, FOCUS, BLUR, CHANGE, SUBMIT, VALID, JSERR, NETFAIL = range(1, 13)
MUTATION, REQUEST, HIDDEN, VISIBLE, LEAVE, RESIZE, MILESTONE = range(13, 20)
RESPONSE = {MUTATION, REQUEST, PV, SCROLL, FOCUS, LEAVE}
INTERACTIVE, TEXT_INPUT, NEW_CONTEXT, NO_RAGE = 1 << 6, 1 << 7, 1 << 8, 1 << 9
UNKNOWN_ELEMENT = 1 << 11
MODIFIERS = (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5)

Event = dict[str, Any]
Finding = tuple[Any, ...]


def sessions(events: list[Event]) -> dict[str, list[Event]]:
    """Per session: events tagged with pv and url (recording order), then sorted by t."""
    out = {}
    for sid, rows in recording_order(events).items():
        urls = [e["target"] for e in rows if e["kind"] == PV]
        seen = 0
        tagged = []
        for e in rows:
            if e["kind"] == PV:
                seen += 1
            ordinal = max(seen - 1, 0)
            tagged.append({**e, "pv": ordinal, "url": urls[ordinal] if urls else None})
        tagged.sort(key=lambda e: e["t"])  # stable: ties keep recording order
        for n, e in enumerate(tagged):
            e["n"] = n
        out[sid] = tagged
    return out


def _f(
    sid: str,
    kind: str,
    e: Event,
    t: int,
    target: Any = None,
    field: Any = None,
    count: int = 1,
    dur: int = 0,
    detail: Any = None,
) -> Finding:
    return (sid, kind, t, e["pv"], target, field, count, dur, detail)


def _responded(rows: list[Event], t: int, lo: int, hi: int) -> bool:
    return any(e["kind"] in RESPONSE and t - lo <= e["t"] <= t + hi for e in rows)


def rage(ss: dict[str, list[Event]], cfg: Any) -> tuple[list[Finding], set[tuple[str, int]]]:
    found: list[Finding] = []
    members: set[tuple[str, int]] = set()
    pats = [re.compile(p) for p in cfg.repeat_controls]
    bad = TEXT_INPUT | NO_RAGE | MODIFIERS | 3
    for sid, rows in ss.items():
        clicks = [e for e in rows if e["kind"] == CLICK]
        chains: list[list[Event]] = []
        cur: list[Event] = []
        for c in clicks:
            ok = (c["a"] & bad) == 0
            if cur and ok:
                p, f = cur[-1], cur[0]
                d = math.hypot(c["x"] - p["x"], c["y"] - p["y"])
                if (
                    c["target"] == f["target"]
                    and c["pv"] == f["pv"]
                    and c["t"] - p["t"] <= cfg.max_interval_ms
                    and d <= cfg.max_distance_px
                ):
                    cur.append(c)
                    continue
            chains.append(cur)
            cur = [c] if ok else []
        chains.append(cur)
        for ch in chains:
            if len(ch) < cfg.min_clicks:
                continue
            tgt = ch[0]["target"]
            repeat = tgt is not None and any(p.search(tgt) for p in pats)
            answered = all(_responded(rows, c["t"], cfg.tolerance_ms, cfg.response_ms) for c in ch)
            triple = len(ch) == 3 and [c["b"] for c in ch] == [1, 2, 3]
            if repeat and answered:
                continue
            # Text selection only on an element known not to be interactive.
            known_plain = not ch[0]["a"] & (INTERACTIVE | UNKNOWN_ELEMENT)
            if cfg.suppress_triple_click and triple and known_plain:
                continue
            members.update((sid, c["n"]) for c in ch)
            found.append(
                _f(
                    sid,
                    "rage_click",
                    ch[0],
                    ch[0]["t"],
                    tgt,
                    None,
                    len(ch),
                    ch[-1]["t"] - ch[0]["t"],
                )
            )
    return found, members


def error_ties(ss: dict[str, list[Event]], cfg: Any) -> dict[tuple[str, int], list[Event]]:
    ties: dict[tuple[str, int], list[Event]] = defaultdict(list)
    for sid, rows in ss.items():
        last = None
        for e in rows:
            if e["kind"] == CLICK:
                last = e
            is_err = e["kind"] == JSERR or (
                e["kind"] == NETFAIL and (e["a"] == 0 or e["a"] >= cfg.min_status)
            )
            if is_err and last is not None and e["t"] - last["t"] <= cfg.window_ms:
                ties[(sid, last["n"])].append(e)
    return ties


def errors(ss: dict[str, list[Event]], cfg: Any) -> list[Finding]:
    out = []
    for (sid, n), errs in error_ties(ss, cfg).items():
        c = ss[sid][n]
        first = errs[0]
        if first["kind"] == JSERR:
            detail = f'JS error "{first["text"] or "(no message)"}"'
        else:
            detail = (
                f"{first['text'] or 'request'} {first['target'] or '(unknown URL)'} "
                f"failed with status {first['a']}"
            )
        out.append(
            _f(
                sid,
                "error_click",
                c,
                c["t"],
                c["target"],
                None,
                len(errs),
                first["t"] - c["t"],
                detail,
            )
        )
    return out


def dead(
    ss: dict[str, list[Event]],
    cfg: Any,
    members: set[tuple[str, int]],
    ties: dict[tuple[str, int], list[Event]],
) -> list[Finding]:
    out = []
    never = TEXT_INPUT | NEW_CONTEXT | MODIFIERS | 3
    for sid, rows in ss.items():
        signals = any(e["kind"] in (MUTATION, REQUEST) for e in rows)
        for c in rows:
            # A click on an unknown element may have been on an interactive one.
            if c["kind"] != CLICK or not c["a"] & (INTERACTIVE | UNKNOWN_ELEMENT):
                continue
            if c["a"] & never:
                continue
            if _responded(rows, c["t"], cfg.tolerance_ms, cfg.timeout_ms):
                continue
            if (sid, c["n"]) in members or (sid, c["n"]) in ties:
                continue
            kind = "dead_click" if signals and not c["a"] & UNKNOWN_ELEMENT else "unknown"
            if kind == "unknown" and not cfg.report_unknown:
                continue
            out.append(_f(sid, kind, c, c["t"], c["target"], None, 1, cfg.timeout_ms))
    return out


def thrash(ss: dict[str, list[Event]], cfg: Any) -> list[Finding]:
    out = []
    for sid, rows in ss.items():
        moves = [e for e in rows if e["kind"] == MOVE]
        runs: list[list[Event]] = []
        for m in moves:
            if (
                runs
                and runs[-1][-1]["pv"] == m["pv"]
                and m["t"] - runs[-1][-1]["t"] <= cfg.max_gap_ms
            ):
                runs[-1].append(m)
            else:
                runs.append([m])
        for run in runs:
            episodes: list[list[Any]] = []  # [first index, last index, max rev]
            for j in range(len(run)):
                i = min(k for k in range(j + 1) if run[j]["t"] - run[k]["t"] <= cfg.window_ms)
                if j - i < 2:
                    continue
                w = run[i : j + 1]
                rev = 0
                for k in range(2, len(w)):
                    for ax in ("x", "y"):
                        p = w[k - 1][ax] - w[k - 2][ax]
                        q = w[k][ax] - w[k - 1][ax]
                        rev += (p > 0 > q) or (p < 0 < q)
                path = sum(
                    math.hypot(w[k]["x"] - w[k - 1]["x"], w[k]["y"] - w[k - 1]["y"])
                    for k in range(1, len(w))
                )
                diag = math.hypot(
                    max(e["x"] for e in w) - min(e["x"] for e in w),
                    max(e["y"] for e in w) - min(e["y"] for e in w),
                )
                dur = w[-1]["t"] - w[0]["t"]
                if rev < cfg.min_reversals or diag <= 0 or dur <= 0:
                    continue
                if path / diag < cfg.min_ratio or path * 1000.0 / dur < cfg.min_speed_px_s:
                    continue
                if episodes and i <= episodes[-1][1]:
                    episodes[-1][1] = j
                    episodes[-1][2] = max(episodes[-1][2], rev)
                else:
                    episodes.append([i, j, rev])
            for i, j, rev in episodes:
                out.append(
                    _f(
                        sid,
                        "thrashed_cursor",
                        run[i],
                        run[i]["t"],
                        None,
                        None,
                        rev,
                        run[j]["t"] - run[i]["t"],
                    )
                )
    return out


def scrolls(ss: dict[str, list[Event]], cfg: Any) -> list[Finding]:
    per_pv: dict[tuple[str, int], list[Any]] = {}
    views: dict[Any, int] = defaultdict(int)
    for sid, rows in ss.items():
        for e in rows:
            if e["kind"] == PV:
                views[e["url"]] += 1
        # Each page view's scrolls on their own, in time order: a scroll of another page view
        # stamped in between (early stamps around a page change) does not break them.
        by_pv: dict[int, list[Event]] = defaultdict(list)
        for e in rows:
            if e["kind"] == SCROLL:
                by_pv[e["pv"]].append(e)
        for pv, sc in by_pv.items():
            direction, revs = 0, []
            for k in range(1, len(sc)):
                d = sc[k]["y"] - sc[k - 1]["y"]
                if d == 0:
                    revs.append(0)
                    continue
                now = 1 if d > 0 else -1
                revs.append(int(direction != 0 and now != direction))
                direction = now
            per_pv[(sid, pv)] = [sc, [0, *revs]]
    totals: dict[Any, int] = defaultdict(int)
    for sc, revs in per_pv.values():
        totals[sc[0]["url"]] += sum(revs)
    out = []
    for (sid, _pv), (sc, revs) in per_pv.items():
        url = sc[0]["url"]
        n = views.get(url, 0)
        mean = totals[url] / n if n else 0.0
        if n >= cfg.min_baseline_views:
            bar = max(float(cfg.min_reversals), mean * cfg.multiplier)
        else:
            bar = float(cfg.fallback_reversals)
        total = sum(revs)
        if total < bar:
            continue
        running = 0
        for e, r in zip(sc, revs, strict=True):
            running += r
            if running >= bar:
                out.append(
                    _f(sid, "excessive_scroll", e, e["t"], None, None, total, e["t"] - sc[0]["t"])
                )
                break
    return out


def quick_back(ss: dict[str, list[Event]], cfg: Any) -> list[Finding]:
    dwell: dict[Any, list[int]] = defaultdict(list)
    cands = []
    for sid, rows in ss.items():
        views = [e for e in rows if e["kind"] == PV]
        for k in range(len(views) - 1):
            dwell[views[k]["target"]].append(views[k + 1]["t"] - views[k]["t"])
        for k in range(1, len(views) - 1):
            a, b, c = views[k - 1], views[k], views[k + 1]
            if c["target"] == a["target"] and b["target"] != a["target"]:
                acts = sum(
                    1
                    for e in rows
                    if e["kind"] in (CLICK, FOCUS, CHANGE, SUBMIT) and e["pv"] == b["pv"]
                )
                cands.append((sid, a, b, c, acts))
    out = []
    for sid, a, b, c, acts in cands:
        d = c["t"] - b["t"]
        base = dwell[b["target"]]
        fast = d < cfg.quick_ms and acts == 0
        under = len(base) >= cfg.min_baseline_views and d < cfg.baseline_ratio * statistics.median(
            base
        )
        if fast or under:
            out.append(_f(sid, "quick_back", b, c["t"], a["target"], None, acts, d))
    return out


def form_errors(ss: dict[str, list[Event]]) -> list[Finding]:
    out = []
    for sid, rows in ss.items():
        for e in rows:
            if e["kind"] != VALID:
                continue
            typed = [
                p
                for p in rows[: e["n"]]
                if p["kind"] in (CHANGE, BLUR) and p["pv"] == e["pv"] and p["target"] == e["target"]
            ]
            msg = e["text"] or "(no message)"
            shape = typed[-1]["text"] if typed else None
            detail = f"{msg} | {shape}" if shape is not None else msg
            out.append(_f(sid, "form_error", e, e["t"], None, e["target"], 1, 0, detail))
    return out


def submits(ss: dict[str, list[Event]], cfg: Any) -> list[tuple[str, Event, bool, Any]]:
    """(session, submit, failed, error event or None) for every SUBMIT."""
    out = []
    for sid, rows in ss.items():
        end = rows[-1]["t"]
        for s in rows:
            if s["kind"] != SUBMIT:
                continue
            later = [e for e in rows[s["n"] + 1 :] if e["kind"] == VALID]
            earlier = [e for e in rows[: s["n"]] if e["kind"] == VALID]
            oks = [
                e
                for e in rows[s["n"] + 1 :]
                if e["kind"] == PV
                or (
                    e["kind"] == MILESTONE
                    and (not cfg.success_milestones or e["target"] in cfg.success_milestones)
                )
            ]
            err = None
            if later and later[0]["t"] - s["t"] <= cfg.error_window_ms:
                err = later[0]
            elif earlier and s["t"] - earlier[-1]["t"] <= cfg.tolerance_ms:
                err = earlier[-1]
            success = bool(oks) and oks[0]["t"] - s["t"] <= cfg.success_window_ms
            silent = not success and end - s["t"] > cfg.success_window_ms
            out.append((sid, s, err is not None or silent, err))
    return out


def failed(ss: dict[str, list[Event]], cfg: Any) -> list[Finding]:
    out = []
    for sid, s, bad, err in submits(ss, cfg):
        if not bad:
            continue
        if err is not None:
            out.append(
                _f(
                    sid,
                    "failed_submit",
                    s,
                    s["t"],
                    s["target"],
                    err["target"],
                    1,
                    err["t"] - s["t"],
                    f"validation error: {err['text'] or '(no message)'}",
                )
            )
        else:
            out.append(
                _f(
                    sid,
                    "failed_submit",
                    s,
                    s["t"],
                    s["target"],
                    None,
                    1,
                    cfg.success_window_ms,
                    "no success",
                )
            )
    return out


def refills(ss: dict[str, list[Event]], fcfg: Any) -> list[Finding]:
    fails = {(sid, s["n"]) for sid, s, bad, _ in submits(ss, fcfg) if bad}
    out = []
    for sid, rows in ss.items():
        count: dict[tuple[int, Any], int] = defaultdict(int)
        for c in rows:
            if c["kind"] != CHANGE:
                continue
            key = (c["pv"], c["target"])
            prev = [
                p for p in rows[: c["n"]] if p["kind"] == CHANGE and (p["pv"], p["target"]) == key
            ]
            if not prev:
                continue
            p = prev[-1]
            between = rows[p["n"] + 1 : c["n"]]
            left = any(e["kind"] == BLUR and (e["pv"], e["target"]) == key for e in between)
            resub = any((sid, e["n"]) in fails and e["pv"] == c["pv"] for e in between)
            if left or resub:
                count[key] += 1
                why = "after a failed submit" if resub else "after leaving it"
                out.append(
                    _f(
                        sid,
                        "field_refill",
                        c,
                        c["t"],
                        None,
                        c["target"],
                        count[key],
                        c["t"] - p["t"],
                        why,
                    )
                )
    return out


def abandons(ss: dict[str, list[Event]], cfg: Any, fcfg: Any) -> list[Finding]:
    ok_rows: dict[tuple[str, Any], list[int]] = defaultdict(list)
    for sid, s, bad, _ in submits(ss, fcfg):
        if not bad:
            ok_rows[(sid, s["url"])].append(s["n"])
    kinds = (FOCUS, CHANGE) if cfg.start_on_focus else (CHANGE,)
    out = []
    for sid, rows in ss.items():
        touches: dict[Any, list[Event]] = defaultdict(list)
        for e in rows:
            if e["kind"] in kinds and e["target"] is not None:
                touches[e["url"]].append(e)
        for url, ts in touches.items():
            last = ts[-1]
            if any(n > last["n"] for n in ok_rows[(sid, url)]):
                continue
            fields = len({e["target"] for e in ts})
            out.append(
                _f(
                    sid,
                    "form_abandon",
                    last,
                    last["t"],
                    None,
                    last["target"],
                    fields,
                    last["t"] - ts[0]["t"],
                )
            )
    return out


def path_of(url: str | None) -> str | None:
    if url is None:
        return None
    p = urlsplit(url).path if "://" in url else url.split("?")[0].split("#")[0]
    p = p.rstrip("/")
    return p or "/"


def funnels(ss: dict[str, list[Event]], cfg: Any) -> list[Finding]:
    out = []
    steps = list(cfg.steps)
    for sid, rows in ss.items():
        views = [e for e in rows if e["kind"] == PV]
        state = -1
        entry: Event = {}
        reach: Event = {}
        attempts: list[tuple[Event, Event, int]] = []
        for v in views:
            if state >= 0 and v["t"] - entry["t"] > cfg.window_ms:
                attempts.append((entry, reach, state))
                state = -1
            p = path_of(v["target"])
            step = steps.index(p) if p in steps else -1
            if state == -1:
                if step == 0:
                    state, entry, reach = 0, v, v
            elif step == state + 1:
                state, reach = state + 1, v
            if state == len(steps) - 1:
                state = -1
        if state >= 0:
            attempts.append((entry, reach, state))
        end_t = rows[-1]["t"]
        for entry, reach, k in attempts:
            end = min(end_t, entry["t"] + cfg.window_ms)
            out.append(
                _f(
                    sid,
                    "funnel_abandon",
                    reach,
                    reach["t"],
                    None,
                    None,
                    k + 1,
                    end - entry["t"],
                    steps[k],
                )
            )
    return out


def findings(events: list[Event], config: Any) -> set[Finding]:
    ss = sessions(events)
    r, members = rage(ss, config.rage_click)
    ties = error_ties(ss, config.error_click)
    out = [*r, *errors(ss, config.error_click), *dead(ss, config.dead_click, members, ties)]
    out += thrash(ss, config.thrashed_cursor)
    out += scrolls(ss, config.excessive_scroll)
    out += quick_back(ss, config.quick_back)
    out += form_errors(ss)
    out += failed(ss, config.failed_submit)
    out += refills(ss, config.failed_submit)
    out += abandons(ss, config.form_abandon, config.failed_submit)
    out += funnels(ss, config.funnel_abandon)
    return set(out)
