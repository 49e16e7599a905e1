import { test } from 'node:test';
import assert from 'node:assert/strict';
import { varint, zigzag, mpUint, mpStr, mpBin, mpArr, encodeBatch, clampInt } from '../src/wire.js';
import { K } from '../src/schema.gen.js';

const hex = (a) => Buffer.from(a).toString('hex');
const w = (fn, ...args) => {
  const o = [];
  fn(o, ...args);
  return hex(o);
};

test('varint: LEB128, least significant group first', () => {
  assert.equal(w(varint, 0), '00');
  assert.equal(w(varint, 127), '7f');
  assert.equal(w(varint, 128), '8001');
  assert.equal(w(varint, 2560), '8014');
  assert.equal(w(varint, 2 ** 32 - 1), 'ffffffff0f');
});

test('zigzag: 0, -1, 1, -2 map to 0, 1, 2, 3; 32-bit extremes', () => {
  assert.equal(w(zigzag, 0), '00');
  assert.equal(w(zigzag, -1), '01');
  assert.equal(w(zigzag, 1), '02');
  assert.equal(w(zigzag, -2), '03');
  assert.equal(w(zigzag, 250), 'f403'); // the spec's worked example
  assert.equal(w(zigzag, -1180), 'b712');
  assert.equal(w(zigzag, 2147483647), 'feffffff0f');
  assert.equal(w(zigzag, -2147483648), 'ffffffff0f');
});

test('msgpack uint: fixint, uint 32, uint 64 from two halves (exact to 2^53)', () => {
  assert.equal(w(mpUint, 1), '01');
  assert.equal(w(mpUint, 127), '7f');
  assert.equal(w(mpUint, 128), 'ce00000080');
  assert.equal(w(mpUint, 2 ** 32 - 1), 'ceffffffff');
  assert.equal(w(mpUint, 1700000000000), 'cf0000018bcfe56800'); // the spec's base_ts
  assert.equal(w(mpUint, 2 ** 53 - 1), 'cf001fffffffffffff');
});

test('msgpack str is UTF-8 with fix, 16 and 32-bit lengths', () => {
  assert.equal(w(mpStr, 'k'), 'a16b');
  assert.equal(w(mpStr, 'ø'), 'a2c3b8');
  assert.equal(w(mpStr, 'x'.repeat(31)).slice(0, 2), 'bf');
  assert.equal(w(mpStr, 'x'.repeat(32)).slice(0, 6), 'da0020');
  assert.equal(w(mpStr, 'x'.repeat(65536)).slice(0, 10), 'db00010000');
});

test('msgpack bin and array headers', () => {
  assert.equal(w(mpBin, [1, 3]), 'c500020103');
  assert.equal(w(mpBin, new Uint8Array(70000)).slice(0, 10), 'c600011170');
  assert.equal(w(mpArr, 13), '9d');
  assert.equal(w(mpArr, 16), 'dc0010');
  assert.equal(w(mpArr, 65536), 'dd00010000');
});

test('clampInt: integers within +-1e9, garbage to 0', () => {
  assert.equal(clampInt(12.6), 13);
  assert.equal(clampInt(5e9), 1e9);
  assert.equal(clampInt(-5e9), -1e9);
  assert.equal(clampInt(undefined), 0);
  assert.equal(clampInt('x'), 0);
});

test('the worked example of docs/wire-format.md (version 2): byte for byte', () => {
  const table = { m: {}, n: 0 };
  const b = encodeBatch(
    { site: 'k', visitor: 'v1', session: 's1', seq: 0 },
    [
      [K.PAGE_VIEW, 1700000000000, 1280, 720, 1, 0, '/', null],
      [K.CLICK, 1700000000250, 100, 40, 64, 1, 'button#buy', null],
    ],
    table,
  );
  const h = hex(b);
  // envelope up to the strings is byte-identical to the spec
  assert.ok(h.startsWith('9d02a16ba27631a2733100cf0000018bcfe568000092a12faa627574746f6e23627579'), h);
  // the four columns, as bin 16 sections: runs, steps + 1, per-kind deltas, refs
  assert.ok(
    h.endsWith('02' + 'c500020103' + 'c5000301fb01' + 'c5000c8014a00b0200c80150800102' + 'c50003010002'),
    h,
  );
  assert.deepEqual(table, { m: { '/ ': 0, 'button#buy ': 1 }, n: 2 });
});

