// The capture snippet: records what visitors do (never what they type) and ships it in
// wire-format batches. Every handler is wrapped so nothing can throw into the host page.
import { K, F, DEVICE, NAV, ERR_SRC } from './schema.gen.js'; // inlined by the build
import { encodeBatch } from './wire.js';
import { shape, cleanUrl, utm, selector, newId, scrub, sensitive, toB64, fromB64 } from './util.js';

const W = window;
const D = document;
const INACTIVE = 30 * 60e3; // a new session after 30 minutes without events
const MUT_WINDOW = 3000; // MUTATION events are sent this long after a click or submit
const MAX_QUEUE = 100; // batches kept in localStorage while the collector is unreachable
const MAX_GEOMETRY = 150; // GEOMETRY events per page view
const INTERACTIVE =
  'a[href],button,input,select,textarea,label,summary,[role=button],[role=link],[role=tab],' +
  '[role=menuitem],[onclick],[contenteditable]';
const noop = () => {};
const now = () => Date.now();

/** Wrap a function so that it never throws. */
const g =
  (fn) =>
  (...a) => {
    try {
      return fn(...a);
    } catch {}
  };

/** Read (v undefined) or write a JSON value in a Web Storage area; null erases. */
const store = (area, k, v) => {
  try {
    return v === undefined ? JSON.parse(W[area].getItem(k)) : W[area].setItem(k, JSON.stringify(v));
  } catch {}
};
const L = 'localStorage';
const SS = 'sessionStorage';

let o; // options
let url; // collector endpoint
let on = false; // recording (consent given and started)
let inst = false; // listeners installed
let buf = []; // events not yet in a batch: [kind, t, x, y, a, b, target, text]
let V; // visitor id
// The session {i: id, l: last event time, q: next seq, a: attributes sent, p: sampled,
// k: a live page owns it, t: the string table {m: {string: index}, n: next index}}.
let S;
// The site's string dictionary {i: id, m: {string + ' ': index}, n: entries} (wire version
// 3), 0 until it is fetched.
let Dd = 0;
let lastUrl = 0;
let clickT = -1e9;
let mutN = 0;
let mutT = 0;
let mutTimer = 0;
let bigN = 0;
let geoTimer = 0;
let geoSeen = {};
let geoN = 0;
let sending = null;
let fails = 0;
let retryAt = 0;
const fly = new Set(); // batches being posted, by "session/seq"
const fetch0 = W.fetch && W.fetch.bind(W); // the page's fetch, before we wrap it
const KEEPALIVE = W.Request && 'keepalive' in Request.prototype;

const elOf = (n) => n && (n.nodeType === 1 ? n : n.parentElement);
const blocked = (el) => !el || !el.closest || el.closest('[data-cem-block]');
const masked = (el) => o.maskAll || (el && el.closest && el.closest('[data-cem-mask]'));

const saveS = () => store(SS, 'cem_s', S);

function newSession(t) {
  S = { i: newId(), l: t, q: 0, a: {}, p: Math.random() < o.sampleRate, k: 1, t: { m: {}, n: 0 } };
  saveS();
}

/** After 30 minutes without events, start a new session (with a page view when `pv`). */
function fresh(t, pv) {
  if (t - S.l <= INACTIVE) return;
  seal();
  newSession(t);
  if (pv) {
    lastUrl = 0;
    pageView(NAV.LOAD);
  }
}

/**
 * Record one event: kind, target, text, a, x, y, b (the order puts the slots most kinds use
 * first); `ts` overrides the time. Slots a kind does not use are ignored by the encoder.
 */
function rec(k, t, s, a, x, y, b, ts) {
  if (!on) return;
  const t0 = now();
  fresh(t0, k > K.ATTRIBUTE);
  S.l = t0;
  if (!S.p) return;
  ts = ts || t0;
  buf.push([k, ts, x, y, a, b, t || null, s == null ? null : s]);
  if (buf.length >= o.maxBatchEvents) {
    seal();
    send();
  }
}

// ---- the queue and the transport ----------------------------------------------------------

const qLoad = () => store(L, 'cem_q') || [];
const qKey = (e) => e.s + '/' + e.q;
function qDrop(e) {
  store(
    L,
    'cem_q',
    qLoad().filter((x) => qKey(x) !== qKey(e)),
  );
}

