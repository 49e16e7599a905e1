// cemreplay session replay player. Inlined by cemreplay.replay.render_html.
// Session data is attacker-controlled: every node is built with createElement and textContent;
// nothing here ever assigns innerHTML/outerHTML or calls insertAdjacentHTML/document.write.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("session-data").textContent);
  var TOTAL = Math.max(D.duration_ms, 1);
  var LEAD_MS = 1000; // a finding is shown from 1 s before it, so the rep sees it happen
  var SKIP_GAP_MS = 2000; // "skip inactivity" jumps gaps longer than this...
  var SKIP_KEEP_MS = 500; // ...to this long before the next event
  var TOAST_MS = 4000, RIPPLE_MS = 700, TRAIL_MS = 2500;
  var SVG = "http://www.w3.org/2000/svg";
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function fmt(ms) {
    var t = Math.floor(Math.max(0, ms) / 100), m = Math.floor(t / 600);
    return pad(m) + ":" + pad(Math.floor(t / 10) % 60) + "." + (t % 10);
  }
  function dur(ms) {
    if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
    var s = Math.round(ms / 1000);
    return Math.floor(s / 60) + " min " + pad(s % 60) + " s";
  }
  // index of the last item with key <= t (-1 when none)
  function upto(arr, t, key) {
    var lo = 0, hi = arr.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (key(arr[mid]) <= t) lo = mid + 1; else hi = mid; }
    return lo - 1;
  }
  function sev(s) { return s === null || s >= 0.7 ? "sev-high" : s >= 0.4 ? "sev-mid" : "sev-low"; }
  function str(v) { return v === null || v === undefined ? "" : String(v); }

  // ------------------------------------------------------------------ the data, per page
  var pages = D.pages.length ? D.pages : [{ page_view: 0, url: null, offset_ms: 0, viewport: {} }];
  var byPv = {};
  pages.forEach(function (p, i) {
    p.index = i;
    p.pointer = []; p.scrolls = []; p.boxes = []; p.events = []; p.height = 0;
    byPv[p.page_view] = p;
  });
  function pageOf(pv, off) {
    if (byPv[pv]) return byPv[pv];
    var i = upto(pages, off, function (p) { return p.offset_ms; });
    return pages[Math.max(0, i)];
  }
  D.moves.forEach(function (m) { pageOf(m[3], m[0]).pointer.push([m[0], m[1], m[2], false]); });
  D.scrolls.forEach(function (s) {
    var p = pageOf(s[5], s[0]);
    p.scrolls.push(s);
    p.height = Math.max(p.height, s[3]);
  });
  D.boxes.forEach(function (b) {
    var p = pageOf(b[6], b[0]);
    p.boxes.push(b);
    p.height = Math.max(p.height, b[2] + b[4] + 40);
  });
  D.events.forEach(function (e) {
    var p = pageOf(e.page_view, e.offset_ms);
    p.events.push(e);
    if (e.kind === "click") p.pointer.push([e.offset_ms, e.x, e.y, true]);
  });
  pages.forEach(function (p) {
    p.pointer.sort(function (a, b) { return a[0] - b[0]; });
    p.pointer.forEach(function (m) { p.height = Math.max(p.height, m[2] + 40); });
    var vw = (p.viewport && p.viewport.width) || 1280, vh = (p.viewport && p.viewport.height) || 800;
    p.vw = vw; p.vh = vh; p.height = Math.max(p.height, vh);
  });
  var findings = D.findings.slice().sort(function (a, b) { return a.offset_ms - b.offset_ms; });
  // every time something happens, for "skip inactivity"
  var busy = [];
  D.moves.forEach(function (m) { busy.push(m[0]); });
  D.scrolls.forEach(function (s) { busy.push(s[0]); });
  D.events.forEach(function (e) { busy.push(e.offset_ms); });
  pages.forEach(function (p) { busy.push(p.offset_ms); });
  findings.forEach(function (f) { busy.push(f.offset_ms); });
  busy.push(TOTAL);
  busy.sort(function (a, b) { return a - b; });

  // ------------------------------------------------------------------ describing events
  var LABEL = {
    click: "click", focus: "focus", blur: "blur", change: "typed", submit: "submit",
    validation_error: "invalid", js_error: "JS error", network_failure: "request failed",
    milestone: "milestone", resize: "resize", visibility_hidden: "tab hidden",
    visibility_visible: "tab back", page_leave: "left", activity: "scroll"
  };
  var TONE = { validation_error: "bad", js_error: "bad", network_failure: "bad", milestone: "good" };
  function describe(e) {
    switch (e.kind) {
      case "click": return str(e.selector) + " (" + e.x + ", " + e.y + ")" +
        (e.button !== "left" ? " " + e.button + "-click" : "") +
        (e.modifiers.length ? " " + e.modifiers.join("+") : "");
      case "focus": return str(e.field);
      case "blur": case "change": return str(e.field) + "  \u201c" + str(e.shape) + "\u201d (" + e.length + " chars)";
      case "submit": return str(e.form);
      case "validation_error": return str(e.field) + ": \u201c" + str(e.message) + "\u201d" +
        (e.shape !== null ? "  typed \u201c" + e.shape + "\u201d (" + e.length + " chars)" : "");
      case "js_error": return str(e.message) + "  (" + str(e.source) + ")";
      case "network_failure": return str(e.method) + " " + str(e.url) + " \u2192 " + (e.status || "no response");
      case "milestone": return str(e.name) + " (value " + e.value + ")";
      case "resize": return e.width + "\u00d7" + e.height;
      case "visibility_hidden": return "switched away from this tab";
      case "visibility_visible": return "came back" + (e.hidden_ms ? " after " + dur(e.hidden_ms) : "");
      case "page_leave": return "closed or left the page";
      case "activity": return e.scrolls + "\u00d7 " +
        (e.max_y > Math.max(e.from_y, e.to_y) ? "down to y=" + e.max_y + ", back up to y=" + e.to_y
          : (e.to_y >= e.from_y ? "down" : "up") + " to y=" + e.to_y) +
        (e.depth_pct !== null ? " (" + e.depth_pct + "% seen)" : "");
    }
    return "";
  }

  // ------------------------------------------------------------------ header
  (function header() {
    var who = $("who");
    who.appendChild(el("h1", "mono", "Session " + D.session_id));
    function fact(label, value) {
      var f = el("span", "fact", label + " ");
      f.appendChild(el("b", null, value));
      who.appendChild(f);
    }
    fact("visitor", D.visitor_id);
    fact("started", D.start.slice(0, 19).replace("T", " ") + " UTC" +
      (D.start_local ? " (" + D.start_local.slice(11, 19) + " local)" : ""));
    fact("lasted", dur(D.duration_ms));
    fact("device", D.device_class + " " + D.viewport.width + "\u00d7" + D.viewport.height);
    fact("pages", D.counts.pages);
    if (D.score !== null) fact("struggle score", Number(D.score).toFixed(1));
    var chips = el("span", "chips");
    Object.keys(D.segments).forEach(function (k) { chips.appendChild(el("span", "chip", k + ": " + D.segments[k])); });
    var n = D.findings.length;
    chips.appendChild(el("span", "chip" + (n ? " bad" : ""), n + " finding" + (n === 1 ? "" : "s")));
    who.appendChild(chips);
  })();

  // ------------------------------------------------------------------ side panel and markers
  var scrub = $("scrub");
  scrub.max = String(TOTAL);
  function pct(off) { return (100 * Math.min(Math.max(off, 0), TOTAL) / TOTAL) + "%"; }
  var markers = $("markers");
  pages.forEach(function (p) {
    var t = el("span", "tick");
    t.style.left = pct(p.offset_ms);
    t.title = "page " + (p.index + 1) + ": " + str(p.url);
    markers.appendChild(t);
  });
  D.events.forEach(function (e) {
    if (TONE[e.kind] !== "bad") return;
    var t = el("span", "tick err");
    t.style.left = pct(e.offset_ms);
    t.title = LABEL[e.kind] + ": " + describe(e);
    markers.appendChild(t);
  });
  var findingItems = [];
  var list = $("findings");
  findings.forEach(function (f, i) {
    var m = el("button", "marker " + sev(f.severity));
    m.type = "button";
    m.style.left = pct(f.offset_ms);
    m.title = fmt(f.offset_ms) + " " + f.kind + ": " + str(f.explanation);
    m.setAttribute("aria-label", "finding " + f.kind + " at " + fmt(f.offset_ms));
    m.dataset.kind = f.kind;
    m.addEventListener("click", function () { jumpToFinding(i); });
    markers.appendChild(m);
    var li = el("li", sev(f.severity));
    li.dataset.kind = f.kind;
    li.dataset.offset = String(f.offset_ms);
    li.tabIndex = 0;
    li.appendChild(el("span", "kind", f.kind));
    li.appendChild(el("span", "t", fmt(f.offset_ms)));
    li.appendChild(el("span", "expl", str(f.explanation || f.detail)));
    li.addEventListener("click", function () { jumpToFinding(i); });
    li.addEventListener("keydown", function (ev) { if (ev.key === "Enter") jumpToFinding(i); });
    list.appendChild(li);
    findingItems.push(li);
  });
  if (!findings.length) list.appendChild(el("li", "none", "No struggle found in this session."));

  var log = $("log"), logRows = [];
  var rows = [];
  pages.forEach(function (p) { rows.push({ off: p.offset_ms, order: 0, page: p }); });
  D.events.forEach(function (e) { rows.push({ off: e.offset_ms, order: 1, event: e }); });
  findings.forEach(function (f) { rows.push({ off: f.offset_ms, order: 2, finding: f }); });
  rows.sort(function (a, b) { return a.off - b.off || a.order - b.order; });
  var typed = {};
  rows = rows.filter(function (r) { // leaving a field as just typed adds nothing to read
    var e = r.event;
    if (e && e.kind === "change") typed[e.field] = e.shape;
    return !(e && e.kind === "blur" && typed[e.field] === e.shape);
  });
  rows.forEach(function (r) {
    var li;
    if (r.page) {
      li = el("li", "page", "Page " + (r.page.index + 1) + "/" + pages.length + " \u00b7 " +
        (r.page.url === null ? "(unknown URL)" : r.page.url) + " \u00b7 " + fmt(r.off));
    } else {
      var kind = r.event ? LABEL[r.event.kind] || r.event.kind : r.finding.kind;
      li = el("li", r.event ? TONE[r.event.kind] || "" : "finding");
      li.appendChild(el("span", "t", fmt(r.off)));
      li.appendChild(el("span", "k", kind));
      li.appendChild(el("span", "d", r.event ? describe(r.event) : str(r.finding.explanation)));
    }
    li.addEventListener("click", function () { seek(r.off); });
    log.appendChild(li);
    logRows.push({ off: r.off, li: li });
  });

  // ------------------------------------------------------------------ the stage
  var stage = $("stage"), viewport = $("viewport"), doc = $("doc"), toasts = $("toasts");
  var overlay = $("overlay");
  var shown = null; // { page, nboxes, boxes: [{sel, node, shape}], fieldBox: {field: box} }
  var trail = document.createElementNS(SVG, "svg");
  trail.setAttribute("id", "trail");
  var line = document.createElementNS(SVG, "polyline");
  trail.appendChild(line);
  var touch = D.device_class === "mobile" || D.device_class === "tablet";
  var cursor = document.createElementNS(SVG, "svg");
  cursor.setAttribute("class", touch ? "cursor touch" : "cursor");
  cursor.setAttribute("viewBox", "0 0 20 24");
  var arrow = document.createElementNS(SVG, touch ? "circle" : "path");
  if (touch) { arrow.setAttribute("cx", "10"); arrow.setAttribute("cy", "10"); arrow.setAttribute("r", "8"); }
  else arrow.setAttribute("d", "M1 1 L1 19 L6 14.5 L9.5 22 L12.5 20.7 L9 13.5 L15.5 13.5 Z");
  cursor.appendChild(arrow);
  var scale = 1;

  function kindOfBox(sel, w, h) {
    var tag = sel.split(/[\s>]+/).pop().split(/[.#:[]/)[0].toLowerCase();
    if (/^(input|textarea|select)$/.test(tag)) return "field";
    if (/^(img|video|picture|canvas|svg)$/.test(tag)) return "media";
    if (tag === "button" || /\[role=.?button/.test(sel)) return "button";
    if (tag === "a") return w * h > 120000 ? "link big" : "link";
    return w * h > 120000 ? "big" : "";
  }
  function norm(s) { return String(s).toLowerCase().replace(/[-_\s]/g, ""); }
  // the box a field name (FOCUS/CHANGE target) most likely is: #id or [name=...] matching it
  function findFieldBox(page, boxes, field, off) {
    var want = norm(field), i;
    for (i = 0; i < boxes.length; i++) {
      var m = /(?:#([^\s.#:[>]+)|\[name=["']?([^"'\]]+))[^\s>]*$/.exec(boxes[i].sel);
      if (m && norm(m[1] || m[2]) === want) return boxes[i];
    }
    // else: the element clicked just before the field got focus
    for (i = page.events.length - 1; i >= 0; i--) {
      var e = page.events[i];
      if (e.kind === "click" && e.offset_ms <= off && off - e.offset_ms < 1000) {
        for (var j = 0; j < boxes.length; j++) if (boxes[j].sel === e.selector) return boxes[j];
      }
    }
    return null;
  }

  function build(page, t) {
    var visible = page.boxes.filter(function (b) { return b[0] <= t; });
    if (shown && shown.page === page && shown.nboxes === visible.length) return;
    while (doc.firstChild) doc.removeChild(doc.firstChild);
    viewport.style.width = page.vw + "px";
    viewport.style.height = page.vh + "px";
    doc.style.width = page.vw + "px";
    doc.style.height = page.height + "px";
    var seen = {}, boxes = [];
    visible.forEach(function (b) {
      var key = b.slice(1, 6).join("\u0000");
      if (seen[key]) return;
      seen[key] = true;
      var sel = str(b[5]);
      var node = el("div", "box " + kindOfBox(sel, b[3], b[4]));
      node.style.left = b[1] + "px"; node.style.top = b[2] + "px";
      node.style.width = b[3] + "px"; node.style.height = b[4] + "px";
      node.title = sel;
      node.appendChild(el("span", "sel", sel));
      var shape = el("span", "shape");
      node.appendChild(shape);
      boxes.push({ sel: sel, node: node, shape: shape, x: b[1], y: b[2], w: b[3], h: b[4] });
    });
    // big containers first so small controls stay on top and readable
    boxes.slice().sort(function (a, b) { return b.w * b.h - a.w * a.h; })
      .forEach(function (b) { doc.appendChild(b.node); });
    var fieldBox = {};
    page.events.forEach(function (e) {
      if (e.field !== undefined && e.field !== null && !(e.field in fieldBox)) {
        fieldBox[e.field] = findFieldBox(page, boxes, e.field, e.offset_ms);
      }
    });
    trail.setAttribute("width", String(page.vw));
    trail.setAttribute("height", String(page.height));
    doc.appendChild(trail);
    doc.appendChild(cursor);
    shown = { page: page, nboxes: visible.length, boxes: boxes, fieldBox: fieldBox, extra: [] };
    $("url").textContent = page.url === null ? "(unknown URL)" : page.url;
    $("url").title = page.referrer ? "from " + page.referrer : "";
    $("page-n").textContent = "page " + (page.index + 1) + "/" + pages.length;
    fit();
  }

  function fit() {
    if (!shown) return;
    var p = shown.page;
    var room = Math.max(280, window.innerHeight - stage.getBoundingClientRect().top - 130);
    var s = Math.min(stage.clientWidth / p.vw, room / p.vh, 1.5);
    scale = s;
    viewport.style.transform = "scale(" + s + ")";
    // labels, cursor and ripples keep a readable size on screen however far the page is scaled
    viewport.style.setProperty("--inv", String(Math.min(1 / s, 2.2)));
    viewport.style.marginRight = (p.vw * s - p.vw) + "px"; // take the scaled width in the flex row
    stage.style.height = Math.round(p.vh * s) + "px";
  }
  window.addEventListener("resize", fit);

  function toast(cls, title, text) {
    var li = el("li", "toast " + cls);
    li.appendChild(el("b", null, title));
    li.appendChild(el("span", "msg", text));
    toasts.appendChild(li);
  }

  // ------------------------------------------------------------------ drawing one moment
  var now = 0, playing = false, dragging = false, shownRow;

  function draw(t) {
    var page = pages[Math.max(0, upto(pages, t, function (p) { return p.offset_ms; }))];
    build(page, t);
    // scroll as recorded; but scrolls are sampled (every 250 ms at most), so when the pointer
    // is outside the recorded view the view follows it: the rep always sees where they click
    var si = upto(page.scrolls, t, function (s) { return s[0]; });
    var sx = si >= 0 ? page.scrolls[si][1] : 0, sy = si >= 0 ? page.scrolls[si][2] : 0;
    var pj = upto(page.pointer, t, function (m) { return m[0]; });
    if (pj >= 0 && (si < 0 || page.pointer[pj][0] >= page.scrolls[si][0])) {
      var py = page.pointer[pj][2], margin = 80;
      if (py > sy + page.vh - margin) sy = Math.min(py - page.vh + margin * 2, page.height - page.vh);
      if (py < sy + margin / 2) sy = Math.max(0, py - margin * 2);
    }
    doc.style.transform = "translate(" + -sx + "px," + -sy + "px)";
    // pointer: interpolated between samples less than a second apart
    var pi = upto(page.pointer, t, function (m) { return m[0]; });
    if (pi >= 0) {
      var a = page.pointer[pi], b = page.pointer[pi + 1], x = a[1], y = a[2];
      if (b && b[0] - a[0] < 1000) {
        var k = (t - a[0]) / Math.max(1, b[0] - a[0]);
        x += (b[1] - a[1]) * k; y += (b[2] - a[2]) * k;
      }
      cursor.style.display = "";
      cursor.style.left = x + "px"; cursor.style.top = y + "px";
      cursor.style.transform = "scale(" + 1 / scale + ")";
      var pts = [];
      for (var i = pi; i >= 0 && t - page.pointer[i][0] < TRAIL_MS; i--) pts.push(page.pointer[i][1] + "," + page.pointer[i][2]);
      pts.reverse(); pts.push(x + "," + y);
      line.setAttribute("points", pts.join(" "));
    } else {
      cursor.style.display = "none";
      line.setAttribute("points", "");
    }
    // ripples, fields, error labels: rebuilt each frame from the state at t
    shown.extra.forEach(function (n) { n.remove(); });
    shown.extra = [];
    shown.boxes.forEach(function (bx) { bx.node.classList.remove("hit", "focus", "invalid"); bx.shape.textContent = ""; });
    var fields = {}, rage = {};
    findings.forEach(function (f) { if (f.kind === "rage_click" && f.target) rage[f.target] = true; });
    page.events.forEach(function (e) {
      if (e.offset_ms > t) return;
      if (e.kind === "click" && t - e.offset_ms < RIPPLE_MS) {
        var age = (t - e.offset_ms) / RIPPLE_MS, r = (8 + 30 * age) / scale;
        var rp = el("div", "ripple" + (rage[e.selector] ? " rage" : ""));
        rp.style.left = e.x - r + "px"; rp.style.top = e.y - r + "px";
        rp.style.width = rp.style.height = 2 * r + "px";
        rp.style.opacity = String(1 - age);
        doc.appendChild(rp);
        shown.extra.push(rp);
        shown.boxes.forEach(function (bx) { if (bx.sel === e.selector) bx.node.classList.add("hit"); });
      }
      if (e.field === undefined || e.field === null) return;
      var st = fields[e.field] || (fields[e.field] = { focus: false, shape: null, length: 0, error: null });
      if (e.kind === "focus") st.focus = true;
      if (e.kind === "blur") st.focus = false;
      if (e.kind === "change" || e.kind === "blur") { st.shape = e.shape; st.length = e.length; }
      if (e.kind === "change") st.error = null;
      if (e.kind === "validation_error") st.error = e.message;
    });
    Object.keys(fields).forEach(function (name) {
      var st = fields[name], bx = shown.fieldBox[name];
      if (!bx) return;
      if (st.focus) bx.node.classList.add("focus");
      if (st.shape !== null) {
        bx.shape.textContent = st.shape;
        bx.shape.appendChild(el("span", "len", st.length + " chars"));
      }
      if (st.error !== null) {
        bx.node.classList.add("invalid");
        var msg = el("div", "errmsg", st.error);
        msg.style.left = bx.x + "px"; msg.style.top = bx.y + bx.h + 4 + "px";
        doc.appendChild(msg);
        shown.extra.push(msg);
      }
    });
    // toasts: what went wrong (or right) in the last few seconds
    while (toasts.firstChild) toasts.removeChild(toasts.firstChild);
    var fresh = function (off) { return off <= t && t - off < TOAST_MS; };
    var items = [];
    findings.forEach(function (f) {
      if (fresh(f.offset_ms)) items.push([f.offset_ms, "bad", "struggle: " + f.kind, str(f.explanation)]);
    });
    D.events.forEach(function (e) {
      if (fresh(e.offset_ms) && (TONE[e.kind] || (e.kind === "change" && !shown.fieldBox[e.field]))) {
        items.push([e.offset_ms, TONE[e.kind] || "info", LABEL[e.kind], describe(e)]);
      }
    });
    items.sort(function (a, b) { return b[0] - a[0]; });
    items.slice(0, 3).forEach(function (it) { toast(it[1], it[2], it[3]); });
    // the tab hidden, or the visitor gone
    var state = null;
    D.events.forEach(function (e) {
      if (e.offset_ms > t) return;
      if (e.kind === "visibility_hidden") state = "The visitor switched to another tab or app";
      if (e.kind === "visibility_visible") state = null;
      if (e.kind === "page_leave") state = "The visitor left the page";
    });
    if (state !== null && state !== "The visitor left the page" && t >= TOTAL) state = null;
    overlay.hidden = state === null;
    overlay.textContent = state || "";
    // the clock, scrubber and side panel
    $("time").textContent = fmt(t) + " / " + fmt(TOTAL);
    if (!dragging) scrub.value = String(Math.round(t));
    var cur = upto(logRows, t, function (r) { return r.off; });
    logRows.forEach(function (r, i) {
      r.li.classList.toggle("now", i === cur);
      r.li.classList.toggle("past", i < cur);
      r.li.classList.toggle("future", i > cur);
    });
    if (cur !== shownRow && cur >= 0 && shownRow !== undefined) {
      var row = logRows[cur].li;
      if (row.offsetTop < log.scrollTop || row.offsetTop > log.scrollTop + log.clientHeight - 30) {
        log.scrollTop = row.offsetTop - log.clientHeight / 3;
      }
    }
    shownRow = cur;
  }

  // ------------------------------------------------------------------ playing
  var last = 0, noticeUntil = 0;
  function seek(t) { now = Math.min(Math.max(0, t), TOTAL); draw(now); }
  function jumpToFinding(i) {
    findingItems.forEach(function (li, j) { li.classList.toggle("active", i === j); });
    seek(findings[i].offset_ms - LEAD_MS);
  }
  function setPlaying(on) {
    playing = on;
    var b = $("play");
    b.textContent = on ? "Pause" : "Play";
    b.setAttribute("aria-label", on ? "pause" : "play");
    b.classList.toggle("playing", on);
    if (on) { if (now >= TOTAL) now = 0; last = performance.now(); requestAnimationFrame(tick); }
  }
  function tick(ts) {
    if (!playing) return;
    var dt = Math.min(ts - last, 250);
    last = ts;
    now += dt * Number($("speed").value);
    if ($("skip").checked) {
      var next = busy[upto(busy, now, function (x) { return x; }) + 1];
      if (next !== undefined && next - now > SKIP_GAP_MS) {
        $("notice").textContent = "skipped " + dur(next - SKIP_KEEP_MS - now) + " of inactivity";
        noticeUntil = ts + 2000;
        now = next - SKIP_KEEP_MS;
      }
    }
    if (ts > noticeUntil) $("notice").textContent = "";
    if (now >= TOTAL) { now = TOTAL; setPlaying(false); }
    draw(now);
    if (playing) requestAnimationFrame(tick);
  }
  $("play").addEventListener("click", function () { setPlaying(!playing); });
  scrub.addEventListener("input", function () { dragging = true; seek(Number(scrub.value)); dragging = false; });
  document.addEventListener("keydown", function (ev) {
    var tag = ev.target && ev.target.tagName;
    if (tag === "SELECT" || tag === "INPUT" || tag === "BUTTON") return;
    if (ev.key === " ") { ev.preventDefault(); setPlaying(!playing); }
    if (ev.key === "ArrowRight") seek(now + 5000);
    if (ev.key === "ArrowLeft") seek(now - 5000);
  });
  seek(0);
})();
