import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { procStartTime, type ProcessRef } from '../workloads/container-process.js';
import { ProxySupervisor } from './proxy-supervisor.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function scratch(t: { after: (f: () => void) => void }, body: string) {
  const dir = mkdtempSync(join(tmpdir(), 'mbr-proxy-sup-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const main = join(dir, 'fake-proxy.mjs');
  writeFileSync(main, body);
  const saved: ProcessRef[] = [];
  const problems: string[] = [];
  return { dir, main, saved, problems, config: { main, args: [], logDir: join(dir, 'logs'), save: async (r: ProcessRef) => void saved.push(r), problem: (p: string) => void problems.push(p) } };
}

test('a proxy that exits is restarted, with back-off, each start saved; terminate ends the one running', async (t) => {
  const s = scratch(t, `setTimeout(() => process.exit(3), 50);`);
  const sup = new ProxySupervisor(s.config);
  await sup.start();
  for (let i = 0; i < 60 && sup.status().restarts < 2; i++) await sleep(50);
  assert.ok(sup.status().restarts >= 2, JSON.stringify(sup.status()));
  assert.equal(s.saved.length, sup.status().restarts + 1, 'every start saved for the next agent');
  assert.match(s.problems[0]!, /ended \(exit code 3\); restarting in 100 ms/);
  assert.match(s.problems[1]!, /restarting in 200 ms/, 'the back-off grows');
  await sup.terminate();
  assert.equal(sup.status().state, 'stopped');
});

test('a live proxy of the previous agent is adopted, not started again; a reused PID is not taken for it', async (t) => {
  const s = scratch(t, `setInterval(() => {}, 1000);`);
  const child = spawn(process.execPath, [s.main], { stdio: 'ignore' });
  t.after(() => void child.kill('SIGKILL'));
  await sleep(100);
  const ref = { pid: child.pid!, startTime: procStartTime(child.pid!)! };
  const adopted = new ProxySupervisor({ ...s.config, previous: ref });
  await adopted.start();
  assert.deepEqual([adopted.status().pid, adopted.status().origin, s.saved.length], [ref.pid, 'adopted', 0]);
  adopted.detach();
  const stale = new ProxySupervisor({ ...s.config, previous: { pid: ref.pid, startTime: '1' } });
  await stale.start();
  assert.equal(stale.status().origin, 'started');
  assert.notEqual(stale.status().pid, ref.pid);
  await stale.terminate();
});