/** Turn the buffered events into a batch in the persistent queue. */
function seal() {
  if (!buf.length || !on) return;
  const T = S.t;
  const n0 = T.n;
  const bytes = encodeBatch({ site: o.siteKey, visitor: V, session: S.i, seq: S.q }, buf, T, Dd);
  buf = [];
  const q = qLoad();
  if (q.length >= MAX_QUEUE) {
    // Full: drop this batch and forget the strings it would have defined, so that no later
    // batch refers to them (they are sent again when next used).
    for (const k in T.m) if (T.m[k] >= n0) delete T.m[k];
    T.n = n0;
    return;
  }
  q.push({ s: S.i, q: S.q++, b: toB64(bytes) });
  store(L, 'cem_q', q);
  saveS();
}

/** POST one batch; resolves to the HTTP status (0 for a beacon). */
async function post(b, leave) {
  const h = { 'Content-Type': 'application/msgpack' };
  if (leave && !KEEPALIVE) return navigator.sendBeacon(url, b) ? 0 : -1;
  if (!leave && b.length > 1024 && W.CompressionStream) {
    const z = new Blob([b]).stream().pipeThrough(new CompressionStream('gzip'));
    b = new Uint8Array(await new Response(z).arrayBuffer());
    h['Content-Encoding'] = 'gzip';
  }
  const r = await fetch0(url, {
    method: 'POST',
    body: b,
    headers: h,
    keepalive: !!leave,
    credentials: 'omit',
  });
  return r.status;
}

/** Post one queued batch; true when the collector is done with it (2xx, or refused for good). */
async function postEntry(e, leave) {
  const k = qKey(e);
  if (fly.has(k)) return;
  fly.add(k);
  try {
    const st = await post(fromB64(e.b), leave);
    if ((st >= 200 && st < 300) || (st >= 400 && st < 500 && st !== 408 && st !== 429)) {
      qDrop(e);
      return true;
    }
  } finally {
    fly.delete(k);
  }
}

/**
 * Send the queue, oldest first, one batch at a time; resolves true once it is empty. A
 * failure stops the round and the next one waits 1 s, 2 s, 4 s, ... up to a minute.
 */
function send(force) {
  return (sending =
    sending ||
    (async () => {
      for (let q; (q = qLoad()).length; ) {
        if (!force && now() < retryAt) return false;
        if (!(await postEntry(q[0]).catch(noop))) {
          retryAt = now() + Math.min(6e4, 500 * 2 ** ++fails);
          return false;
        }
        fails = 0;
      }
      return true;
    })()
      .catch(noop)
      .finally(() => {
        sending = null;
      }));
}

/** The page is going away (or hidden, which on mobile is often the last we hear). */
function leave() {
  seal();
  saveS();
  let budget = 6e4; // keepalive requests share a 64 KiB in-flight budget
  for (const e of qLoad()) {
    if ((budget -= e.b.length * 0.75) < 0) break;
    postEntry(e, 1).catch(noop);
  }
}

function tick() {
  seal();
  send();
}

// ---- what gets recorded ----------------------------------------------------------------------

const device = () =>
  W.matchMedia('(pointer:coarse)').matches
    ? Math.min(screen.width, screen.height) < 600
      ? DEVICE.MOBILE
      : DEVICE.TABLET
    : DEVICE.DESKTOP;

function pageView(nav) {
  const u = cleanUrl(location.href);
  if (nav && u === lastUrl) return;
  const ref = lastUrl || cleanUrl(D.referrer) || null;
  lastUrl = u;
  rec(K.PAGE_VIEW, u, ref, device(), innerWidth, innerHeight, nav);
  const attrs = [
    ['locale', navigator.language],
    ['timezone', Intl.DateTimeFormat().resolvedOptions().timeZone],
    ...utm(location.href),
  ];
  for (const [k, v] of attrs)
    if (v && S.a[k] !== v) {
      S.a[k] = v;
      rec(K.ATTRIBUTE, k, v);
    }
  geoSeen = {};
  geoN = 0;
  geoSoon(300);
}

function geoSoon(ms) {
  geoTimer = geoTimer || setTimeout(g(geometry), ms);
}