test('version 2 columns: kind runs of up to 8, steps back, deltas per kind', () => {
  const m = { site: '', visitor: 'v', session: 's', seq: 0 };
  const ev = [];
  for (let i = 0; i < 10; i++) ev.push([K.MOUSE_MOVE, 100 + i, i, 2 * i, 0, 0, null, null]);
  ev.push([K.MUTATION, 105, 0, 0, 1e9, 0, null, null]); // 4 ms before the last move
  ev.push([K.MUTATION, 105, 0, 0, -1e9, 0, null, null]); // a change of -2e9
  const h = hex(encodeBatch(m, ev, { m: {}, n: 0 }));
  // kinds: 8 moves (4 | 7 << 5 = e4), 2 moves (24), 2 mutations (2d)
  assert.ok(h.includes('c50003e4242d'), h);
  // times: 1 (step 0), nine steps of 1 (02), a step back of 4 (00 04), a step of 0 (01)
  assert.ok(h.includes('c5000d01' + '02'.repeat(9) + '000401'), h);
  // moves: first (0, 0) then +1, +2 each; mutations: 1e9, then the change -2e9
  assert.ok(h.includes('0000' + '0204'.repeat(9) + '80a8d6b907' + 'ffcfacf30e'), h);
});

test('the string table: each string once per session; str_base continues', () => {
  const table = { m: {}, n: 0 };
  const m = { site: '', visitor: 'v', session: 's', seq: 0 };
  encodeBatch(m, [[K.FOCUS, 1, 0, 0, 0, 0, 'input#a', null]], table);
  const b = hex(encodeBatch({ ...m, seq: 1 }, [[K.BLUR, 2, 0, 0, 3, 0, 'input#a', 'aaa']], table));
  // str_base 1, strings ["aaa"] only; refs: the field is entry 0 (sent as 1), the shape entry 1 (2)
  assert.ok(b.includes('0191a3616161'), b);
  assert.ok(b.endsWith('c500020102'), b);
});

// A reader of the msgpack subset the encoder writes (enough to check a batch's strings).
function unpack(b) {
  let p = 0;
  const n = (k) => {
    let v = 0;
    for (let i = 0; i < k; i++) v = v * 256 + b[p++];
    return v;
  };
  const str = (len) => Buffer.from(b.subarray(p, (p += len))).toString('utf8');
  const arr = (len) => Array.from({ length: len }, () => val());
  const val = () => {
    const c = b[p++];
    if (c < 0x80) return c;
    if (c >= 0x90 && c <= 0x9f) return arr(c & 15);
    if (c >= 0xa0 && c <= 0xbf) return str(c & 31);
    const lens = { 0xc5: 2, 0xc6: 4, 0xce: 4, 0xcf: 8, 0xda: 2, 0xdb: 4, 0xdc: 2, 0xdd: 4 };
    const len = n(lens[c]);
    if (c === 0xc5 || c === 0xc6) return b.subarray(p, (p += len));
    if (c === 0xce || c === 0xcf) return len;
    if (c === 0xda || c === 0xdb) return str(len);
    if (c === 0xdc || c === 0xdd) return arr(len);
    throw new Error(`msgpack byte ${c.toString(16)} at ${p - 1}`);
  };
  return val();
}
const varints = (b) => {
  const out = [];
  for (let p = 0; p < b.length; ) {
    let v = 0;
    for (let s = 0; ; s += 7) {
      const c = b[p++];
      v += (c & 127) * 2 ** s;
      if (c < 128) break;
    }
    out.push(v);
  }
  return out;
};

