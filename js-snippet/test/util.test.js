import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shape, cleanUrl, utm, selector, newId, scrub, sensitive, toB64, fromB64 } from '../src/util.js';

test('shape: letters a/A, digits 9, the rest kept, 64 characters', () => {
  assert.equal(shape('+47 912 34 567'), '+99 999 99 999');
  assert.equal(shape('Kari Nordmann'), 'Aaaa Aaaaaaaa');
  assert.equal(shape('Ærlig Øst-å 5'), 'Aaaaa Aaa-a 9');
  assert.equal(shape('kari@eksempel.no'), 'aaaa@aaaaaaaa.aa');
  assert.equal(shape('x'.repeat(100)).length, 64);
  assert.equal(shape(''), '');
});

test('cleanUrl: query values dropped except UTM; tokens in fragments cut', () => {
  assert.equal(
    cleanUrl('https://a.example/p/q?email=kari%40x.no&utm_source=news&utm_term=secret#/cart'),
    'https://a.example/p/q?email=&utm_source=news&utm_term=#/cart',
  );
  assert.equal(cleanUrl('https://a.example/cb#access_token=abc&x=1'), 'https://a.example/cb#access_token');
  assert.equal(cleanUrl('/api/cart?id=42', 'https://a.example/x'), 'https://a.example/api/cart?id=');
  assert.equal(cleanUrl('data:text/plain,hello'), 'data:');
  assert.equal(cleanUrl('not a url'), null);
  assert.ok(cleanUrl('https://a.example/' + 'x'.repeat(900)).length <= 500);
});

test('utm: the campaign attributes of a URL', () => {
  assert.deepEqual(utm('https://a.example/?utm_campaign=spring&q=1&utm_medium=email&utm_term=t'), [
    ['utm_campaign', 'spring'],
    ['utm_medium', 'email'],
  ]);
  assert.deepEqual(utm('nonsense'), []);
});

// A minimal element, enough for selector().
function el(tag, attrs = {}, parent = null) {
  return {
    nodeType: 1,
    tagName: tag.toUpperCase(),
    id: attrs.id || '',
    classList: (attrs.class || '').split(' ').filter(Boolean),
    parentElement: parent,
    getAttribute: (k) => (k in attrs ? attrs[k] : null),
  };
}

test('selector: id, data-testid, name, else a class chain of 3 levels', () => {
  const body = el('body');
  const form = el('form', { class: 'checkout' }, body);
  assert.equal(selector(el('button', { id: 'buy' }, form)), 'button#buy');
  assert.equal(selector(el('div', { 'data-testid': 'cart' }, form)), '[data-testid="cart"]');
  assert.equal(selector(el('input', { name: 'phone' }, form)), 'input[name="phone"]');
  const card = el('div', { class: 'card css-1x2y3z' }, el('section', { id: 'main' }, body));
  assert.equal(selector(el('span', { class: 'price big extra' }, card)), 'section#main>div.card>span.price.big');
  const deep = el('i', {}, el('b', {}, el('span', {}, el('p', {}, body))));
  assert.equal(selector(deep), 'span>b>i');
  // generated ids are not stable: fall back to the chain
  assert.equal(selector(el('a', { id: 'item-12345' }, body)), 'body>a');
  assert.ok(selector(el('a', { class: 'x'.repeat(300) }, body)).length <= 100);
});

test('newId: 10 characters of Crockford base32, random', () => {
  const a = newId();
  assert.match(a, /^[0-9A-HJKMNP-TV-Z]{10}$/);
  assert.notEqual(a, newId());
});

test('scrub: emails and long numbers in free text become shapes', () => {
  assert.equal(scrub('No account for kari@x.no'), 'No account for aaaa@a.aa');
  assert.equal(scrub('Bad number +47 912 34 567!'), 'Bad number +99 999 99 999!');
  assert.equal(scrub('Error 404 at line 12'), 'Error 404 at line 12');
});

test('sensitive: password, hidden and card-like fields', () => {
  const f = (type, attrs = {}) => ({ type, name: attrs.name || '', id: attrs.id || '', getAttribute: (k) => attrs[k] ?? null });
  assert.ok(sensitive(f('password')));
  assert.ok(sensitive(f('hidden')));
  assert.ok(sensitive(f('text', { autocomplete: 'cc-number' })));
  assert.ok(sensitive(f('text', { name: 'cardNumber' })));
  assert.ok(sensitive(f('tel', { id: 'cvc' })));
  assert.ok(sensitive(f('text', { name: 'iban' })));
  assert.ok(!sensitive(f('tel', { name: 'phone', autocomplete: 'tel' })));
});

test('base64 round trip for the offline queue', () => {
  const b = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.deepEqual(fromB64(toB64(b)), b);
});