/** Page-coordinate boxes of visible interactive elements (new or moved ones only). */
function geometry() {
  geoTimer = 0;
  bigN = 0;
  for (const el of D.querySelectorAll(INTERACTIVE)) {
    if (geoN >= MAX_GEOMETRY) break;
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height || blocked(el)) continue;
    const v = [selector(el), 0, r.width, r.left + scrollX, r.top + scrollY, r.height];
    const key = v.join();
    if (geoSeen[key]) continue;
    geoSeen[key] = 1;
    geoN++;
    rec(K.GEOMETRY, ...v);
  }
}

const field = (t) =>
  t && /^(INPUT|SELECT|TEXTAREA)$/.test(t.tagName) && !blocked(t) ? t : null;

/** BLUR / CHANGE: length and shape of the value, never the value. */
function measure(k, t) {
  let n = 0;
  let sh = null;
  if (/^(checkbox|radio)$/.test(t.type)) n = +t.checked;
  else if (!sensitive(t)) {
    n = t.value.length;
    sh = shape(t.value);
  }
  rec(k, selector(t), sh, n);
}

/** A message shown to the visitor, with anything they typed in `el` replaced by its shape. */
function msg(el, m) {
  m = String(m || '');
  const v = el && el.value;
  if (v && v.length > 1) m = m.split(v).join(shape(v));
  m = scrub(m);
  return el && masked(el) ? shape(m) : m;
}

function ariaText(el) {
  const id = (el.getAttribute('aria-errormessage') || el.getAttribute('aria-describedby') || '')
    .split(' ')[0];
  const e = id && D.getElementById(id);
  return e ? e.textContent.trim() : null;
}

function onClick(e) {
  const t = elOf(e.target);
  if (blocked(t)) return;
  const it = t.closest(INTERACTIVE);
  const a = t.closest('a[href]');
  let f =
    (e.button & 3) |
    (e.ctrlKey && F.CTRL) |
    (e.shiftKey && F.SHIFT) |
    (e.altKey && F.ALT) |
    (e.metaKey && F.META);
  if (it) f |= F.INTERACTIVE;
  if (
    t.isContentEditable ||
    t.tagName === 'TEXTAREA' ||
    (t.tagName === 'INPUT' && !/^(button|submit|reset|checkbox|radio|file|image|color|range)$/.test(t.type))
  )
    f |= F.TEXT_INPUT;
  if (a) {
    f |= F.LINK;
    if (a.target === '_blank' || a.hasAttribute('download')) f |= F.NEW_CONTEXT;
  }
  if (t.closest('[data-cem-no-rage]')) f |= F.NO_RAGE;
  clickT = now();
  // counts from before the response window are stale, unless a MUTATION is about to be sent
  if (!mutTimer) mutN = 0;
  rec(K.CLICK, selector(it || t), 0, f, e.pageX, e.pageY, e.detail);
}

/** At most one call per `ms`, made `ms` after the first event (so it sees the final state). */
function thr(fn, ms) {
  let tm = 0;
  return () =>
    tm ||
    (tm = setTimeout(
      g(() => {
        tm = 0;
        fn();
      }),
      ms,
    ));
}

