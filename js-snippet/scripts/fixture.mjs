// Writes the shared wire fixture: tests/fixtures/snippet_batches.msgpack (a msgpack array of
// bin values, one batch each, encoded by src/wire.js) and tests/fixtures/snippet_events.json
// (the event table rows a decoder must read back from them), and the site dictionary its
// version-3 batch names, tests/fixtures/snippet_dictionary.json. tests/test_snippet_wire.py
// decodes the batches with cemreplay and compares, and checks this script still writes the
// same bytes. Usage: node scripts/fixture.mjs [out-dir]
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { encodeBatch, mpArr, mpBin, clampInt } from '../src/wire.js';
import { K, LAYOUT } from '../src/schema.gen.js';

const out = process.argv[2] || fileURLToPath(new URL('../../tests/fixtures/', import.meta.url));
const SLOTS = ['x', 'y', 'a', 'b', 'target', 'text'];
const T0 = 1_700_000_000_000;
const long = 'ø'.repeat(200) + '/end'; // 404 UTF-8 bytes: a str 16
const url = 'https://shop.example/checkout?step=&utm_source=news';

// [kind, t, x, y, a, b, target, text] as the snippet records them
const s1a = [
  [K.PAGE_VIEW, T0, 1280, 720, 1, 0, url, null],
  [K.ATTRIBUTE, T0, 0, 0, 0, 0, 'locale', 'nb-NO'],
  [K.ATTRIBUTE, T0, 0, 0, 0, 0, 'timezone', 'Europe/Oslo'],
  [K.CLICK, T0 + 250, 100, 40, 64, 1, 'button#buy', null],
  [K.MUTATION, T0 + 240, 0, 0, 12, 0, null, null], // stamped before the click it answers
  [K.FOCUS, T0 + 900, 0, 0, 0, 0, 'input#phone', null],
  [K.BLUR, T0 + 4000, 0, 0, 14, 0, 'input#phone', '+99 999 99 999'],
  [K.VALIDATION_ERROR, T0 + 4100, 0, 0, 0, 0, 'input#phone', 'Vennligst bruk formatet: ✓'],
  [K.SCROLL, T0 + 4500, -3, 2_000_000, 5000, 720, null, null],
  [K.MILESTONE, T0 + 4600, 0, 0, -1, 0, 'cart_add', null],
  [K.MILESTONE, T0 + 4700, 0, 0, 5e9, 0, 'big', null], // clamped to 1e9
];
// 300 mouse moves and geometry boxes: lengths past the small msgpack forms
const s1b = [];
for (let i = 0; i < 300; i++) {
  s1b.push([K.MOUSE_MOVE, T0 + 5000 + i * 50, (i * 37) % 1280, (i * 53) % 4000, 0, 0, null, null]);
  if (i % 30 === 0) s1b.push([K.GEOMETRY, T0 + 5000 + i * 50, i, i * 2, 80, 24, `a.nav.item${i}`, null]);
}
s1b.push([K.CLICK, T0 + 21000, 100, 40, 64 | 4, 3, 'button#buy', null]); // refers back to batch 0
s1b.push([K.JS_ERROR, T0 + 21001, 0, 0, 0, 0, 'https://shop.example/app.js:12', long]);
s1b.push([K.NETWORK_FAILURE, T0 + 21002, 0, 0, 503, 0, 'https://api.shop.example/v1/cart?id=', 'POST']);
s1b.push([K.PAGE_LEAVE, T0 + 21003, 0, 0, 0, 0, null, null]);
const s2 = [
  [K.PAGE_VIEW, T0 + 9e6, 390, 844, 3, 4, 'https://shop.example/', 'https://shop.example/cart'],
  [K.RESIZE, T0 + 9e6 + 10, 844, 390, 0, 0, null, null],
  [K.VISIBILITY_HIDDEN, T0 + 9e6 + 20, 0, 0, 0, 0, null, null],
  [K.CHANGE, T0 + 9e6 + 30, 0, 0, 0, 0, 'input[name="email"]', ''],
];

const batches = [];
const rows = [];
function add(meta, events, table, dict) {
  batches.push(encodeBatch(meta, events, table, dict));
  events.forEach((e, i) => {
    const lay = LAYOUT[e[0]];
    const row = { session_id: meta.session, visitor_id: meta.visitor, t: e[1], batch: meta.seq, i, kind: e[0] };
    SLOTS.forEach((s, j) => {
      const used = lay & (1 << j);
      row[s] = j < 4 ? (used ? clampInt(e[j + 2]) : 0) : used ? e[j + 2] : null;
    });
    rows.push(row);
  });
}
const t1 = { m: {}, n: 0 };
const t2 = { m: {}, n: 0 };
add({ site: 'site-1', visitor: 'V0000000001', session: 'S1', seq: 0 }, s1a, t1);
add({ site: 'site-1', visitor: 'V0000000001', session: 'S1', seq: 1 }, s1b, t1);
add({ site: 'site-1', visitor: 'VISITOR-Ø', session: 'S2', seq: 0 }, s2, t2);
// Session S3 in version 3: the site's dictionary (written beside the batches, as the collector
// serves it) holds some of its strings; its first batch is sealed before the dictionary arrived.
const dictionary = { site: 'site-1', id: 7, strings: ['https://shop.example/', 'button#buy', 'input#phone', 'locale'] };
const d3 = { i: dictionary.id, m: {}, n: dictionary.strings.length };
dictionary.strings.forEach((x, j) => (d3.m[x + ' '] = j));
const t3 = { m: {}, n: 0 };
const s3a = [
  [K.PAGE_VIEW, T0 + 2e7, 1440, 900, 1, 0, 'https://shop.example/', null],
  [K.ATTRIBUTE, T0 + 2e7, 0, 0, 0, 0, 'locale', 'en-GB'],
];
const s3b = [
  [K.CLICK, T0 + 2e7 + 500, 600, 300, 64, 1, 'button#buy', null],
  [K.FOCUS, T0 + 2e7 + 900, 0, 0, 0, 0, 'input#phone', null],
  [K.BLUR, T0 + 2e7 + 3000, 0, 0, 9, 0, 'input#phone', '999 99 999'],
  // 'locale' was batch 0's own entry, now a dictionary reference; 'en-GB' refers back to
  // batch 0's entry, past the dictionary
  [K.ATTRIBUTE, T0 + 2e7 + 3000, 0, 0, 0, 0, 'locale', 'en-GB'],
  [K.PAGE_VIEW, T0 + 2e7 + 4000, 1440, 900, 1, 1, 'https://shop.example/cart', 'https://shop.example/'],
];
add({ site: 'site-1', visitor: 'V0000000003', session: 'S3', seq: 0 }, s3a, t3);
add({ site: 'site-1', visitor: 'V0000000003', session: 'S3', seq: 1 }, s3b, t3, d3);
writeFileSync(out + 'snippet_dictionary.json', JSON.stringify(dictionary) + '\n');

const o = [];
mpArr(o, batches.length);
for (const b of batches) mpBin(o, b);
writeFileSync(out + 'snippet_batches.msgpack', new Uint8Array(o));
writeFileSync(out + 'snippet_events.json', JSON.stringify(rows, null, 0).replace(/\},\{/g, '},\n{') + '\n');
console.log(`${batches.length} batches, ${rows.length} events -> ${out}`);
