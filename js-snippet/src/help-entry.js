// The optional answer-channel add-on, built to dist/cemreplay-help.min.js and served by the
// collector at /v1/help.js. A separate file, so the capture snippet stays small and sites that
// do not offer help download nothing; its own global (window.cemreplayHelp), so it can load
// before or after the snippet. Load it before the snippet's init() where possible: it keeps
// the page's own fetch then, so its polls are not recorded as the visitor's requests.
//
//   cemreplayHelp.onHelp((h) => chat.open({ topic: h.reason, session: h.session_id }),
//                        { endpoint: 'https://collect.example', siteKey: 'shop-1' });
import { helper } from './help.js';

const W = window;
const get = W.fetch && W.fetch.bind(W);
let o;
const h = helper(
  () => o,
  () => (W.cemreplay && W.cemreplay.sessionId ? W.cemreplay.sessionId() : null),
  get,
);
/** Call fn({session_id, reason, rule, page_url}) when the collector sees this visitor struggle. */
const onHelp = (fn, opts) => {
  if (!o && opts && opts.endpoint) o = { ...opts, help: { pollMs: opts.pollMs } };
  h.on(fn);
};
W.cemreplayHelp = W.cemreplayHelp || { onHelp, poll: h.poll };
