import { test } from 'node:test';
import assert from 'node:assert/strict';
import { helper } from '../src/help.js';

const json = (d) => Promise.resolve({ ok: true, json: () => Promise.resolve(d) });

test('help: off unless configured and a callback is registered', async () => {
  let calls = 0;
  const get = () => (calls++, json({ signals: [] }));
  const h = helper(() => ({ endpoint: 'https://c.example', siteKey: 'k' }), () => 'S1', get, () => 1);
  h.on(() => {});
  assert.equal(await h.poll(), 0);
  const h2 = helper(() => ({ endpoint: 'https://c.example', help: true }), () => 'S1', get, () => 1);
  assert.equal(await h2.poll(), 0); // no callback yet
  assert.equal(calls, 0);
});

test('help: polls with the site key and cursor, calls back once per signal', async () => {
  const urls = [];
  const answers = [
    { signals: [{ n: 3, rule: 'failed_submit>=2/same', reason: '2 x failed_submit', page_url: '/checkout' }] },
    { signals: [] },
    { signals: [{ n: 3, rule: 'x' }, { n: 5, rule: 'rage_click->error_click<30s', reason: 'r' }] },
  ];
  const get = (u) => (urls.push(u), json(answers.shift()));
  const timers = [];
  const h = helper(
    () => ({ endpoint: 'https://c.example/', siteKey: 'shop 1', help: { pollMs: 2000 } }),
    () => 'S/1',
    get,
    (fn, ms) => (timers.push(ms), 1),
  );
  const got = [];
  h.on((info) => got.push(info));
  h.on(() => {
    throw new Error('a page callback that throws stops nothing');
  });
  assert.deepEqual(timers, [2000]);
  assert.equal(await h.poll(), 1);
  assert.equal(await h.poll(), 0);
  assert.equal(await h.poll(), 1);
  assert.deepEqual(urls, [
    'https://c.example/v1/live/S%2F1?k=shop%201&after=0',
    'https://c.example/v1/live/S%2F1?k=shop%201&after=3',
    'https://c.example/v1/live/S%2F1?k=shop%201&after=3',
  ]);
  assert.deepEqual(got, [
    { session_id: 'S/1', reason: '2 x failed_submit', rule: 'failed_submit>=2/same', page_url: '/checkout' },
    { session_id: 'S/1', reason: 'r', rule: 'rage_click->error_click<30s', page_url: undefined },
  ]);
});

test('help: a failing collector is quiet', async () => {
  const h = helper(() => ({ endpoint: 'https://c.example', help: true }), () => 'S1',
    () => Promise.reject(new Error('offline')), () => 1);
  h.on(() => assert.fail('no signal'));
  assert.equal(await h.poll(), 0);
});
