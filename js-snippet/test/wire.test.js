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
  assert.deepEqual(table, { m: { '/': 0, 'button#buy': 1 }, n: 2 });
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
