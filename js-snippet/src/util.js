// Pure helpers (no DOM globals at import time): shapes, URLs, selectors, ids.

/** The shape of a text: letters as a/A, digits as 9, other characters kept; 64 characters. */
export const shape = (s) =>
  String(s)
    .slice(0, 64)
    .replace(/\p{N}/gu, '9')
    .replace(/\p{L}/gu, (c) => (c !== c.toLowerCase() ? 'A' : 'a'));

// Query keys whose values are kept (the campaign attribution a report segments by).
const KEEP = /^utm_(campaign|source|medium)$/;

/**
 * A URL with query values dropped (keys kept, `?q=&utm_source=x`) except the UTM allow-list,
 * and a fragment cut at its first `?`, `&` or `=` (so `#/cart` stays, `#token=...` does not).
 */
export function cleanUrl(u, base) {
  try {
    const url = new URL(u, base);
    if (!/^https?:$/.test(url.protocol)) return url.protocol;
    let q = '';
    for (const [k, v] of url.searchParams) q += `&${k}=${KEEP.test(k) ? v : ''}`;
    return (
      url.origin + url.pathname + (q && '?' + encodeURI(q.slice(1))) + url.hash.replace(/[?&=].*/, '')
    ).slice(0, 500);
  } catch {
    return null;
  }
}

/** UTM values of a URL, as [key, value] pairs. */
export function utm(u) {
  const o = [];
  try {
    for (const [k, v] of new URL(u).searchParams) if (KEEP.test(k)) o.push([k, v]);
  } catch {}
  return o;
}

// Ids and classes that look generated (hashes, counters, React's :r1:) are not stable.
const UNSTABLE = /\d{4}|^:|^css-|^sc-|^_/;

/**
 * A short selector that names an element the same way across page loads: the first of
 * `tag#id`, `[data-testid="…"]`, `tag[name="…"]` found walking up at most 3 levels, else
 * the `tag.class.class` chain of those 3 levels. At most 100 characters.
 */
export function selector(el) {
  const parts = [];
  for (let i = 0; el && el.nodeType === 1 && i < 3; i++, el = el.parentElement) {
    const tag = el.tagName.toLowerCase();
    const id = el.id;
    const tid = el.getAttribute('data-testid');
    const name = el.getAttribute('name');
    let p;
    if (id && !UNSTABLE.test(id)) p = `${tag}#${id}`;
    else if (tid) p = `[data-testid="${tid}"]`;
    else if (name) p = `${tag}[name="${name}"]`;
    if (p) {
      parts.unshift(p);
      break;
    }
    parts.unshift(
      [tag, ...[...el.classList].filter((c) => !UNSTABLE.test(c)).slice(0, 2)].join('.'),
    );
    if (tag === 'body') break;
  }
  return parts.join('>').slice(0, 100);
}

const B32 = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** 10 characters of Crockford base32 (50 random bits) from `crypto.getRandomValues`. */
export const newId = () =>
  Array.from(crypto.getRandomValues(new Uint8Array(10)), (b) => B32[b & 31]).join('');

/** Emails and long numbers in free text (error messages) replaced by their shape. */
export const scrub = (s) =>
  String(s)
    .slice(0, 300)
    .replace(/[^\s@]+@[^\s@]+|\+?\d[\d ().-]{5,}\d/g, shape);

/** Card-like, password and hidden fields: never measured (no length, no shape). */
export const sensitive = (el) =>
  /^(password|hidden)$/i.test(el.type) ||
  /^cc-/i.test(el.getAttribute('autocomplete') || '') ||
  /card|cvc|cvv|iban|ccnum|csc/i.test((el.name || '') + ' ' + (el.id || ''));

/** Bytes to base64 and back (the offline queue lives in localStorage, which holds text). */
export const toB64 = (b) => {
  let s = '';
  for (const c of b) s += String.fromCharCode(c);
  return btoa(s);
};
export const fromB64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