test('the string table: page strings named like Object.prototype properties', () => {
  // selectors, URLs, messages and field names can be anything a page holds
  const names = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'];
  names.push('isPrototypeOf');
  const m = { site: '', visitor: 'v', session: 's', seq: 0 };
  let table = { m: {}, n: 0 };
  const session = []; // the session's strings, as a decoder rebuilds them from str_base
  const sent = []; // the strings each batch's refs point to, in order
  const batch = (events) => {
    const e = unpack(encodeBatch(m, events, table));
    assert.equal(e[6], session.length, 'str_base');
    session.push(...e[7]);
    sent.push(varints(e[12]).map((r) => (r ? session[r - 1] : null)));
    return e;
  };
  // an ATTRIBUTE sends target (name) and text (value): each name once as each
  const ev = names.map((s, i) => [K.ATTRIBUTE, 1 + i, 0, 0, 0, 0, s, names[(i + 1) % 6]]);
  const e0 = batch(ev);
  assert.deepEqual(e0[7], names); // each sent once, in first-use order
  assert.deepEqual(sent[0], ev.flatMap((x) => [x[6], x[7]]));
  // a later batch (also after the table went through sessionStorage's JSON) refers back
  table = JSON.parse(JSON.stringify(table));
  const late = [K.ATTRIBUTE, 99, 0, 0, 0, 0, 'new', 'toLocaleString'];
  const e1 = batch([...ev, late]);
  assert.deepEqual(e1[7], ['new', 'toLocaleString']);
  assert.deepEqual(sent[1], [...ev, late].flatMap((x) => [x[6], x[7]]));
  assert.equal(table.n, names.length + 2);
});

test('version 3: the site dictionary comes first in the references, own entries follow', () => {
  const strs = ['/', 'constructor', 'button#buy'];
  const dict = { i: 7, m: {}, n: strs.length };
  strs.forEach((s, j) => (dict.m[s + ' '] = j));
  const table = { m: {}, n: 0 };
  const m = { site: 'k', visitor: 'v1', session: 's1', seq: 0 };
  const ev = [
    [K.PAGE_VIEW, 1700000000000, 1280, 720, 1, 0, '/', null],
    [K.CLICK, 1700000000250, 100, 40, 64, 1, 'button#buy', null],
    [K.CLICK, 1700000000300, 100, 40, 64, 1, 'a#home', null],
    [K.ATTRIBUTE, 1700000000300, 0, 0, 0, 0, 'toString', 'constructor'],
  ];
  const b = encodeBatch(m, ev, table, dict);
  assert.equal(hex(b.subarray(0, 2)), '9e03'); // an array of 14, version 3
  const e = unpack(b);
  assert.equal(e.length, 14);
  assert.equal(e[13], 7); // names its dictionary
  assert.equal(e[6], 0); // str_base counts only the session's own entries
  assert.deepEqual(e[7], ['a#home', 'toString']); // dictionary strings are not sent
  // refs: '/' dict 0 (1), null, 'button#buy' dict 2 (3), 'a#home' own 0 (3 + 1 = 4),
  // 'toString' own 1 (5), 'constructor' dict 1 (2)
  assert.deepEqual(varints(e[12]), [1, 0, 3, 4, 5, 2]);
  // a later batch refers back to its own entries past the dictionary; str_base continues
  const e1 = unpack(encodeBatch({ ...m, seq: 1 }, [ev[2], [K.FOCUS, 1700000000400, 0, 0, 0, 0, 'input#q', null]], table, dict));
  assert.equal(e1[6], 2);
  assert.deepEqual(e1[7], ['input#q']);
  assert.deepEqual(varints(e1[12]), [4, 6]);
  // without a dictionary the same table writes version 2, own entries from 1
  const e2 = unpack(encodeBatch({ ...m, seq: 2 }, [ev[2]], table));
  assert.equal(e2.length, 13);
  assert.equal(e2[0], 2);
  assert.deepEqual(varints(e2[12]), [1]);
});
