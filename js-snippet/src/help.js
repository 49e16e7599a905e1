// The answer channel: when the collector finds this visitor struggling (cemreplay serve
// --live), the page can offer help. Opt-in: nothing is polled until the page calls
// cemreplay.onHelp(fn) and init got `help: true` (or `help: {pollMs}`). fn receives
// {session_id, reason, rule, page_url}, once per signal, e.g. to open the site's chat with
// the session id attached.

/**
 * A poller of GET <endpoint>/v1/live/<session>?k=<siteKey>&after=<n>.
 * opts(): the init options (or undefined before init); sid(): the session id or null;
 * get(url): the page's fetch. Returns {on(fn), poll()}: poll() is one round (tests call it).
 */
export function helper(opts, sid, get, setTimer = setTimeout) {
  const fns = [];
  let after = 0;
  let timer = 0;
  const every = () => {
    const h = (opts() || {}).help;
    return h ? (h.pollMs > 0 ? h.pollMs : 10e3) : 0;
  };
  const poll = () => {
    const o = opts();
    const s = sid();
    if (!o || !o.help || !s || !fns.length || !get) return Promise.resolve(0);
    if (typeof document !== 'undefined' && document.hidden) return Promise.resolve(0);
    const base = o.endpoint.replace(/\/$/, '');
    const u = `${base}/v1/live/${encodeURIComponent(s)}?k=${encodeURIComponent(o.siteKey || '')}&after=${after}`;
    return get(u, { credentials: 'omit', cache: 'no-store' })
      .then((r) => (r.ok ? r.json() : { signals: [] }))
      .then((d) => {
        let n = 0;
        for (const x of d.signals || []) {
          if (x.n <= after) continue;
          after = x.n;
          n++;
          const info = { session_id: s, reason: x.reason, rule: x.rule, page_url: x.page_url };
          for (const fn of fns) {
            try {
              fn(info);
            } catch {}
          }
        }
        return n;
      })
      .catch(() => 0);
  };
  const loop = () => {
    const ms = every();
    if (!ms) return;
    timer = setTimer(() => {
      timer = 0;
      poll().finally(loop);
    }, ms);
  };
  return {
    on(fn) {
      if (typeof fn !== 'function') return;
      fns.push(fn);
      if (!timer) loop();
    },
    poll,
  };
}
