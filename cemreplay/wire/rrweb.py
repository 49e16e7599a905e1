"""Import rrweb recordings (and PostHog's JSONL exports of them) into the event table.

rrweb (https://github.com/rrweb-io/rrweb) records a DOM: a full snapshot of the page, then
incremental changes and interactions keyed by node ids. cemreplay records interactions only.
This module keeps what cemreplay's event kinds can express and drops the rest: the DOM itself,
style sheets, canvas, media, and above all every typed value (only its *shape* survives).

Accepted input (:func:`read_rrweb`):

* a JSON array of rrweb events, as ``rrweb.record`` emits them;
* PostHog JSONL: one line per browser window, ``{"window_id": ..., "data": [events]}``, also
  the one-event-per-line ``[window_id, event]`` form and bare event lines;
* either of the above gzip-compressed, as a path or as bytes;
* an already parsed Python list of rrweb events (or of PostHog window objects).

Numbering follows ``@rrweb/types`` (``EventType``, ``IncrementalSource``,
``MouseInteractions``) and rrweb-snapshot's ``NodeType``. ``docs/rrweb-import.md`` has the full
mapping table and what is lost.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import math
import os
import re
import unicodedata
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlsplit

import polars as pl

from cemreplay.errors import RecordingError
from cemreplay.events import assign_batches
from cemreplay.schema import EVENT_SCHEMA, ClickFlag, EventKind, NavigationType

__all__ = ["CLICK_DETAIL_MS", "read_rrweb"]

#: Two clicks on the same node at most this far apart count as one multi-click (``detail``
#: 2, 3, ...), like ``UIEvent.detail``. 500 ms is the Windows default double-click time and
#: the value browsers on other platforms use when the OS does not say.
CLICK_DETAIL_MS: Final = 500
#: A shape keeps at most this many characters (the snippet's cap, ``docs/wire-format.md``).
SHAPE_MAX_CHARS: Final = 64
#: Selectors longer than this are cut (ids and class names can be generated and long).
SELECTOR_MAX_CHARS: Final = 100

_INT32: Final = (-(2**31), 2**31 - 1)
_INT64: Final = (-(2**63), 2**63 - 1)
_GZIP_MAGIC: Final = b"\x1f\x8b"


class _EventType(IntEnum):
    """``@rrweb/types`` ``EventType``."""

    DOM_CONTENT_LOADED = 0
    LOAD = 1
    FULL_SNAPSHOT = 2
    INCREMENTAL_SNAPSHOT = 3
    META = 4
    CUSTOM = 5
    PLUGIN = 6


class _Source(IntEnum):
    """``@rrweb/types`` ``IncrementalSource`` (the ones we read)."""

    MUTATION = 0
    MOUSE_MOVE = 1
    MOUSE_INTERACTION = 2
    SCROLL = 3
    VIEWPORT_RESIZE = 4
    INPUT = 5
    TOUCH_MOVE = 6
    DRAG = 12


class _Mouse(IntEnum):
    """``@rrweb/types`` ``MouseInteractions`` (the ones we read)."""

    CLICK = 2
    FOCUS = 5
    BLUR = 6


#: rrweb-snapshot ``NodeType.Element``.
_ELEMENT_NODE: Final = 2

_KEPT_TYPES: Final = frozenset(
    {_EventType.FULL_SNAPSHOT, _EventType.INCREMENTAL_SNAPSHOT, _EventType.META}
)
_MOVE_SOURCES: Final = frozenset({_Source.MOUSE_MOVE, _Source.TOUCH_MOVE, _Source.DRAG})
#: Custom-event tags (lower case, ``$`` stripped) that mean "the page URL changed".
_NAVIGATION_TAGS: Final = frozenset(
    {"pageview", "page_view", "url_changed", "navigation", "navigate", "route_change"}
)
# The rules below mirror the snippet (js-snippet/src/util.js and main.js) so that a page
# recorded by rrweb and by the snippet gets the same selectors, flags, shapes and URLs.
#: ``INTERACTIVE`` in main.js: tags, and roles, that make an element interactive.
_INTERACTIVE_TAGS: Final = frozenset({"button", "input", "select", "textarea", "label", "summary"})
_INTERACTIVE_ROLES: Final = frozenset(
    {"button", "link", "tab", "menuitem", "checkbox", "option", "switch"}
)
#: Input types a click does not place a caret in (everything else is TEXT_INPUT).
_NOT_TEXT_INPUT: Final = frozenset(
    {"button", "submit", "reset", "checkbox", "radio", "file", "image", "color", "range"}
)
#: ``sensitive`` in util.js: never measured (no length, no shape).
_SECRET_INPUT_TYPES: Final = frozenset({"password", "hidden"})
_CARD_LIKE: Final = re.compile(r"card|cvc|cvv|iban|ccnum|csc", re.IGNORECASE)
#: ``UNSTABLE`` in util.js: ids and classes that look generated.
_UNSTABLE: Final = re.compile(r"\d{4}|^:|^css-|^sc-|^_")
_FIELD_TAGS: Final = frozenset({"input", "select", "textarea"})
_NAMED_TAGS: Final = frozenset({"input", "select", "textarea", "button", "form"})
#: Query keys whose values a page view's URL keeps (``KEEP`` in util.js).
_KEPT_QUERY: Final = re.compile(r"utm_(campaign|source|medium|term|content)")
_URL_MAX_CHARS: Final = 500
#: Characters JavaScript's ``encodeURI`` leaves alone (besides letters and digits).
_ENCODE_URI_SAFE: Final = ";,/?:@&=+$-_.!~*'()#"
_MAX_ANCESTORS: Final = 32
#: The only attributes the node map keeps: what selectors and click flags need. Values
#: (``value``, ``placeholder``, text) and styles never enter it.
_KEPT_ATTRS: Final = frozenset(
    {
        "id", "class", "name", "type", "role", "href", "target", "download", "onclick",
        "contenteditable", "autocomplete", "data-cem-no-rage", "data-testid",
    }
)  # fmt: skip


# --------------------------------------------------------------------------- public API


def read_rrweb(
    source: str | os.PathLike[str] | bytes | list[dict[str, Any]],
    *,
    session_id: str | None = None,
    visitor_id: str | None = None,
) -> pl.DataFrame:
    """Read an rrweb recording into an event table (:data:`cemreplay.schema.EVENT_SCHEMA`).

    ``source`` is a path (``str`` or path-like) to a ``.json``/``.jsonl`` file, gzip-compressed
    or not; the file's bytes; or an already parsed list of rrweb events (or of PostHog window
    objects ``{"window_id": ..., "data": [...]}``).

    Each event's session is, in order of preference: ``session_id`` if given (every event of
    the input then belongs to it); the ``sessionId`` rrweb events may carry; the PostHog
    ``window_id`` (each browser window becomes its own session: rrweb node ids are only
    unique within a window); else ``rrweb-`` plus a hash of the file's name (of the content
    for bytes and lists). ``visitor_id`` defaults to the session id.

    Rows come in canonical order (session, batch, i); within a session they follow rrweb's
    order, sorted stably by time, and are cut into batches the way the snippet flushes
    (:func:`cemreplay.events.assign_batches`).

    Typed values never reach the table: a ``CHANGE`` carries only the value's length and
    shape. PostHog exports usually lack DOM mutations, so their sessions have no ``MUTATION``
    events: detectors that need a page's response to a click must treat them as unknown.

    Raises :class:`cemreplay.errors.RecordingError` (a ``DecodeError``) naming the line
    and/or event (0-based index)
    and what is wrong, e.g. ``line 3: not JSON`` or ``event 17: missing timestamp``.
    """
    groups = _load(source)
    fallback = functools.cache(lambda: _fallback_session(source))  # hashing a list is not free
    rows_by_session: dict[str, list[_Row]] = {}
    for order, group in enumerate(_split_sessions(groups, fallback)):
        sid = session_id if session_id is not None else group.session
        rows = _Session(group).rows()
        rows_by_session.setdefault(sid, []).extend(
            _Row(r.t, (order, *r.key), r.kind, r.x, r.y, r.a, r.b, r.target, r.text) for r in rows
        )
    return _to_frame(rows_by_session, visitor_id)


# --------------------------------------------------------------------------- loading


@dataclass
class _Group:
    """Events of one window (PostHog) or file, with where each came from."""

    window: str | None
    events: list[Any] = field(default_factory=list)
    #: per event: (1-based line or None, 0-based index within that line or file, alone on line)
    locs: list[tuple[int | None, int, bool]] = field(default_factory=list)
    session: str = ""

    def where(self, k: int) -> str:
        line, index, alone = self.locs[k]
        if line is None:
            return f"event {index}"
        return f"line {line}" if alone else f"line {line}, event {index}"


def _load(source: str | os.PathLike[str] | bytes | list[dict[str, Any]]) -> list[_Group]:
    if isinstance(source, list):
        return _from_document(source)
    if isinstance(source, bytes | bytearray):
        raw = bytes(source)
    elif isinstance(source, str | os.PathLike):
        raw = Path(source).read_bytes()
    else:
        raise RecordingError(
            f"cannot read rrweb events from a {type(source).__name__}: pass a path, bytes or "
            "a list of events"
        )
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise RecordingError(f"not a valid gzip stream ({exc})") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RecordingError(f"byte {exc.start}: not UTF-8 text") from exc
    if not text.strip():
        raise RecordingError("empty input: no rrweb events")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as whole:
        first = next(line for line in text.splitlines() if line.strip())
        try:
            json.loads(first)
        except json.JSONDecodeError:
            raise RecordingError(
                f"line {whole.lineno}, column {whole.colno}: not JSON ({whole.msg})"
            ) from whole
        return _from_lines(text)
    if isinstance(doc, dict) and sum(1 for line in text.splitlines() if line.strip()) == 1:
        return _from_lines(text)  # one-line JSONL: keep line numbers in errors
    return _from_document(doc)


def _is_window(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("data"), list) and "type" not in obj


def _from_document(doc: Any) -> list[_Group]:
    """One parsed JSON document: an array of events or of windows, or one window."""
    if _is_window(doc):
        doc = [doc]
    if not isinstance(doc, list):
        raise RecordingError(
            f"expected a JSON array of rrweb events or PostHog JSONL, got a JSON "
            f"{type(doc).__name__}"
        )
    if doc and all(_is_window(w) for w in doc):
        groups = []
        for n, win in enumerate(doc):
            group = _Group(_window_id(win.get("window_id"), f"window {n}"))
            group.events = win["data"]
            group.locs = [(None, k, False) for k in range(len(group.events))]
            groups.append(group)
        return groups
    group = _Group(None, events=doc, locs=[(None, k, False) for k in range(len(doc))])
    return [group]


def _from_lines(text: str) -> list[_Group]:
    """PostHog JSONL: window objects, ``[window_id, event]`` pairs or bare events per line."""
    groups: dict[str | None, _Group] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordingError(
                f"line {line_no}: not JSON ({exc.msg}, column {exc.colno})"
            ) from exc
        if _is_window(obj):
            wid = _window_id(obj.get("window_id"), f"line {line_no}")
            group = groups.setdefault(wid, _Group(wid))
            for k, event in enumerate(obj["data"]):
                group.events.append(event)
                group.locs.append((line_no, k, False))
        elif isinstance(obj, list) and len(obj) == 2 and isinstance(obj[1], dict):
            wid = _window_id(obj[0], f"line {line_no}")
            group = groups.setdefault(wid, _Group(wid))
            group.events.append(obj[1])
            group.locs.append((line_no, 0, True))
        elif isinstance(obj, dict) and "type" in obj:
            group = groups.setdefault(None, _Group(None))
            group.events.append(obj)
            group.locs.append((line_no, 0, True))
        else:
            raise RecordingError(
                f"line {line_no}: expected a PostHog window object with 'window_id' and a "
                f"'data' list, a [window_id, event] pair or an rrweb event, got "
                f"{_describe(obj)}"
            )
    return list(groups.values())


def _window_id(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise RecordingError(
            f"{where}: window_id must be a non-empty string, got {_describe(value)}"
        )
    return value


def _fallback_session(source: object) -> str:
    if isinstance(source, str | os.PathLike):
        basis = Path(source).name.encode()
    elif isinstance(source, bytes | bytearray):
        basis = bytes(source)
    else:
        basis = json.dumps(source, sort_keys=True, default=str).encode()
    return "rrweb-" + hashlib.sha1(basis, usedforsecurity=False).hexdigest()[:16]


def _split_sessions(groups: list[_Group], fallback: Callable[[], str]) -> Iterator[_Group]:
    """Split each group by the events' rrweb ``sessionId`` (node ids are per recording)."""
    for group in groups:
        default = group.window if group.window is not None else fallback()
        parts: dict[str, _Group] = {}
        for k, event in enumerate(group.events):
            sid = event.get("sessionId") if isinstance(event, dict) else None
            key = sid if isinstance(sid, str) and sid else default
            part = parts.setdefault(key, _Group(group.window, session=key))
            part.events.append(event)
            part.locs.append(group.locs[k])
        yield from parts.values()