function listeners() {
  // Every event used here reaches window (capture phase for those that do not bubble). None is
  // cancelable in a way that matters, so `passive` would change nothing.
  const on_ = (ev, fn, cap) => W.addEventListener(ev, g(fn), !!cap);

  on_('click', onClick, 1);
  on_('auxclick', onClick, 1);
  let mx = -1e5;
  let my = 0;
  let mt = 0;
  on_('mousemove', (e) => {
    const n = now();
    if (n - mt < 50 || Math.hypot(e.pageX - mx, e.pageY - my) < 20) return;
    mt = n;
    mx = e.pageX;
    my = e.pageY;
    rec(K.MOUSE_MOVE, 0, 0, 0, mx, my);
  });
  on_('scroll',
    thr(() => rec(K.SCROLL, 0, 0, D.documentElement.scrollHeight, scrollX, scrollY, innerHeight), 250),
  );
  on_('resize', thr(() => rec(K.RESIZE, 0, 0, 0, innerWidth, innerHeight), 500));

  on_('focusin', (e) => {
    const t = field(e.target);
    t && rec(K.FOCUS, selector(t));
  });
  on_('focusout', (e) => {
    const t = field(e.target);
    t && measure(K.BLUR, t);
  });
  on_('change', (e) => {
    const t = field(e.target);
    t && measure(K.CHANGE, t);
  });
  on_('submit',
    (e) => {
      const t = elOf(e.target);
      if (blocked(t)) return;
      clickT = now();
      rec(K.SUBMIT, selector(t));
    },
    1,
  );
  on_('invalid',
    (e) => {
      const t = field(e.target);
      t && rec(K.VALIDATION_ERROR, selector(t), msg(t, t.validationMessage), ERR_SRC.NATIVE);
    },
    1,
  );
  // Responses for dead-click detection (nodes changed, coalesced per 100 ms, after a click),
  // big changes (new GEOMETRY) and aria-invalid turning true (VALIDATION_ERROR).
  new MutationObserver(
    g((ms) => {
      let n = 0;
      for (const m of ms) {
        const t = m.target;
        if (blocked(elOf(t))) continue;
        n += m.type === 'childList' ? m.addedNodes.length + m.removedNodes.length : 1;
        if (m.attributeName === 'aria-invalid' && m.oldValue !== 'true' && t.getAttribute('aria-invalid') === 'true')
          rec(K.VALIDATION_ERROR, selector(t), msg(t, ariaText(t)), ERR_SRC.ARIA);
      }
      if (!n) return;
      if (!mutN) mutT = now();
      mutN += n;
      if ((bigN += n) >= 20) geoSoon(1000);
      if (now() - clickT < MUT_WINDOW && !mutTimer)
        mutTimer = setTimeout(
          g(() => {
            mutTimer = 0;
            mutN && rec(K.MUTATION, 0, 0, mutN, 0, 0, 0, mutT);
            mutN = 0;
          }),
          100,
        );
    }),
  ).observe(D.documentElement, { childList: true, subtree: true, attributes: true, attributeOldValue: true, characterData: true });

  on_('error', (e) => {
    e instanceof ErrorEvent && rec(K.JS_ERROR, e.filename && cleanUrl(e.filename) + ':' + e.lineno, scrub(e.message));
  });
  on_('unhandledrejection', (e) => {
    const r = e.reason;
    rec(K.JS_ERROR, 0, scrub((r && r.message) || r));
  });

  on_('visibilitychange', () => {
    if (D.visibilityState === 'hidden') {
      rec(K.VISIBILITY_HIDDEN);
      leave();
    } else rec(K.VISIBILITY_VISIBLE);
  });
  on_('pagehide', () => {
    rec(K.PAGE_LEAVE);
    if (on) S.k = 0;
    leave();
  });
  on_('pageshow', (e) => {
    if (e.persisted && on) {
      S.k = 1;
      saveS();
    }
  });
  on_('online', () => send(1));
  on_('popstate', () => {
    // A fragment change fires popstate then hashchange: leave those to hashchange.
    const u = cleanUrl(location.href);
    if (u.split('#')[0] !== String(lastUrl).split('#')[0]) pageView(NAV.POP);
  });
  on_('hashchange', () => pageView(NAV.HASH));
  for (const f of ['pushState', 'replaceState']) {
    const orig = history[f];
    history[f] = function () {
      const r = orig.apply(this, arguments);
      g(pageView)(NAV.PUSH);
      return r;
    };
  }

  // Requests (responses to clicks) and failed requests, for fetch and XMLHttpRequest.
  if (fetch0)
    W.fetch = function (input, init) {
      let u;
      let m;
      try {
        u = cleanUrl(input.url || String(input), location.href);
        m = String((init && init.method) || input.method || 'GET').toUpperCase();
        rec(K.REQUEST, u);
      } catch {}
      const p = fetch0(input, init);
      p.then(
        g((r) => r.status >= 400 && rec(K.NETWORK_FAILURE, u, m, r.status)),
        g((x) => x.name !== 'AbortError' && rec(K.NETWORK_FAILURE, u, m, 0)),
      );
      return p;
    };
  const XP = W.XMLHttpRequest && XMLHttpRequest.prototype;
  if (XP) {
    const open = XP.open;
    const sendX = XP.send;
    XP.open = function (m, u) {
      this._cem = g(() => [String(m).toUpperCase(), cleanUrl(u, location.href)])();
      return open.apply(this, arguments);
    };
    XP.send = function () {
      g(() => {
        const c = this._cem;
        if (!c) return;
        rec(K.REQUEST, c[1]);
        this.addEventListener('abort', () => (c[2] = 1));
        this.addEventListener('loadend', () => {
          const st = this.status;
          if (!c[2] && (!st || st >= 400)) rec(K.NETWORK_FAILURE, c[1], c[0], st);
        });
      })();
      return sendX.apply(this, arguments);
    };
  }
  setInterval(g(tick), o.flushMs);
}

