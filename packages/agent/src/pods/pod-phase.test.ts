// The kubelet's arithmetic: phases, readiness, restart back-off and exit
// codes (pure), and the supervisor restarting a container with its back-off.
import { strict as assert } from 'node:assert';
import { constants } from 'node:os';
import { describe, test } from 'node:test';
import { docs, pod, rig } from '../test/fakes.js';
import { exitCodeOf, podPhase, restartDelayMs, willRestart } from './pod-phase.js';
import type { ContainerState } from './pod-state.js';
import { probeDue } from './readiness.js';

const run = (name: string): ContainerState => ({ name, state: 'running', restarts: 0 });
const done = (name: string, exitCode: number): ContainerState => ({ name, state: 'terminated', exitCode, reason: exitCode ? 'Error' : 'Completed', restarts: 0 });
const specs = [{ name: 'a' }, { name: 'b', readinessProbe: { tcpSocket: { port: 80 } } }];

describe('podPhase', () => {
  test('Running and ready only when every container runs and passes its probe', () => {
    assert.deepEqual(podPhase([run('a'), run('b')], specs, 'Always', new Map()), { phase: 'Running', ready: false });
    assert.deepEqual(podPhase([run('a'), run('b')], specs, 'Always', new Map([['b', true]])), { phase: 'Running', ready: true });
    assert.deepEqual(podPhase([run('a'), done('b', 1)], specs, 'Always', new Map([['b', true]])), { phase: 'Running', ready: false });
  });
  test('terminal phases follow restartPolicy', () => {
    assert.equal(podPhase([done('a', 0), done('b', 0)], specs, 'Never', new Map()).phase, 'Succeeded');
    assert.deepEqual(podPhase([done('a', 0), done('b', 2)], specs, 'Never', new Map()), { phase: 'Failed', reason: 'Error', ready: false });
    assert.equal(podPhase([done('a', 0), done('b', 0)], specs, 'OnFailure', new Map()).phase, 'Succeeded');
    assert.equal(podPhase([done('a', 0), done('b', 3)], specs, 'OnFailure', new Map(), 'Running').phase, 'Running', 'restarting: still Running');
    assert.equal(podPhase([done('a', 0), done('b', 0)], specs, 'Always', new Map(), 'Running').phase, 'Running');
    assert.equal(podPhase([{ name: 'a', state: 'waiting', restarts: 0 }], specs, 'Always', new Map()).phase, 'Pending');
  });
  test('a container that cannot run fails the pod at once', () => {
    assert.deepEqual(podPhase([run('a'), { ...done('b', 127), reason: 'ContainerCannotRun' }], specs, 'Always', new Map()), { phase: 'Failed', reason: 'ContainerCannotRun', ready: false });
  });
  test('back-off doubles from 1 s up to 30 s; restart decisions', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 10].map(restartDelayMs), [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    assert.equal(willRestart('Always', 0), true);
    assert.equal(willRestart('OnFailure', 0), false);
    assert.equal(willRestart('OnFailure', 1), true);
    assert.equal(willRestart('Never', 1), false);
  });
  test('a process killed by a signal reports 128 + its number', () => {
    assert.equal(exitCodeOf(null, 'SIGKILL', constants.signals), 137);
    assert.equal(exitCodeOf(null, 'SIGTERM', constants.signals), 143);
    assert.equal(exitCodeOf(null, 'SIGSEGV', constants.signals), 139);
    assert.equal(exitCodeOf(3, null, constants.signals), 3);
  });
  test('probes are due every periodSeconds after initialDelaySeconds', () => {
    const p = { tcpSocket: { port: 80 }, periodSeconds: 2, initialDelaySeconds: 3 };
    assert.equal(probeDue(p, 4, 1), false, 'before the initial delay');
    assert.equal(probeDue(p, 4, 5), true);
    assert.equal(probeDue(p, 5, 5), false, 'between periods');
    assert.equal(probeDue({ exec: { command: ['true'] } }, 20, 0), true, 'default period 10 s = 20 ticks');
  });
});

describe('ContainerSupervisor', () => {
  test('a container that exits is restarted after its back-off and counts the restart; a signal reports its real code', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const r = await rig();
    const settle = async () => {
      for (let i = 0; i < 3; i++) {
        await new Promise((resolve) => setImmediate(resolve));
        await r.queue.run(() => undefined);
      }
    };
    await r.applier.apply(docs(pod('web')));
    const rt = r.pods.get('default', 'web')!;
    const [first] = r.runner.of(rt.netns);
    r.runner.procs.get(first!.pid)!.exit({ code: null, signal: 'SIGKILL' });
    await settle();
    const cs = rt.state.containers[0]!;
    assert.equal(cs.state, 'terminated');
    assert.equal(cs.exitCode, 137);
    assert.equal(cs.reason, 'CrashLoopBackOff');
    assert.equal(r.runner.of(rt.netns).length, 0);
    t.mock.timers.tick(999);
    await settle();
    assert.equal(r.runner.of(rt.netns).length, 0, 'not before 1 s');
    t.mock.timers.tick(1);
    await settle();
    assert.equal(r.runner.of(rt.netns).length, 1);
    assert.equal(cs.restarts, 1);
    assert.equal(cs.state, 'running');
    assert.equal(rt.state.phase, 'Running');
  });
});