def _describe(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


# --------------------------------------------------------------------------- one session


@dataclass(frozen=True, slots=True)
class _Row:
    t: int
    key: tuple[int, ...]  # tie-breaker: rrweb order
    kind: EventKind
    x: int = 0
    y: int = 0
    a: int = 0
    b: int = 0
    target: str | None = None
    text: str | None = None


@dataclass(slots=True)
class _Node:
    tag: str  # lower case; "" for non-elements
    attrs: dict[str, str]
    parent: int | None


@dataclass(slots=True)
class _PendingInput:
    node: int
    t: int
    key: tuple[int, ...]
    length: int
    shape: str | None


class _Session:
    """Turns one recording's events into rows. Keeps the DOM's node map, nothing else."""

    def __init__(self, group: _Group) -> None:
        self.group = group
        self.nodes: dict[int, _Node] = {}
        self.document: int | None = None
        self.url: str | None = None
        self.viewport = (0, 0)
        self.last_click: tuple[int, int, int] | None = None  # node, t, detail
        self.pending: _PendingInput | None = None
        self.values: dict[int, tuple[int, str | None]] = {}  # node -> last length, shape
        self.input_nodes = {
            e["data"].get("id")
            for e in group.events
            if isinstance(e, dict)
            and e.get("type") == _EventType.INCREMENTAL_SNAPSHOT
            and isinstance(e.get("data"), dict)
            and e["data"].get("source") == _Source.INPUT
        }
        self.out: list[_Row] = []

    def rows(self) -> list[_Row]:
        for k, event in enumerate(self.group.events):
            self._event(k, event)
        self._flush_input()
        return self.out  # in rrweb order (a CHANGE late); _to_frame sorts by (t, rrweb order)

    def _event(self, k: int, event: Any) -> None:
        where = self.group.where(k)
        if not isinstance(event, dict):
            raise RecordingError(f"{where}: expected an rrweb event object, got {_describe(event)}")
        if "type" not in event:
            raise RecordingError(f"{where}: missing type")
        if "timestamp" not in event:
            raise RecordingError(f"{where}: missing timestamp")
        etype = _int(event["type"], "type", where)
        t = _int(event["timestamp"], "timestamp", where, _INT64)
        data = event.get("data")
        key = (k,)
        if etype == _EventType.CUSTOM:
            if isinstance(data, dict):
                self._custom(data, t, key)
            return
        if etype not in _KEPT_TYPES:
            return  # DomContentLoaded, Load, Plugin and unknown types carry nothing we keep
        if not isinstance(data, dict):
            raise RecordingError(f"{where}: data must be an object, got {_describe(data)}")
        if etype == _EventType.META:
            self._meta(data, t, key, where)
        elif etype == _EventType.FULL_SNAPSHOT:
            self._full_snapshot(data, where)
        else:
            self._incremental(data, t, key, where)

    # -- page views and viewport

    def _meta(self, data: dict[str, Any], t: int, key: tuple[int, ...], where: str) -> None:
        width = _int(data.get("width", 0), "width", where)
        height = _int(data.get("height", 0), "height", where)
        self.viewport = (width, height)
        href = data.get("href")
        if isinstance(href, str) and href:
            # rrweb emits Meta + FullSnapshot on every page load and on every "checkout"
            # (re-snapshot) of the same page: only a new URL is a new page view.
            self._page_view(href, t, key, NavigationType.LOAD)

    def _custom(self, data: dict[str, Any], t: int, key: tuple[int, ...]) -> None:
        tag = data.get("tag")
        payload = data.get("payload")
        if not isinstance(tag, str) or tag.lstrip("$").lower() not in _NAVIGATION_TAGS:
            return
        href = payload.get("href") if isinstance(payload, dict) else None
        if isinstance(href, str) and href:
            self._page_view(href, t, key, None)

    def _page_view(
        self, href: str, t: int, key: tuple[int, ...], nav: NavigationType | None
    ) -> None:
        url = _scrub_url(href)
        if url == self.url:
            return
        if nav is None:
            same_doc = self.url is not None and self.url.split("#")[0] == url.split("#")[0]
            nav = NavigationType.HASH if same_doc else NavigationType.PUSH
        self.url = url
        w, h = self.viewport
        self.out.append(_Row(t, key, EventKind.PAGE_VIEW, w, h, 0, int(nav), url, None))

    # -- the node map

    def _full_snapshot(self, data: dict[str, Any], where: str) -> None:
        root = data.get("node")
        if not isinstance(root, dict):
            raise RecordingError(f"{where}: full snapshot without a node tree")
        self.nodes = {}
        self.document = root.get("id") if isinstance(root.get("id"), int) else None
        self._add_tree(root, None)
        self.last_click = None

    def _add_tree(self, root: dict[str, Any], parent: int | None) -> None:
        stack: list[tuple[Any, int | None]] = [(root, parent)]
        while stack:
            node, up = stack.pop()
            if not isinstance(node, dict) or not isinstance(node.get("id"), int):
                continue
            nid = node["id"]
            tag = node.get("tagName") if node.get("type") == _ELEMENT_NODE else ""
            attrs = node.get("attributes")
            self.nodes[nid] = _Node(
                tag.lower() if isinstance(tag, str) else "",
                {k: str(v) for k, v in attrs.items() if k in _KEPT_ATTRS and _scalar(v)}
                if isinstance(attrs, dict)
                else {},
                up,
            )
            children = node.get("childNodes")
            if isinstance(children, list):
                stack.extend((child, nid) for child in children)

    def _mutation(self, data: dict[str, Any], t: int, key: tuple[int, ...]) -> None:
        count = 0
        for name in ("adds", "removes", "attributes", "texts"):
            value = data.get(name)
            count += len(value) if isinstance(value, list) else int(bool(value))
        adds = data.get("adds")
        for add in adds if isinstance(adds, list) else ():
            if isinstance(add, dict) and isinstance(add.get("node"), dict):
                parent = add.get("parentId")
                self._add_tree(add["node"], parent if isinstance(parent, int) else None)
        changes = data.get("attributes")
        for change in changes if isinstance(changes, list) else ():
            if not isinstance(change, dict) or not isinstance(change.get("id"), int):
                continue
            node = self.nodes.get(change["id"])
            attrs = change.get("attributes")
            if node is None or not isinstance(attrs, dict):
                continue
            for name, value in attrs.items():
                if name not in _KEPT_ATTRS:
                    continue
                if value is None:
                    node.attrs.pop(name, None)
                elif isinstance(value, str):
                    node.attrs[name] = value
        self.out.append(_Row(t, key, EventKind.MUTATION, a=count))

    # -- incremental snapshots

    def _incremental(self, data: dict[str, Any], t: int, key: tuple[int, ...], where: str) -> None:
        if "source" not in data:
            raise RecordingError(f"{where}: incremental snapshot without a source")
        source = _int(data["source"], "source", where)
        if source == _Source.MUTATION:
            self._mutation(data, t, key)
        elif source in _MOVE_SOURCES:
            positions = data.get("positions")
            if not isinstance(positions, list):
                raise RecordingError(f"{where}: move without a positions list")
            for j, pos in enumerate(positions):
                if not isinstance(pos, dict):
                    raise RecordingError(f"{where}: position {j} is not an object")
                at = f"{where}, position {j}"
                offset = _int(pos.get("timeOffset", 0), "timeOffset", at)
                x = _int(pos.get("x"), "x", at)
                y = _int(pos.get("y"), "y", at)
                self.out.append(_Row(t + offset, (*key, j), EventKind.MOUSE_MOVE, x, y))
        elif source == _Source.MOUSE_INTERACTION:
            self._interaction(data, t, key, where)
        elif source == _Source.SCROLL:
            x = _int(data.get("x", 0), "x", where)
            y = _int(data.get("y", 0), "y", where)
            # Page height is never recorded; the viewport height only means something for
            # the document's own scroll, not for a scrolled element.
            page = data.get("id") == self.document or self._tag(data.get("id")) in ("html", "body")
            vh = self.viewport[1] if page else 0
            self.out.append(_Row(t, key, EventKind.SCROLL, x, y, 0, vh))
        elif source == _Source.VIEWPORT_RESIZE:
            w = _int(data.get("width"), "width", where)
            h = _int(data.get("height"), "height", where)
            self.viewport = (w, h)
            self.out.append(_Row(t, key, EventKind.RESIZE, w, h))
        elif source == _Source.INPUT:
            self._input(data, t, key, where)
        # Media, style sheets, canvas, fonts, selection, ... carry nothing we keep.

    def _interaction(self, data: dict[str, Any], t: int, key: tuple[int, ...], where: str) -> None:
        kind = _int(data.get("type"), "interaction type", where)
        if kind not in (_Mouse.CLICK, _Mouse.FOCUS, _Mouse.BLUR):
            return  # mouse up/down, dblclick (detail covers it), context menu, touch
        nid = _int(data.get("id"), "node id", where)
        if kind == _Mouse.CLICK:
            x = _int(data.get("x", 0), "x", where)
            y = _int(data.get("y", 0), "y", where)
            last = self.last_click
            detail = 1
            if last is not None and last[0] == nid and 0 <= t - last[1] <= CLICK_DETAIL_MS:
                detail = last[2] + 1
            self.last_click = (nid, t, detail)
            target, flags = self._click_target(nid)
            self.out.append(_Row(t, key, EventKind.CLICK, x, y, flags, detail, target))
        elif not self._is_field(nid):
            return  # as the snippet: FOCUS and BLUR are about form fields only
        elif kind == _Mouse.FOCUS:
            self.out.append(_Row(t, key, EventKind.FOCUS, target=self._selector(nid)))
        else:
            if self.pending is not None and self.pending.node == nid:
                self._flush_input()
            # rrweb's blur carries no value: the length and shape of the last Input, if any.
            length, shape = self.values.get(nid, (0, None))
            self.out.append(
                _Row(t, key, EventKind.BLUR, 0, 0, length, 0, self._selector(nid), shape)
            )

    def _is_field(self, nid: int) -> bool:
        """An input, select or textarea; without a snapshot, a node that received Input."""
        node = self.nodes.get(nid)
        if node is not None and node.tag:
            return node.tag in _FIELD_TAGS
        return nid in self.input_nodes

    def _input(self, data: dict[str, Any], t: int, key: tuple[int, ...], where: str) -> None:
        """rrweb sends an Input per keystroke; a CHANGE is one committed value, so a run of
        Inputs on one field becomes one CHANGE at the run's last Input (a DOM ``change``)."""
        if data.get("userTriggered") is False:
            return  # set by the page or a sibling radio button, not by the visitor
        nid = _int(data.get("id"), "node id", where)
        text = data.get("text")
        node = self.nodes.get(nid)
        checkable = node is not None and _input_type(node) in ("checkbox", "radio")
        checked = data.get("isChecked")
        if checked is True or checkable:
            length, shape = int(checked is True), None  # as the snippet: the checked state
        elif _is_secret(node):
            length, shape = 0, None  # password, hidden, card-like: never measured
        elif not isinstance(text, str):
            raise RecordingError(f"{where}: input without text or isChecked")
        else:
            length, shape = _js_length(text), _shape(text)
        if self.pending is not None and self.pending.node != nid:
            self._flush_input()
        self.values[nid] = (length, shape)
        self.pending = _PendingInput(nid, t, key, length, shape)

    def _flush_input(self) -> None:
        p = self.pending
        if p is not None:
            self.out.append(
                _Row(p.t, p.key, EventKind.CHANGE, 0, 0, p.length, 0, self._selector(p.node),
                     p.shape)
            )  # fmt: skip
            self.pending = None

    # -- selectors and click flags

    def _tag(self, nid: Any) -> str:
        node = self.nodes.get(nid) if isinstance(nid, int) else None
        return node.tag if node is not None else ""

    def _selector(self, nid: int) -> str:
        """``selector`` in util.js: the first of ``tag#id``, ``[data-testid="..."]``,
        ``tag[name="..."]`` walking up at most 3 levels, else the ``tag.class.class`` chain of
        those levels (``>``-joined); ``node:<id>`` when the node is not in the snapshot."""
        parts: list[str] = []
        cur: int | None = nid
        for _ in range(3):
            node = self.nodes.get(cur) if cur is not None else None
            if node is None or not node.tag:
                break
            attrs = node.attrs
            el_id, tid, name = (
                attrs.get("id", ""),
                attrs.get("data-testid", ""),
                attrs.get("name", ""),
            )
            named = ""
            if el_id and not _UNSTABLE.search(el_id):
                named = f"{node.tag}#{el_id}"
            elif tid:
                named = f'[data-testid="{tid}"]'
            elif name and node.tag in _NAMED_TAGS:
                named = f'{node.tag}[name="{name}"]'
            if named:
                parts.insert(0, named)
                break
            classes = [c for c in attrs.get("class", "").split() if not _UNSTABLE.search(c)]
            parts.insert(0, node.tag + "".join("." + c for c in classes[:2]))
            if node.tag == "body":
                break
            cur = node.parent
        if not parts:
            return f"node:{nid}"
        return ">".join(parts)[:SELECTOR_MAX_CHARS]

    def _click_target(self, nid: int) -> tuple[str, int]:
        """Selector and flags of a click, as ``onClick`` in main.js: the selector names the
        closest interactive element (the span inside a button names the button). A node
        missing from the node map is ``node:<id>`` with ``UNKNOWN_ELEMENT`` as its only flag."""
        chain: list[tuple[int, _Node]] = []
        cur: int | None = nid
        while cur is not None and len(chain) < _MAX_ANCESTORS:
            node = self.nodes.get(cur)
            if node is None or not node.tag:
                break
            chain.append((cur, node))
            cur = node.parent
        if not chain:
            # Not in any snapshot: nothing is known about the element, and the flags say so.
            return f"node:{nid}", int(ClickFlag.UNKNOWN_ELEMENT)
        flags = 0
        hit = next((i for i, n in chain if _interactive(n)), None)
        if hit is not None:
            flags |= ClickFlag.INTERACTIVE
        link = next((n for _, n in chain if n.tag == "a" and "href" in n.attrs), None)
        if link is not None:
            flags |= ClickFlag.LINK
            if link.attrs.get("target", "") == "_blank" or "download" in link.attrs:
                flags |= ClickFlag.NEW_CONTEXT
        target = chain[0][1]
        if (
            target.tag == "textarea"
            or (target.tag == "input" and _input_type(target) not in _NOT_TEXT_INPUT)
            or _editable(chain)
        ):
            flags |= ClickFlag.TEXT_INPUT
        if any("data-cem-no-rage" in n.attrs for _, n in chain):
            flags |= ClickFlag.NO_RAGE
        return self._selector(hit if hit is not None else nid), int(flags)


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _input_type(node: _Node) -> str:
    return node.attrs.get("type", "text").strip().lower() or "text"


def _interactive(node: _Node) -> bool:
    attrs = node.attrs
    return (
        node.tag in _INTERACTIVE_TAGS
        or (node.tag == "a" and "href" in attrs)
        or attrs.get("role", "") in _INTERACTIVE_ROLES
        or "onclick" in attrs
        or "contenteditable" in attrs
    )


def _editable(chain: list[tuple[int, _Node]]) -> bool:
    """``isContentEditable``: the closest ``contenteditable`` attribute decides."""
    for _, node in chain:
        value = node.attrs.get("contenteditable")
        if value is not None:
            return value.strip().lower() != "false"
    return False


def _is_secret(node: _Node | None) -> bool:
    """Password, hidden and card-like fields send neither length nor shape (as the snippet)."""
    if node is None:
        return False
    attrs = node.attrs
    if _input_type(node) in _SECRET_INPUT_TYPES:
        return True
    if attrs.get("autocomplete", "").lower().startswith("cc-"):
        return True
    return bool(_CARD_LIKE.search(attrs.get("name", "") + " " + attrs.get("id", "")))


# --------------------------------------------------------------------------- values


def _int(value: Any, what: str, where: str, bounds: tuple[int, int] = _INT32) -> int:
    if value is None:
        raise RecordingError(f"{where}: missing {what}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordingError(f"{where}: {what} must be a number, got {_describe(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RecordingError(f"{where}: {what} must be finite, got {value}")
    out = round(value)
    if not bounds[0] <= out <= bounds[1]:
        raise RecordingError(f"{where}: {what} {out} is out of range")
    return out


def _shape(text: str) -> str:
    """``shape`` in util.js: the first 64 characters, letters (``\\p{L}``) as ``a``/``A``,
    numbers (``\\p{N}``) as ``9``, everything else kept."""
    out = []
    for ch in text[:SHAPE_MAX_CHARS]:
        cat = unicodedata.category(ch)
        if cat[0] == "N":
            out.append("9")
        elif cat[0] == "L":
            out.append("A" if ch != ch.lower() else "a")
        else:
            out.append(ch)
    return "".join(out)


def _js_length(text: str) -> int:
    """``value.length`` in JavaScript: UTF-16 code units (an emoji counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def _scrub_url(href: str) -> str:
    """``cleanUrl`` in util.js: query values dropped except the UTM allow-list (keys kept), the
    fragment cut at its first ``?``, ``&`` or ``=``; only the scheme for non-web URLs.

    >>> _scrub_url("https://x.test/p?email=a@b.c&utm_source=news#token=abc")
    'https://x.test/p?email=&utm_source=news#token'
    """
    try:
        parts = urlsplit(href)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return href.split("?", 1)[0].split("#", 1)[0][:_URL_MAX_CHARS]
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return f"{scheme}:"
    default_port = 80 if scheme == "http" else 443
    origin = f"{scheme}://{host}" + (f":{port}" if port not in (None, default_port) else "")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = "&".join(f"{k}={v if _KEPT_QUERY.fullmatch(k) else ''}" for k, v in pairs)
    fragment = re.sub(r"[?&=].*", "", parts.fragment, flags=re.DOTALL)
    url = (
        origin
        + (parts.path or "/")
        + ("?" + quote(query, safe=_ENCODE_URI_SAFE) if query else "")
        + ("#" + fragment if fragment else "")
    )
    return url[:_URL_MAX_CHARS]


# --------------------------------------------------------------------------- the table


def _to_frame(rows_by_session: dict[str, list[_Row]], visitor_id: str | None) -> pl.DataFrame:
    cols: dict[str, list[Any]] = {name: [] for name in EVENT_SCHEMA}
    for sid in sorted(rows_by_session):
        rows = sorted(rows_by_session[sid], key=lambda r: (r.t, r.key))
        n = len(rows)
        cols["session_id"].extend([sid] * n)
        cols["visitor_id"].extend([visitor_id if visitor_id is not None else sid] * n)
        cols["batch"].extend([0] * n)
        cols["i"].extend([0] * n)
        for r in rows:
            cols["t"].append(r.t)
            cols["kind"].append(int(r.kind))
            cols["x"].append(r.x)
            cols["y"].append(r.y)
            cols["a"].append(r.a)
            cols["b"].append(r.b)
            cols["target"].append(r.target)
            cols["text"].append(r.text)
    frame = pl.DataFrame(cols, schema=EVENT_SCHEMA)
    return assign_batches(frame) if frame.height else frame
