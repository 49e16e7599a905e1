// The wire format, version 2, and version 3 with the site's string dictionary
// (docs/wire-format.md): a msgpack array of 13 (14) elements with columnar events. Only the msgpack subset the envelope needs is written here. Bytes are
// collected in plain arrays of numbers and turned into a Uint8Array at the end.
import { WIRE_VERSION, LAYOUT } from './schema.gen.js';

// Longest string we send, in UTF-16 units: 1024 units are at most 3,072 UTF-8 bytes, so
// every string stays under the 4,096-byte limit of the spec.
export const MAX_CHARS = 1024;
// Integers are clamped to +-1e9 (inside 32 bits, and a delta of two stays inside too).
export const MAX_INT = 1e9;

/** Append the unsigned LEB128 varint of `v` (0..2^32-1). */
export function varint(o, v) {
  v >>>= 0;
  for (; v > 127; v >>>= 7) o.push((v & 127) | 128);
  o.push(v);
}

/** Append the zigzag varint of a signed 32-bit integer. */
export const zigzag = (o, v) => varint(o, (v << 1) ^ (v >> 31));

/** Clamp to an integer in -MAX_INT..MAX_INT (NaN and non-numbers give 0). */
export const clampInt = (v) => Math.max(-MAX_INT, Math.min(MAX_INT, Math.round(v) || 0));

// `n` big-endian bytes of `v`; `& 255` truncates modulo 2^32, exact for integers < 2^53.
const be = (o, v, n) => {
  while (n--) o.push((v / 2 ** (8 * n)) & 255);
};

// The writers favour code size over the last byte: a uint is a positive fixint, uint 32 or
// uint 64, a length the fix form, 16 or 32 bits (no 8-bit forms). Any msgpack reader takes them.

/** msgpack uint; a value of 2^32 or more (base_ts) is written as uint 64 in two 32-bit halves. */
export const mpUint = (o, v) =>
  v < 128
    ? o.push(v)
    : v < 2 ** 32
      ? (o.push(0xce), be(o, v, 4))
      : (o.push(0xcf), be(o, v / 2 ** 32, 4), be(o, v, 4));

// A msgpack length header: `fix | n` up to `fixMax`, else type byte `t16` (16-bit length) or
// `t16 + 1` (32-bit): str da/db, bin c5/c6, array dc/dd.
const head = (o, n, fix, fixMax, t16) =>
  n <= fixMax
    ? o.push(fix | n)
    : n < 65536
      ? (o.push(t16), be(o, n, 2))
      : (o.push(t16 + 1), be(o, n, 4));

// A header, then the bytes `b`.
const raw = (o, b, ...h) => {
  head(o, b.length, ...h);
  for (const x of b) o.push(x);
};

const utf8 = new TextEncoder();
export const mpStr = (o, s) => raw(o, utf8.encode(s), 0xa0, 31, 0xda);
export const mpBin = (o, b) => raw(o, b, 0, -1, 0xc5);
export const mpArr = (o, n) => head(o, n, 0x90, 15, 0xdc);

/**
 * Encode one batch.
 *
 * `m`: {site, visitor, session, seq}. `events`: arrays [kind, t, x, y, a, b, target, text]
 * (strings or null for target/text; slots a kind does not use are ignored). `table`: the
 * session string table {m: {string + ' ': index}, n: next index}; strings new to it are added to
 * it and sent in this batch. `dict`: the site's string dictionary {i: id, m: {string + ' ':
 * index}, n: entries} or nothing; with one the batch is version 3 (a 14th element names it,
 * references 1..n are its entries and the session's own entries follow). Returns the batch
 * as a Uint8Array.
 */
export function encodeBatch(m, events, table, dict) {
  const strBase = table.n;
  const dm = dict ? dict.m : {};
  const dn = dict ? dict.n : 0;
  const strings = [];
  const kinds = [];
  const times = [];
  const ints = [];
  const refs = [];
  const baseTs = events.length ? events[0][1] : 0;
  const prev = []; // last value of each (kind, integer slot)
  let t0 = baseTs;
  let lk; // kind of the current run, whose byte ends `kinds`
  let run;
  for (const [k, t, ...f] of events) {
    const lay = LAYOUT[k];
    // kinds in runs: a byte is kind | (run length - 1) << 5, at most 8 events
    if (k === lk && run++ < 8) kinds[kinds.length - 1] += 32;
    else kinds.push((lk = k)), (run = 1);
    // time steps as step + 1; a step back as 0 and its size
    const d = t - t0;
    varint(times, d < 0 ? (times.push(0), -d) : d + 1);
    t0 = t;
    for (let j = 0; j < 6; j++) {
      let v = f[j];
      if (!(lay & (1 << j))) continue;
      if (j < 4) {
        // each integer slot is sent as its change from the previous event of the same kind
        // (zigzag wraps it to 32 bits, as the decoder does)
        v = clampInt(v);
        zigzag(ints, v - (prev[k * 4 + j] | 0));
        prev[k * 4 + j] = v;
      } else if (v == null) refs.push(0);
      else {
        v = String(v).slice(0, MAX_CHARS);
        // a dictionary entry, else the session's entry (one new to the session's table is added
        // to it and sent in this batch); keys end in a space so that no page string
        // ("constructor", "__proto__") meets Object.prototype
        varint(
          refs,
          dm[v + ' '] + 1 || dn + 1 + (table.m[v + ' '] ?? (strings.push(v), (table.m[v + ' '] = table.n++))),
        );
      }
    }
  }
  // an array of 13 (14 in version 3), then the version as a positive fixint
  const o = dict ? [0x9e, 3] : [0x9d, WIRE_VERSION];
  mpStr(o, m.site || '');
  mpStr(o, m.visitor);
  mpStr(o, m.session);
  mpUint(o, m.seq);
  mpUint(o, baseTs);
  mpUint(o, strBase);
  mpArr(o, strings.length);
  for (const s of strings) mpStr(o, s);
  mpUint(o, events.length);
  for (const b of [kinds, times, ints, refs]) mpBin(o, b);
  dict && mpUint(o, dict.i);
  return new Uint8Array(o);
}
