"""One session as a self-contained HTML replay a support rep opens in any browser.

:func:`render_html` returns one HTML document with the player's CSS and JS inlined (from
``cemreplay/_static/replay.css`` and ``replay.js``) and the session embedded as JSON: no
network is needed to view it, and none is allowed (a Content-Security-Policy of
``default-src 'none'`` that admits only the player's own script and style by hash).

Everything from the session (selectors, URLs, messages, finding texts) is data an attacker
can choose. It reaches the page only inside ``<script type="application/json">``, with
``<``, ``>`` and ``&`` (and U+2028/U+2029) written as ``\\uXXXX`` escapes so no string can
close the tag, and the player builds every node with ``createElement``/``textContent``
(never ``innerHTML``), so markup in the data shows as text. See ``docs/replay.md``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from functools import cache
from importlib.resources import files
from typing import Any

import polars as pl

from cemreplay.timeline import collect

__all__ = ["render_html", "script_json"]

_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def script_json(data: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``: it cannot close the tag,
    open a comment or a CDATA section, or break a JS string (U+2028/2029)."""
    text = json.dumps(data, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    for char, escaped in _ESCAPES.items():
        text = text.replace(char, escaped)
    return text


@cache
def _asset(name: str) -> str:
    return files("cemreplay").joinpath("_static", name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def render_html(
    events: pl.DataFrame,
    findings: pl.DataFrame,
    *,
    session_id: str,
    title: str | None = None,
    score: float | None = None,
) -> str:
    """The session as one self-contained HTML file that plays it back.

    The player shows the page wireframe from the captured element boxes (``GEOMETRY``) with
    their selectors, the cursor and its trail, click ripples, scrolling, fields filling in
    (their shape, never a value), the URL bar, errors as toasts, and a scrubbable timeline
    with a marker per finding; play/pause, speed 1x-8x and skipping inactivity; a side panel
    lists the findings (a click jumps to one second before each) and every event.

    ``findings`` may be empty; ``score`` is shown when given (see
    :func:`cemreplay.timeline.to_json`). Raises SessionNotFoundError when the session has
    no events.
    """
    got = collect(events, findings, session_id=session_id, score=score)
    data = {
        **got.to_dict(),
        "moves": got.moves,
        "scrolls": got.scrolls,
        "boxes": got.boxes,
    }
    css, js = _asset("replay.css"), _asset("replay.js")
    csp = (
        f"default-src 'none'; script-src {_sha256(js)}; style-src {_sha256(css)}; "
        "img-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'"
    )
    heading = title if title is not None else f"Session {session_id}"
    return _PAGE.format(
        csp=csp,  # our own text: hashes are base64, no quote can occur
        title=html.escape(heading),
        css=css,
        data=script_json(data),
        js=js,
    )


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<header id="who" aria-label="who and when"></header>
<main>
  <section id="player" aria-label="replay">
    <div id="browser">
      <div id="urlbar"><span id="page-n"></span><span id="url"></span></div>
      <div id="stage"><div id="viewport"><div id="doc"></div></div>
        <div id="overlay" hidden></div><ol id="toasts" aria-live="polite"></ol></div>
    </div>
    <div id="track"><div id="markers"></div>
      <input id="scrub" type="range" min="0" max="0" step="1" value="0" aria-label="time"></div>
    <div id="controls">
      <button id="play" type="button" aria-label="play">Play</button>
      <span id="time">00:00.0</span>
      <label>Speed <select id="speed"><option value="1">1x</option><option value="2">2x</option>
        <option value="4">4x</option><option value="8">8x</option></select></label>
      <label><input id="skip" type="checkbox" checked> Skip inactivity</label>
      <span id="notice" aria-live="polite"></span>
    </div>
  </section>
  <aside id="side">
    <h2>Struggle findings</h2><ol id="findings"></ol>
    <h2>What happened</h2><ol id="log"></ol>
  </aside>
</main>
<script type="application/json" id="session-data">{data}</script>
<script>{js}</script>
</body>
</html>
"""
