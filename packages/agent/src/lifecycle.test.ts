import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Lifecycle } from './lifecycle.js';

test('cells start in order and stop in reverse', async () => {
  const log: string[] = [];
  const lc = new Lifecycle();
  for (const n of ['store', 'datapath', 'api']) lc.append({ name: n, start: () => void log.push(`+${n}`), stop: () => void log.push(`-${n}`) });
  await lc.start();
  await lc.stop();
  assert.deepEqual(log, ['+store', '+datapath', '+api', '-api', '-datapath', '-store']);
});

test('a failed start stops what started, in reverse, and names the cell', async () => {
  const log: string[] = [];
  const lc = new Lifecycle();
  lc.append({ name: 'store', start: () => void log.push('+store'), stop: () => void log.push('-store') });
  lc.append({ name: 'datapath', start: () => void log.push('+datapath'), stop: () => void log.push('-datapath') });
  lc.append({ name: 'api', start: () => { throw new Error('EADDRINUSE'); }, stop: () => void log.push('-api') });
  await assert.rejects(lc.start(), /start api: EADDRINUSE/);
  assert.deepEqual(log, ['+store', '+datapath', '-datapath', '-store']);
  await lc.stop();
  assert.equal(log.length, 4);
});
