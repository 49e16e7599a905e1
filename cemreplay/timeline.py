"""One session as a support rep reads it: who, the pages in order, and what happened on each.

:func:`to_json` turns the events of one session (and its findings) into plain JSON-ready data;
:func:`render_text` prints that as a terminal timeline. Both read only the tables they are
given (never the store), and neither ever sees a typed value: the event table holds only
shapes (``+99 9999 999999``), lengths and messages.

Times are given twice: as ISO-8601 UTC (``2026-01-03T19:12:42.968Z``) and as milliseconds
from the session's first event (``offset_ms``), which the text shows as ``+MM:SS.s``.

Mouse moves and scrolls are not listed one by one: scrolls become one ``activity`` entry per
run (between two meaningful events) and mouse moves are counted per page. The HTML replay
(:mod:`cemreplay.replay`) reads the raw positions through :func:`collect`.
"""

from __future__ import annotations

import difflib
import math
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from cemreplay.errors import SessionNotFoundError
from cemreplay.events import check
from cemreplay.journeys import with_page_views
from cemreplay.schema import ClickFlag, DeviceClass, ErrorSource, EventKind, NavigationType

__all__ = ["collect", "render_text", "session_events", "to_json"]

K = EventKind
#: Kinds listed one line each; the rest are summarised (moves, scrolls) or left out (DOM
#: mutations, requests that did not fail, geometry, attributes: they feed the header).
LISTED = frozenset(
    {
        K.CLICK,
        K.FOCUS,
        K.BLUR,
        K.CHANGE,
        K.SUBMIT,
        K.VALIDATION_ERROR,
        K.JS_ERROR,
        K.NETWORK_FAILURE,
        K.MILESTONE,
        K.RESIZE,
        K.VISIBILITY_HIDDEN,
        K.VISIBILITY_VISIBLE,
        K.PAGE_LEAVE,
    }
)
_BUTTONS = ("left", "middle", "right", "other")
_MODIFIERS = (
    ("ctrl", ClickFlag.CTRL),
    ("shift", ClickFlag.SHIFT),
    ("alt", ClickFlag.ALT),
    ("meta", ClickFlag.META),
)


# ------------------------------------------------------------------------------- selecting


def session_events(events: pl.DataFrame, session_id: str) -> pl.DataFrame:
    """The events of one session in recording order, each tagged with its page view.

    Raises :class:`~cemreplay.errors.SessionNotFoundError` (a ``KeyError``) when the session
    has no events, naming the closest ids the table does hold.
    """
    check(events)
    sid = str(session_id)
    one = events.filter(pl.col("session_id") == sid)
    if one.is_empty():
        known = events.get_column("session_id").unique().cast(pl.String).drop_nulls().to_list()
        near = [k for k in known if k.casefold() == sid.strip().casefold()]
        near += difflib.get_close_matches(sid.strip(), known, n=3, cutoff=0.6)
        hint = (
            f"did you mean {', '.join(dict.fromkeys(near))}?"
            if near
            else "check the id with the caller (it is case-sensitive), or that their events "
            "have been collected"
        )
        raise SessionNotFoundError(
            f"no events for session {sid!r} in a table of {len(known)} session(s); hint: {hint}"
        )
    tagged = with_page_views(one).sort("batch", "i")
    return tagged.unique(subset=["batch", "i"], keep="first", maintain_order=True)


def _session_findings(findings: pl.DataFrame, session_id: str) -> list[dict[str, Any]]:
    if findings.is_empty() or "kind" not in findings.columns or "t" not in findings.columns:
        return []
    own = findings
    if "session_id" in findings.columns:
        own = findings.filter(pl.col("session_id").cast(pl.String) == str(session_id))
    return own.sort("t", maintain_order=True).to_dicts()


# ------------------------------------------------------------------------------ formatting


