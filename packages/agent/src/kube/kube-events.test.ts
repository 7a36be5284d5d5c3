import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { podEvents } from './kube-events.js';

const c = (state: 'waiting' | 'running' | 'terminated', extra: Record<string, unknown> = {}) => ({ name: 'app', state, restarts: 0, ...extra });

test('a new pod is scheduled; a container that starts is created and started', () => {
  const first = podEvents(undefined, { namespace: 'default', name: 'xwing', phase: 'Pending', containers: [c('waiting')] }, 'node1');
  assert.deepEqual(first.map((e) => e.reason), ['Scheduled']);
  assert.equal(first[0]!.message, 'Successfully assigned default/xwing to node1');
  const started = podEvents({ namespace: 'default', name: 'xwing', phase: 'Pending', containers: [c('waiting')] }, { namespace: 'default', name: 'xwing', phase: 'Running', containers: [c('running', { startedAt: 't1' })] }, 'node1');
  assert.deepEqual(started.map((e) => e.reason), ['Created', 'Started']);
});

test('failing containers: Failed once for a container that cannot run, BackOff at each restart', () => {
  const before = { namespace: 'default', name: 'p', phase: 'Running' as const, containers: [c('running', { startedAt: 't1' })] };
  const cannot = podEvents(before, { ...before, phase: 'Failed', containers: [c('terminated', { reason: 'ContainerCannotRun' })] }, 'n');
  assert.deepEqual(cannot.map((e) => [e.type, e.reason]), [['Warning', 'Failed']]);
  const back = { ...before, containers: [c('terminated', { reason: 'CrashLoopBackOff', restarts: 1 })] };
  assert.deepEqual(podEvents(before, back, 'n').map((e) => e.reason), ['BackOff']);
  assert.deepEqual(podEvents(back, back, 'n'), [], 'nothing changed, nothing said');
});
