import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { IPCache } from '@membrane/identity';
import { parsePrefix, type Prefix } from '@membrane/policy';
import { IPCacheSync } from './ipcache-sync.js';

/** A fake kernel map that records the order of operations. */
function fakeDatapath() {
  const map = new Map<string, { identity: number; epId: number }>();
  const log: string[] = [];
  return {
    map,
    log,
    ipcacheUpsert(cidr: string, identity: number, epId = 0) {
      map.set(cidr, { identity, epId });
      log.push(`upsert ${cidr} ${identity}`);
    },
    ipcacheDelete(cidr: string) {
      log.push(`delete ${cidr}`);
      return map.delete(cidr);
    },
  };
}

test('sync writes new and changed entries before deleting stale ones, and skips unchanged ones', () => {
  const dp = fakeDatapath();
  const sync = new IPCacheSync(dp);
  const model = new IPCache();
  const p = (s: string) => parsePrefix(s) as Prefix;
  model.upsert({ prefix: p('10.200.0.5/32'), identity: 300, endpointId: 5, source: 'endpoint' });
  model.upsert({ prefix: p('198.51.100.0/24'), identity: 16777216, source: 'policy' });
  assert.deepEqual(sync.sync(model.list()), { written: 2, deleted: 0 });
  assert.deepEqual(sync.sync(model.list()), { written: 0, deleted: 0 });
  model.delete(p('198.51.100.0/24'));
  model.upsert({ prefix: p('10.200.0.5/32'), identity: 301, endpointId: 5, source: 'endpoint' });
  dp.log.length = 0;
  assert.deepEqual(sync.sync(model.list()), { written: 1, deleted: 1 });
  assert.deepEqual(dp.log, ['upsert 10.200.0.5/32 301', 'delete 198.51.100.0/24']);
  assert.deepEqual([...dp.map.keys()], ['10.200.0.5/32']);
});