def iso(t_ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC with milliseconds: ``2026-01-03T19:12:42.968Z``."""
    return datetime.fromtimestamp(t_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def offset(ms: int) -> str:
    """Milliseconds from session start as ``+MM:SS.s`` (``+H:MM:SS.s`` past an hour)."""
    sign = "-" if ms < 0 else "+"
    tenths = abs(ms) // 100
    h, rest = divmod(tenths, 36_000)
    m, rest = divmod(rest, 600)
    s, d = divmod(rest, 10)
    return f"{sign}{h}:{m:02d}:{s:02d}.{d}" if h else f"{sign}{m:02d}:{s:02d}.{d}"


def duration(ms: int) -> str:
    """A duration for people: ``0.6 s``, ``14.2 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    s = round(ms / 1000)
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _local(t_ms: int, tz: str | None) -> str | None:
    if not tz:
        return None
    try:
        zone = ZoneInfo(tz)
    except (ValueError, KeyError, OSError):
        return None  # attacker-controlled or unknown: just do not show a local time
    return datetime.fromtimestamp(t_ms / 1000, tz=zone).isoformat(timespec="seconds")


def _name(enum: type[DeviceClass | NavigationType | ErrorSource], value: int) -> str:
    try:
        return enum(value).name.lower()
    except ValueError:
        return f"unknown({value})"


def _num(value: Any) -> Any:
    """Plain JSON numbers: non-finite floats become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ------------------------------------------------------------------------------- collecting


@dataclass
class Collected:
    """Everything the timeline and the replay read from one session, in plain Python."""

    summary: dict[str, Any]
    pages: list[dict[str, Any]]
    events: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    #: for the replay: (offset_ms, x, y, page_view) per mouse move
    moves: list[tuple[int, int, int, int]] = field(default_factory=list)
    #: (offset_ms, scroll_x, scroll_y, page_height, viewport_height, page_view) per scroll
    scrolls: list[tuple[int, int, int, int, int, int]] = field(default_factory=list)
    #: (offset_ms, x, y, width, height, selector, page_view) per element box
    boxes: list[tuple[int, int, int, int, int, str, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary,
            "pages": self.pages,
            "events": self.events,
            "findings": self.findings,
        }


def collect(
    events: pl.DataFrame,
    findings: pl.DataFrame,
    *,
    session_id: str,
    score: float | None = None,
) -> Collected:
    """Read one session into :class:`Collected` (see :func:`to_json` for the fields)."""
    rows = (
        session_events(events, session_id)
        .select("visitor_id", "t", "kind", "x", "y", "a", "b", "target", "text", "page_view")
        .rows()
    )
    start = min(r[1] for r in rows)
    end = max(r[1] for r in rows)
    out = Collected(summary={}, pages=[], events=[], findings=[])
    segments: dict[str, str] = {}
    last_shape: dict[str, tuple[str | None, int]] = {}
    run: dict[str, Any] | None = None
    hidden_at: int | None = None
    moves_per_page: dict[int, int] = {}
    scroll_y = 0

    def close_run() -> None:
        nonlocal run
        if run is not None:
            out.events.append(run)
            run = None

    for _vid, t, kind, x, y, a, b, target, text, pv in rows:
        off = t - start
        base = {"kind": "", "t": iso(t), "offset_ms": off, "page_view": pv}
        if kind == K.PAGE_VIEW:
            close_run()
            scroll_y = 0
            out.pages.append(
                {
                    "page_view": pv,
                    "url": target,
                    "referrer": text,
                    "navigation": _name(NavigationType, b),
                    "t": iso(t),
                    "offset_ms": off,
                    "dwell_ms": 0,
                    "device_class": _name(DeviceClass, a),
                    "viewport": {"width": x, "height": y},
                    "mouse_moves": 0,
                    "scrolls": 0,
                    "max_scroll_depth_pct": None,
                    "left": False,
                }
            )
        elif kind == K.ATTRIBUTE:
            if target is not None and text is not None:
                segments[target] = text
        elif kind == K.MOUSE_MOVE:
            out.moves.append((off, x, y, pv))
            moves_per_page[pv] = moves_per_page.get(pv, 0) + 1
        elif kind == K.SCROLL:
            out.scrolls.append((off, x, y, a, b, pv))
            if run is None:
                run = {
                    **base,
                    "kind": "activity",
                    "scrolls": 0,
                    "from_y": scroll_y,
                    "to_y": y,
                    "max_y": y,
                    "page_height": a,
                    "depth_pct": None,
                    "until_offset_ms": off,
                }
            run["scrolls"] += 1
            run["to_y"] = scroll_y = y
            run["max_y"] = max(run["max_y"], y)
            run["page_height"] = a
            run["until_offset_ms"] = off
            if a > 0:
                run["depth_pct"] = min(100, round(100 * (run["max_y"] + b) / a))
        elif kind == K.GEOMETRY:
            out.boxes.append((off, x, y, a, b, target or "", pv))
        elif kind in LISTED:
            close_run()
            item = {**base, "kind": K(kind).name.lower(), **_fields(K(kind), x, y, a, target, text)}
            if kind in (K.CHANGE, K.BLUR) and target is not None:
                last_shape[target] = (text, a)
            elif kind == K.VALIDATION_ERROR:
                item["source"] = _name(ErrorSource, a)
                shape, length = last_shape.get(target or "", (None, 0))
                item["shape"], item["length"] = shape, length
            elif kind == K.VISIBILITY_HIDDEN:
                hidden_at = t
            elif kind == K.VISIBILITY_VISIBLE and hidden_at is not None:
                item["hidden_ms"] = t - hidden_at
                hidden_at = None
            out.events.append(item)
    close_run()

    if not out.pages:  # events but no page view: one page of unknown URL
        out.pages.append(
            {
                "page_view": 0,
                "url": None,
                "referrer": None,
                "navigation": None,
                "t": iso(start),
                "offset_ms": 0,
                "dwell_ms": 0,
                "device_class": "unknown",
                "viewport": {"width": 0, "height": 0},
                "mouse_moves": 0,
                "scrolls": 0,
                "max_scroll_depth_pct": None,
                "left": False,
            }
        )
    _finish_pages(out, end - start, moves_per_page)
    out.findings = [_finding(f, start) for f in _session_findings(findings, session_id)]
    if score is None and out.findings and "score" in findings.columns:
        scores = [f["score"] for f in _session_findings(findings, session_id)]
        score = next((float(s) for s in scores if s is not None), None)
    first = out.pages[0]
    out.summary = {
        "session_id": str(session_id),
        "visitor_id": rows[0][0],
        "start": iso(start),
        "end": iso(end),
        "start_local": _local(start, segments.get("timezone")),
        "duration_ms": end - start,
        "device_class": first["device_class"],
        "viewport": first["viewport"],
        "segments": segments,
        "score": _num(score),
        "counts": {
            "events": len(rows),
            "pages": len(out.pages),
            "clicks": sum(e["kind"] == "click" for e in out.events),
            "findings": len(out.findings),
        },
    }
    return out


def _fields(
    kind: EventKind, x: int, y: int, a: int, target: str | None, text: str | None
) -> dict[str, Any]:
    """The listed kinds' fields under their meaning (never a value: only shapes exist)."""
    if kind == K.CLICK:
        flags = ClickFlag(a & 0x7FF)
        return {
            "selector": target,
            "x": x,
            "y": y,
            "button": _BUTTONS[a & ClickFlag.BUTTON_MASK],
            "modifiers": [n for n, f in _MODIFIERS if f in flags],
            "interactive": ClickFlag.INTERACTIVE in flags,
            "link": ClickFlag.LINK in flags,
        }
    if kind in (K.FOCUS,):
        return {"field": target}
    if kind in (K.BLUR, K.CHANGE):
        return {"field": target, "length": a, "shape": text}
    if kind == K.SUBMIT:
        return {"form": target}
    if kind == K.VALIDATION_ERROR:
        return {"field": target, "message": text}
    if kind == K.JS_ERROR:
        return {"source": target, "message": text}
    if kind == K.NETWORK_FAILURE:
        return {"url": target, "method": text, "status": a}
    if kind == K.MILESTONE:
        return {"name": target, "value": a}
    if kind == K.RESIZE:
        return {"width": x, "height": y}
    return {}


def _finish_pages(out: Collected, total_ms: int, moves: dict[int, int]) -> None:
    """Dwell (to the next page view, or to the session's last event), and activity totals."""
    for i, page in enumerate(out.pages):
        nxt = out.pages[i + 1]["offset_ms"] if i + 1 < len(out.pages) else total_ms
        page["dwell_ms"] = nxt - page["offset_ms"]
        page["mouse_moves"] = moves.get(page["page_view"], 0)
    for e in out.events:
        page = _page_of(out.pages, e["page_view"])
        if e["kind"] == "activity":
            page["scrolls"] += e["scrolls"]
            if e["depth_pct"] is not None:
                page["max_scroll_depth_pct"] = max(
                    page["max_scroll_depth_pct"] or 0, e["depth_pct"]
                )
        elif e["kind"] == "page_leave":
            page["left"] = True


def _page_of(pages: list[dict[str, Any]], pv: Any) -> dict[str, Any]:
    for page in pages:
        if page["page_view"] == pv:
            return page
    return pages[0] if pv is None or pv < pages[0]["page_view"] else pages[-1]


def _finding(f: dict[str, Any], start: int) -> dict[str, Any]:
    t = int(f["t"])
    keys = (
        "page_view",
        "page_url",
        "target",
        "field",
        "severity",
        "count",
        "duration_ms",
        "detail",
        "explanation",
    )
    return {
        "kind": str(f["kind"]),
        "t": iso(t),
        "offset_ms": t - start,
        **{k: _num(f.get(k)) for k in keys},
    }


# ------------------------------------------------------------------------------ public API


def to_json(
    events: pl.DataFrame,
    findings: pl.DataFrame,
    *,
    session_id: str,
    score: float | None = None,
) -> dict[str, Any]:
    """One session as plain JSON-ready data (``json.dumps`` takes it as is).

    Keys: ``session_id``, ``visitor_id``, ``start``/``end`` (ISO-8601 UTC),
    ``start_local`` (in the visitor's ``timezone`` attribute, when valid), ``duration_ms``,
    ``device_class``, ``viewport``, ``segments`` (the ``ATTRIBUTE`` keys: locale, timezone,
    country, utm_campaign, ...), ``score`` (the ``score`` argument, else a ``score`` column
    of ``findings``, else None), ``counts``, then:

    - ``pages``: in order, with ``url``, ``referrer``, ``navigation``, ``t``, ``offset_ms``,
      ``dwell_ms``, ``device_class``, ``viewport``, ``mouse_moves``, ``scrolls``,
      ``max_scroll_depth_pct`` and ``left`` (a ``PAGE_LEAVE`` was seen);
    - ``events``: each meaningful event with ``kind``, ``t``, ``offset_ms``, ``page_view``
      and its fields: click (selector, x, y, button, modifiers, interactive, link), focus
      (field), change/blur (field, length, shape), submit (form), validation_error (field,
      message, source, and the shape and length last typed there), js_error (source,
      message), network_failure (url, method, status), milestone (name, value), resize,
      visibility_hidden/visible (hidden_ms), page_leave, and ``activity`` for a run of
      scrolls (scrolls, from_y, to_y, max_y, page_height, depth_pct, until_offset_ms);
    - ``findings``: each with ``kind``, ``t``, ``offset_ms``, ``page_view``, ``page_url``,
      ``target``, ``field``, ``severity``, ``count``, ``duration_ms``, ``detail`` and
      ``explanation``.

    ``findings`` may be any frame with ``kind`` and ``t`` (other columns are optional), or
    an empty frame. Raises SessionNotFoundError when the session has no events.
    """
    return collect(events, findings, session_id=session_id, score=score).to_dict()


# ------------------------------------------------------------------------------ the text

_STYLE = {
    "time": "2",
    "page": "1;36",
    "bad": "1;31",
    "warn": "33",
    "good": "32",
    "dim": "2",
    "head": "1",
}
#: Short labels for the text; the JSON keeps the kind names.
_LABELS = {
    "change": "typed",
    "validation_error": "invalid",
    "js_error": "js error",
    "network_failure": "failed req",
    "visibility_hidden": "tab hidden",
    "visibility_visible": "tab back",
    "page_leave": "leave",
    "activity": "scroll",
}
_KIND_STYLE = {
    "validation_error": "bad",
    "js_error": "bad",
    "network_failure": "bad",
    "milestone": "good",
    "activity": "dim",
    "visibility_hidden": "dim",
    "visibility_visible": "dim",
}


def _clean(s: object) -> str:
    """Text safe for a terminal: control characters (ESC, CR, ...) shown escaped, not run."""
    return "".join(
        c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii")
        for c in str(s)
    )


def _event_text(e: dict[str, Any]) -> str:
    k = e["kind"]
    if k == "click":
        mods = "+".join(e["modifiers"])
        extra = f" {e['button']}-click" if e["button"] != "left" else ""
        return f"{e['selector']} ({e['x']}, {e['y']}){extra}{' ' + mods if mods else ''}"
    if k == "focus":
        return f"{e['field']}"
    if k in ("change", "blur"):
        return f'{e["field"]}  "{e["shape"] or ""}" ({e["length"]} chars)'
    if k == "submit":
        return f"{e['form']}"
    if k == "validation_error":
        typed = f'  typed "{e["shape"]}" ({e["length"]} chars)' if e["shape"] is not None else ""
        return f'{e["field"]}: "{e["message"]}"{typed} [{e["source"]}]'
    if k == "js_error":
        return f"{e['message']}  ({e['source']})"
    if k == "network_failure":
        return f"{e['method']} {e['url']} -> {e['status'] or 'no response'}"
    if k == "milestone":
        return f"{e['name']} (value {e['value']})"
    if k == "resize":
        return f"{e['width']}x{e['height']}"
    if k == "visibility_hidden":
        return "the visitor switched away from this tab"
    if k == "visibility_visible":
        away = f" after {duration(e['hidden_ms'])}" if "hidden_ms" in e else ""
        return f"the visitor came back{away}"
    if k == "page_leave":
        return "the page was closed or left"
    if k == "activity":
        start, end, deepest = e["from_y"], e["to_y"], e["max_y"]
        if deepest > max(start, end):
            way = f"down to y={deepest} and back up to y={end}"
        else:
            way = (
                f"down to y={end}"
                if end > start
                else f"up to y={end}"
                if end < start
                else "in place"
            )
        depth = f" ({e['depth_pct']}% of the page seen)" if e["depth_pct"] is not None else ""
        span = duration(e["until_offset_ms"] - e["offset_ms"])
        return f"{e['scrolls']}x over {span}, {way}{depth}"
    return ""


def render_text(
    events: pl.DataFrame,
    findings: pl.DataFrame,
    *,
    session_id: str,
    color: bool = False,
    width: int = 100,
    score: float | None = None,
) -> str:
    """The session as a terminal timeline.

    A header (session, visitor, when in UTC and local time, device and viewport, segments,
    duration, pages, score when known), then per page view a heading (URL, time, dwell,
    referrer, mouse moves, scroll depth) and one line per meaningful event,
    ``+00:12.4  click       button#apply-coupon (812, 440)``, with each finding inline at its
    time: ``+00:15.9  !! rage_click  3 clicks in 0.25 s ...``. Scrolls are one line per run;
    mouse moves are counted in the page heading. ANSI colours only when ``color`` is True.
    Text from the session (selectors, URLs, messages) has control characters escaped, so it
    cannot move the cursor or recolour the terminal. Raises SessionNotFoundError when the
    session has no events.
    """
    data = collect(events, findings, session_id=session_id, score=score).to_dict()
    width = max(width, 40)

    def paint(style: str, s: str) -> str:
        return f"\x1b[{_STYLE[style]}m{s}\x1b[0m" if color else s

    def wrap(first: str, rest: str, *, indent: int, style: str | None = None) -> list[str]:
        lines = textwrap.wrap(_clean(rest), width - indent, break_on_hyphens=False) or [""]
        body = [first + lines[0]] + [" " * indent + ln for ln in lines[1:]]
        return [paint(style, ln) if style else ln for ln in body]

    out = _header(data, paint, wrap)
    items: list[tuple[int, int, int, dict[str, Any]]] = [
        (e["page_view"], e["offset_ms"], 0, e) for e in data["events"]
    ]
    for f in data["findings"]:
        pv = f["page_view"]
        if pv is None:  # no page view given: the last page that started before it
            pv = next(
                (
                    p["page_view"]
                    for p in reversed(data["pages"])
                    if p["offset_ms"] <= f["offset_ms"]
                ),
                data["pages"][0]["page_view"],
            )
        items.append((pv, f["offset_ms"], 1, {**f, "_finding": True}))
    items.sort(key=lambda it: (it[0], it[1], it[2]))

    pages = data["pages"]
    seen: set[int] = set()
    typed: dict[Any, Any] = {}
    for pv, off, _, item in items:
        if item["kind"] == "change":
            typed[item["field"]] = item["shape"]
        elif item["kind"] == "blur" and typed.get(item["field"], ...) == item["shape"]:
            continue  # leaving the field as just typed: the "typed" line says it all
        page = _page_of(pages, pv)
        if page["page_view"] not in seen:
            seen.add(page["page_view"])
            out += _page_heading(page, len(pages), pages.index(page), paint, wrap)
        stamp = paint("time", f"  {offset(off)}  ")
        if item.get("_finding"):
            sev = item["severity"]
            style = "bad" if sev is None or sev >= 0.7 else "warn"
            head = f"!! {_clean(item['kind'])}  "
            text = item["explanation"] or item["detail"] or ""
            lines = wrap(head, text, indent=14 + len(head))
            out.append(
                stamp
                + paint(style, lines[0])
                + "".join("\n" + paint(style, ln) for ln in lines[1:])
            )
        else:
            label = f"{_LABELS.get(item['kind'], item['kind']):<11}"
            lines = wrap(label, _event_text(item), indent=24)
            kind_style = _KIND_STYLE.get(item["kind"])
            body = "\n".join(lines)
            out.append(stamp + (paint(kind_style, body) if kind_style else body))
    for page in pages:  # pages with nothing listed still appear, in order
        if page["page_view"] not in seen:
            out += _page_heading(page, len(pages), pages.index(page), paint, wrap)
    return "\n".join(out) + "\n"


def _header(data: dict[str, Any], paint: Any, wrap: Any) -> list[str]:
    seg = data["segments"]
    when = f"{data['start'][:19].replace('T', ' ')} UTC"
    if data["start_local"]:
        when += f" ({data['start_local'][11:19]} local, {seg['timezone']})"
    n = data["counts"]
    lines = [
        paint("head", f"Session {_clean(data['session_id'])}")
        + f"  visitor {_clean(data['visitor_id'])}",
        *wrap("When      ", f"{when}, lasted {duration(data['duration_ms'])}", indent=10),
        f"Device    {data['device_class']}, viewport "
        f"{data['viewport']['width']}x{data['viewport']['height']}",
    ]
    parts = [f"{k} {v}" for k, v in seg.items() if k != "timezone" or not data["start_local"]]
    if parts:
        lines += wrap("Segments  ", " · ".join(parts), indent=10)
    kinds = ", ".join(dict.fromkeys(f["kind"] for f in data["findings"])) or "none"
    struggle = f"Struggle  {n['findings']} finding(s): {kinds}"
    if data["score"] is not None:
        struggle += f"; score {data['score']:.1f}"
    lines += wrap("", struggle, indent=10, style="bad" if n["findings"] else None)
    lines.append(f"Activity  {n['pages']} page(s), {n['clicks']} click(s), {n['events']} events")
    return lines


def _page_heading(page: dict[str, Any], n: int, i: int, paint: Any, wrap: Any) -> list[str]:
    head = f"-- page {i + 1}/{n}  {_clean(page['url'] or '(unknown URL)')}  "
    head += f"at {offset(page['offset_ms'])}, {duration(page['dwell_ms'])} on page"
    facts = []
    if page["referrer"]:
        facts.append(f"from {page['referrer']}")
    if page["navigation"] and page["navigation"] != "load":
        facts.append(f"by {page['navigation']}")
    if page["mouse_moves"]:
        facts.append(f"{page['mouse_moves']} mouse move{'s' * (page['mouse_moves'] != 1)}")
    if page["max_scroll_depth_pct"] is not None:
        facts.append(f"scrolled to {page['max_scroll_depth_pct']}% of the page")
    out = ["", *wrap("", head, indent=3, style="page")]
    if facts:
        out += wrap("   ", ", ".join(facts), indent=3, style="dim")
    return out