/**
 * Fetch the site's dictionary and use it for the batches sealed from then on (the collector
 * lets the browser cache it for an hour). None (204), an older collector or a failure: v2.
 */
const dictionary = () =>
  fetch0(url.slice(0, -5) + 'dictionary?site=' + encodeURIComponent(o.siteKey || ''), {
    credentials: 'omit',
  })
    .then((r) => r.json())
    .then((d) => {
      const m = {};
      d.strings.forEach((x, j) => (m[x + ' '] = j));
      Dd = { i: d.id >>> 0, m, n: d.strings.length };
    })
    .catch(noop);

function navType() {
  const t = (performance.getEntriesByType('navigation')[0] || {}).type;
  return t === 'reload' ? NAV.RELOAD : t === 'back_forward' ? NAV.POP : NAV.LOAD;
}

function start() {
  if (on) return;
  V = store(L, 'cem_v') || newId();
  store(L, 'cem_v', V);
  S = store(SS, 'cem_s');
  const t0 = now();
  // S.k set: another live page (a duplicated tab copies sessionStorage) owns this session.
  if (!S || S.k || t0 - S.l > INACTIVE) newSession(t0);
  S.k = 1;
  saveS();
  on = true;
  if (!inst) {
    inst = true;
    listeners();
  }
  lastUrl = 0;
  pageView(navType());
  send();
  dictionary();
}

// ---- the public API (window.cemreplay) -------------------------------------------------------

/** Start recording. Options: endpoint, siteKey, flushMs, maxBatchEvents, sampleRate, maskAll, consent. */
const init = g((opts) => {
  if (o) return;
  url = opts.endpoint.replace(/\/$/, '') + '/v1/batch'; // no endpoint: throws, init can be retried
  o = { flushMs: 5000, maxBatchEvents: 500, sampleRate: 1, maskAll: false, ...opts };
  const c = store(L, 'cem_c');
  if (c === 1 || (c !== 0 && o.consent !== false)) start();
});

/** A milestone (`cart_add`, `order_placed`) with an optional integer value. */
const track = g((name, value) => rec(K.MILESTONE, String(name), 0, value));

/** A validation error the page shows for `el` (its own validation, not the browser's). */
const formError = g((el, message) => {
  if (el && !blocked(el)) rec(K.VALIDATION_ERROR, selector(el), msg(el, message), ERR_SRC.API);
});

/** Send everything now; resolves true once the queue is empty (every batch answered 2xx, or refused for good). */
const flush = () =>
  Promise.resolve()
    .then(() => on && seal())
    // wait out any round in flight (a timer's may stop early in back-off), then force one
    .then(function f() {
      return on && (sending ? sending.then(f) : send(1));
    })
    .catch(() => false);

/** The session id (what a visitor reads out to support); null when not recording. */
const sessionId = () => (on ? S.i : null);

const visitorId = () => (on ? V : null);

/** Stop recording, clear the queue and forget the ids; remembered in this browser. */
const optOut = g(() => {
  on = false;
  buf = [];
  store(L, 'cem_c', 0);
  for (const k of ['cem_q', 'cem_v']) store(L, k, null);
  store(SS, 'cem_s', null);
});

/** Record from now on (after `optOut()` or `consent: false`); remembered in this browser. */
const optIn = g(() => {
  store(L, 'cem_c', 1);
  o && start();
});

// A second copy of the script on the page leaves the first one in charge.
W.cemreplay = W.cemreplay || { init, track, formError, flush, sessionId, visitorId, optOut, optIn };
