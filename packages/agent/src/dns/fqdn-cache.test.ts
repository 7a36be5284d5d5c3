import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { FqdnCache } from './fqdn-cache.js';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

test('a new name/address pair changes the selection; the same pair again only lives longer, never shorter', () => {
  const c = clock();
  const cache = new FqdnCache({ now: c.now });
  assert.equal(cache.learn(['WWW.Example.com.'], ['203.0.113.11'], 30), true);
  assert.deepEqual([...cache.dnsNames()], [['203.0.113.11', ['www.example.com']]]);
  assert.equal(cache.learn(['www.example.com'], ['203.0.113.11'], 5), false);
  assert.equal(cache.nextExpiry(), 1_000_000 + 30_000, 'a shorter TTL does not cut a longer one');
  assert.equal(cache.learn(['cdn.example.com'], ['203.0.113.11'], 60), true);
  assert.deepEqual(cache.dnsNames().get('203.0.113.11'), ['cdn.example.com', 'www.example.com']);
});

test('expiry after the TTL: the pair leaves, the address leaves the selection with its last name', () => {
  const c = clock();
  const cache = new FqdnCache({ now: c.now });
  cache.learn(['a.example.com'], ['203.0.113.1', '203.0.113.2'], 2);
  cache.learn(['b.example.com'], ['203.0.113.2'], 10);
  c.advance(1999);
  assert.equal(cache.expire(), false);
  c.advance(1);
  assert.equal(cache.expire(), true);
  assert.deepEqual([...cache.dnsNames()], [['203.0.113.2', ['b.example.com']]]);
  assert.equal(cache.nextExpiry(), 1_000_000 + 10_000);
  c.advance(8000);
  assert.equal(cache.expire(), true);
  assert.equal(cache.size, 0);
  assert.equal(cache.nextExpiry(), undefined);
});

test('the minimum TTL raises a shorter one (a TTL of 0 too)', () => {
  const c = clock();
  const cache = new FqdnCache({ now: c.now, minTtl: 60 });
  cache.learn(['a.example.com'], ['203.0.113.1'], 0);
  c.advance(59_000);
  assert.equal(cache.expire(), false);
  c.advance(1000);
  assert.equal(cache.expire(), true);
});

test('restore keeps what has not expired; a bound on the pairs drops those that expire first', () => {
  const c = clock();
  const cache = new FqdnCache({ now: c.now });
  cache.learn(['a.example.com'], ['203.0.113.1'], 5);
  cache.learn(['b.example.com'], ['203.0.113.2'], 50);
  const saved = cache.list();
  c.advance(10_000);
  const next = new FqdnCache({ now: c.now });
  next.restore(saved);
  assert.deepEqual(next.list().map((e) => e.name), ['b.example.com']);

  const small = new FqdnCache({ now: c.now, maxEntries: 2 });
  small.learn(['x.test'], ['203.0.113.10'], 100);
  small.learn(['y.test'], ['203.0.113.11'], 1);
  small.learn(['z.test'], ['203.0.113.12'], 50);
  assert.deepEqual(small.list().map((e) => e.name), ['x.test', 'z.test']);
});
