import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { createMemoryStore } from './memory-store.js';
import { DATABASE_FILE, SCHEMA_VERSION, openSqliteStore } from './sqlite-store.js';
import { StoreError, type StoreErrorCode } from './store-error.js';
import type { Store, StoreEvent, StoreWriter } from './store.js';
import type { SerialStoreOptions } from './serial-store.js';

const scratch = mkdtempSync(join(tmpdir(), 'mbr-store-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let dirs = 0;
function freshDir(): string {
  return join(scratch, `state-${++dirs}`);
}

/** A clock that moves one second per reading, so timestamps tell writes apart. */
function steppingClock(): () => Date {
  let t = Date.parse('2025-01-01T00:00:00.000Z');
  return () => new Date((t += 1000));
}

function rejectsWith(code: StoreErrorCode, pattern?: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof StoreError, `expected a StoreError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (pattern) assert.match(e.message, pattern);
    return true;
  };
}

const pod = (name: string, image = 'nginx', namespace = 'default') => ({
  kind: 'Pod',
  namespace,
  name,
  body: { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels: { app: name } }, spec: { containers: [{ name: 'c', image }] } },
});

interface Backend {
  name: string;
  open(options?: SerialStoreOptions): Store;
}

const backends: Backend[] = [
  { name: 'memory', open: (options) => createMemoryStore(options) },
  { name: 'sqlite', open: (options) => openSqliteStore({ stateDir: freshDir(), ...options }) },
];

for (const backend of backends) {
  describe(`Store contract (${backend.name})`, () => {
    let open: Store[] = [];
    const make = (options?: SerialStoreOptions): Store => {
      const s = backend.open(options);
      open.push(s);
      return s;
    };
    after(async () => {
      await Promise.all(open.map((s) => s.close()));
      open = [];
    });

    test('put, get, list and delete', async () => {
      const store = make({ now: steppingClock() });
      const created = await store.put(pod('web'));
      assert.equal(created.result, 'created');
      assert.deepEqual(created.object, {
        ...pod('web'),
        resourceVersion: created.object.resourceVersion,
        creationTimestamp: '2025-01-01T00:00:01.000Z',
        updateTimestamp: '2025-01-01T00:00:01.000Z',
      });
      assert.ok(Number.isSafeInteger(created.object.resourceVersion) && created.object.resourceVersion > 0);
      assert.deepEqual(await store.get({ kind: 'Pod', namespace: 'default', name: 'web' }), created.object);
      assert.equal(await store.get({ kind: 'Pod', namespace: 'default', name: 'nope' }), undefined);
      assert.equal(await store.get({ kind: 'Service', namespace: 'default', name: 'web' }), undefined);

      await store.put(pod('b-db', 'postgres', 'prod'));
      await store.put(pod('api'));
      await store.put(pod('a-cache', 'redis', 'prod'));
      await store.put({ kind: 'Namespace', namespace: '', name: 'prod', body: { metadata: { name: 'prod' } } });
      const names = (objs: { namespace: string; name: string }[]) => objs.map((o) => `${o.namespace}/${o.name}`);
      assert.deepEqual(names(await store.list('Pod')), ['default/api', 'default/web', 'prod/a-cache', 'prod/b-db']);
      assert.deepEqual(names(await store.list('Pod', { namespace: 'prod' })), ['prod/a-cache', 'prod/b-db']);
      assert.deepEqual(names(await store.list('Pod', { namespace: 'staging' })), []);
      assert.deepEqual(names(await store.list('Namespace')), ['/prod']);
      assert.deepEqual(names(await store.list('Namespace', { namespace: '' })), ['/prod']);
      assert.deepEqual(await store.list('Deployment'), []);

      const deleted = await store.delete({ kind: 'Pod', namespace: 'default', name: 'web' });
      assert.ok(deleted);
      assert.deepEqual(deleted.body, pod('web').body);
      assert.equal(await store.get({ kind: 'Pod', namespace: 'default', name: 'web' }), undefined);
      assert.equal(await store.delete({ kind: 'Pod', namespace: 'default', name: 'web' }), undefined);
      assert.deepEqual(names(await store.list('Pod')), ['default/api', 'prod/a-cache', 'prod/b-db']);
    });

    test('list orders by UTF-8 bytes, the same in every backend', async () => {
      const store = make();
      // '\u{1F600}' is D83D DE00 in UTF-16 (before U+FF5E) but F0… in UTF-8 (after EF…).
      for (const name of ['\uFF5E', '\u{1F600}', 'b', 'B', 'a-1', 'a']) {
        await store.put({ kind: 'ConfigMap', namespace: 'x', name, body: {} });
      }
      assert.deepEqual(
        (await store.list('ConfigMap')).map((o) => o.name),
        ['B', 'a', 'a-1', 'b', '\uFF5E', '\u{1F600}'],
      );
    });

    test('re-putting the same object is unchanged: no new resourceVersion, no event', async () => {
      const store = make({ now: steppingClock() });
      const events: StoreEvent[] = [];
      store.watch((e) => events.push(e));
      const first = await store.put(pod('web'));
      const again = await store.put(pod('web'));
      assert.equal(again.result, 'unchanged');
      assert.deepEqual(again.object, first.object);
      // Key order does not matter, nor do undefined properties.
      const reordered = {
        kind: 'Pod',
        namespace: 'default',
        name: 'web',
        body: { spec: { containers: [{ image: 'nginx', name: 'c' }] }, metadata: { labels: { app: 'web' }, namespace: 'default', name: 'web' }, kind: 'Pod', apiVersion: 'v1', status: undefined },
      };
      assert.equal((await store.put(reordered)).result, 'unchanged');
      assert.deepEqual(events.map((e) => e.type), ['created']);

      const changed = await store.put(pod('web', 'nginx:1.27'));
      assert.equal(changed.result, 'configured');
      assert.ok(changed.object.resourceVersion > first.object.resourceVersion);
      assert.equal(changed.object.creationTimestamp, first.object.creationTimestamp);
      assert.ok(changed.object.updateTimestamp > first.object.updateTimestamp);
      // Array order is part of the object.
      const two = { kind: 'X', namespace: '', name: 'arr', body: [1, 2] };
      await store.put(two);
      assert.equal((await store.put({ ...two, body: [2, 1] })).result, 'configured');
      assert.deepEqual(events.map((e) => e.type), ['created', 'configured', 'created', 'configured']);
    });

    test('resourceVersion only grows: creates, updates and deletes each take a new one', async () => {
      const store = make();
      const seen: number[] = [];
      store.watch((e) => seen.push(e.object.resourceVersion));
      const a = await store.put(pod('a'));
      const b = await store.put(pod('b'));
      await store.put(pod('a', 'v2'));
      const gone = await store.delete({ kind: 'Pod', namespace: 'default', name: 'b' });
      assert.ok(gone && gone.resourceVersion > b.object.resourceVersion, 'the deletion has its own version');
      await store.transaction(async (tx) => {
        await tx.put(pod('c'));
        await tx.put(pod('d'));
      });
      // Deleting the newest object must not hand its version out again.
      const d = await store.delete({ kind: 'Pod', namespace: 'default', name: 'd' });
      const e = await store.put(pod('e'));
      assert.ok(d && e.object.resourceVersion > d.resourceVersion);
      assert.equal(seen.length, 8);
      assert.equal(seen[0], a.object.resourceVersion);
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! > seen[i - 1]!, `versions ${seen.join(', ')}`);
    });

    test('a transaction commits all its writes at once, and reads its own writes', async () => {
      const store = make();
      await store.put(pod('old'));
      const events: StoreEvent[] = [];
      store.watch((e) => events.push(e));
      const answer = await store.transaction(async (tx) => {
        assert.equal((await tx.put(pod('a'))).result, 'created');
        await tx.put(pod('b'));
        await tx.delete({ kind: 'Pod', namespace: 'default', name: 'old' });
        await tx.setState('ipam', { next: 7 });
        assert.equal(events.length, 0, 'no event before the commit');
        assert.deepEqual((await tx.list('Pod')).map((o) => o.name), ['a', 'b']);
        assert.deepEqual(await tx.getState('ipam'), { next: 7 });
        assert.equal((await tx.get({ kind: 'Pod', namespace: 'default', name: 'a' }))?.name, 'a');
        return 42;
      });
      assert.equal(answer, 42);
      assert.deepEqual((await store.list('Pod')).map((o) => o.name), ['a', 'b']);
      assert.deepEqual(await store.getState('ipam'), { next: 7 });
      assert.deepEqual(events.map((e) => `${e.type} ${e.object.name}`), ['created a', 'created b', 'deleted old']);
    });

    test('a transaction whose fn throws leaves nothing behind, and the error comes out unchanged', async () => {
      const store = make();
      const before = await store.put(pod('keep'));
      await store.put(pod('remove-me'));
      await store.setState('ipam', { next: 1 });
      const events: StoreEvent[] = [];
      store.watch((e) => events.push(e));
      const boom = new Error('validation failed half way');
      for (const fn of [
        // Synchronous throw after synchronous (unawaited) writes.
        (tx: StoreWriter) => {
          void tx.put(pod('keep', 'changed'));
          void tx.put(pod('new'));
          throw boom;
        },
        // Rejection after awaited writes of every kind.
        async (tx: StoreWriter) => {
          await tx.put(pod('keep', 'changed'));
          await tx.put(pod('new'));
          await tx.delete({ kind: 'Pod', namespace: 'default', name: 'remove-me' });
          await tx.setState('ipam', { next: 2 });
          await tx.setState('endpoints', [1]);
          await tx.deleteState('ipam');
          await new Promise((r) => setTimeout(r, 5));
          throw boom;
        },
      ]) {
        await assert.rejects(store.transaction(fn), (e) => e === boom);
        assert.deepEqual(await store.get({ kind: 'Pod', namespace: 'default', name: 'keep' }), before.object);
        assert.equal(await store.get({ kind: 'Pod', namespace: 'default', name: 'new' }), undefined);
        assert.ok(await store.get({ kind: 'Pod', namespace: 'default', name: 'remove-me' }));
        assert.deepEqual(await store.getState('ipam'), { next: 1 });
        assert.equal(await store.getState('endpoints'), undefined);
      }
      assert.deepEqual(events, []);
      // An invalid write inside fn aborts the whole batch too.
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.put(pod('new'));
          await tx.put({ kind: 'Pod', namespace: 'default', name: 'bad', body: { replicas: NaN } });
        }),
        rejectsWith('MEMBRANE_E_STORE_INVALID', /^put Pod default\/bad: body\.replicas: NaN is not a JSON number$/),
      );
      assert.equal(await store.get({ kind: 'Pod', namespace: 'default', name: 'new' }), undefined);
      // The store works on after a rollback, with versions still growing.
      const next = await store.put(pod('after'));
      assert.ok(next.object.resourceVersion > before.object.resourceVersion);
    });

    test('other calls wait while a transaction is open, and never see half a batch', async () => {
      const store = make();
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let inside!: () => void;
      const entered = new Promise<void>((r) => (inside = r));
      const tx = store.transaction(async (t) => {
        await t.put(pod('a'));
        inside();
        await gate;
        await t.put(pod('b'));
      });
      await entered;
      let listed: string[] | undefined;
      const reader = store.list('Pod').then((objs) => (listed = objs.map((o) => o.name)));
      await new Promise((r) => setTimeout(r, 10));
      assert.equal(listed, undefined, 'the read waits for the transaction');
      release();
      await tx;
      await reader;
      assert.deepEqual(listed, ['a', 'b']);
    });

    test('the store refuses calls on itself from inside its transaction, and a transaction used after it ended', async () => {
      const store = make();
      let leaked: StoreWriter | undefined;
      await assert.rejects(
        store.transaction(async (tx) => {
          leaked = tx;
          await store.put(pod('a'));
        }),
        rejectsWith('MEMBRANE_E_STORE_USAGE', /put: called on the store inside its own transaction .*use the transaction argument/),
      );
      assert.equal(await store.get({ kind: 'Pod', namespace: 'default', name: 'a' }), undefined);
      await assert.rejects(leaked!.put(pod('late')), rejectsWith('MEMBRANE_E_STORE_USAGE', /put: the transaction has already ended/));
      // A timer set inside a finished transaction may use the store again.
      await new Promise<void>((resolve, reject) => {
        void store.transaction(() => {
          setTimeout(() => store.put(pod('later')).then(() => resolve(), reject), 1);
        });
      });
      assert.ok(await store.get({ kind: 'Pod', namespace: 'default', name: 'later' }));
    });

    test('state keys hold JSON values apart from objects', async () => {
      const store = make();
      assert.equal(await store.getState('identity-allocator'), undefined);
      const snapshot = { next: 256, byLabels: { 'k8s:app=web': 256 }, free: [] as number[] };
      await store.setState('identity-allocator', snapshot);
      assert.deepEqual(await store.getState('identity-allocator'), snapshot);
      await store.setState('pod-ips', { 'default/web': '10.200.0.5' });
      await store.setState('pod-ips', { 'default/web': '10.200.0.5', 'default/api': '10.200.0.6' });
      assert.deepEqual(await store.getState('pod-ips'), { 'default/web': '10.200.0.5', 'default/api': '10.200.0.6' });
      await store.setState('endpoint-ids', [1, 2, 3]);
      await store.setState('flag', false);
      await store.setState('nothing', null);
      assert.equal(await store.getState('flag'), false);
      assert.equal(await store.getState('nothing'), null);
      assert.equal(await store.deleteState('endpoint-ids'), true);
      assert.equal(await store.deleteState('endpoint-ids'), false);
      assert.equal(await store.getState('endpoint-ids'), undefined);
      assert.deepEqual(await store.list('identity-allocator'), []);
      await assert.rejects(store.setState('x', undefined), rejectsWith('MEMBRANE_E_STORE_INVALID', /use deleteState/));
      await assert.rejects(store.setState('', 1), rejectsWith('MEMBRANE_E_STORE_INVALID', /state key/));
    });

    test('keys and bodies the store cannot hold are refused with the path', async () => {
      const store = make();
      await assert.rejects(store.put({ kind: 'Pod', namespace: 'default', name: '', body: {} }), rejectsWith('MEMBRANE_E_STORE_INVALID', /^put: name: must be a non-empty string$/));
      await assert.rejects(store.put({ kind: '', namespace: 'default', name: 'x', body: {} }), rejectsWith('MEMBRANE_E_STORE_INVALID', /^put: kind:/));
      await assert.rejects(store.get({ kind: 'Pod', namespace: undefined as unknown as string, name: 'x' }), rejectsWith('MEMBRANE_E_STORE_INVALID', /^get: namespace:/));
      await assert.rejects(
        store.put({ kind: 'Pod', namespace: 'default', name: 'x', body: { spec: { containers: [{ env: new Map() }] } } }),
        rejectsWith('MEMBRANE_E_STORE_INVALID', /^put Pod default\/x: body\.spec\.containers\[0\]\.env: a Map is not a plain JSON object$/),
      );
      await assert.rejects(store.put({ kind: 'Pod', namespace: 'default', name: 'x', body: { n: 1n } }), rejectsWith('MEMBRANE_E_STORE_INVALID', /body\.n: bigint is not a JSON value/));
      const cyclic: Record<string, unknown> = {};
      cyclic['self'] = cyclic;
      await assert.rejects(store.put({ kind: 'Pod', namespace: 'default', name: 'x', body: cyclic }), rejectsWith('MEMBRANE_E_STORE_INVALID', /body\.self: refers back to itself/));
      await assert.rejects(store.put({ kind: 'Pod', namespace: 'default', name: 'x', body: [1, undefined] }), rejectsWith('MEMBRANE_E_STORE_INVALID', /body\[1\]: undefined/));
      assert.deepEqual(await store.list('Pod'), []);
    });

    test('bodies are copies: changing what was put or what was read changes nothing stored', async () => {
      const store = make();
      const input = pod('web');
      const { object } = await store.put(input);
      input.body.spec.containers[0]!.image = 'mutated';
      (object.body as typeof input.body).metadata.name = 'mutated';
      const read = await store.get<typeof input.body>({ kind: 'Pod', namespace: 'default', name: 'web' });
      assert.equal(read!.body.spec.containers[0]!.image, 'nginx');
      read!.body.metadata.labels.app = 'mutated';
      assert.equal((await store.list<typeof input.body>('Pod'))[0]!.body.metadata.labels.app, 'web');
    });

    test('watch reports each change after its commit until unsubscribed', async () => {
      const store = make();
      const events: string[] = [];
      const stop = store.watch((e) => events.push(`${e.type} ${e.object.kind} ${e.object.namespace}/${e.object.name} ${e.object.resourceVersion}`));
      const a = await store.put(pod('a'));
      const a2 = await store.put(pod('a', 'v2'));
      const gone = await store.delete({ kind: 'Pod', namespace: 'default', name: 'a' });
      stop();
      await store.put(pod('b'));
      assert.deepEqual(events, [
        `created Pod default/a ${a.object.resourceVersion}`,
        `configured Pod default/a ${a2.object.resourceVersion}`,
        `deleted Pod default/a ${gone!.resourceVersion}`,
      ]);
    });

    test('a throwing listener neither fails the write nor silences the others', async () => {
      const store = make();
      const seen: string[] = [];
      const uncaught: unknown[] = [];
      const onUncaught = (e: unknown) => uncaught.push(e);
      const listeners = process.listeners('uncaughtException');
      process.removeAllListeners('uncaughtException');
      process.on('uncaughtException', onUncaught);
      try {
        store.watch(() => {
          throw new Error('listener bug');
        });
        store.watch((e) => seen.push(e.object.name));
        assert.equal((await store.put(pod('a'))).result, 'created');
        await new Promise((r) => setImmediate(r));
      } finally {
        process.removeListener('uncaughtException', onUncaught);
        for (const l of listeners) process.on('uncaughtException', l);
      }
      assert.deepEqual(seen, ['a']);
      assert.equal((uncaught[0] as Error).message, 'listener bug');
      assert.ok(await store.get({ kind: 'Pod', namespace: 'default', name: 'a' }));
    });

    test('close waits for calls already made, then refuses new ones', async () => {
      const store = backend.open();
      const put = store.put(pod('a'));
      const closed = store.close();
      await assert.rejects(store.get({ kind: 'Pod', namespace: 'default', name: 'a' }), rejectsWith('MEMBRANE_E_STORE_USAGE', /get: the store is closed/));
      assert.equal((await put).result, 'created');
      await closed;
      await store.close();
    });
  });
}

// ---- SQLite only ------------------------------------------------------------

const storeModule = fileURLToPath(new URL('./sqlite-store.js', import.meta.url));

/**
 * A second node process (another agent) running `body` with `store` opened on
 * stateDir; it prints "ok" when done and then stays alive holding the store,
 * or prints "error <code> <message>" and exits 3 when opening fails.
 */
function agentProcess(stateDir: string, body: string) {
  const code = `
    const { openSqliteStore } = await import(${JSON.stringify(storeModule)});
    let store;
    try {
      store = openSqliteStore({ stateDir: ${JSON.stringify(stateDir)} });
    } catch (e) {
      process.stdout.write('error ' + e.code + ' ' + e.message + '\\n');
      process.exit(3);
    }
    ${body}
    process.stdout.write('ok\\n');
    setInterval(() => {}, 1 << 30);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const firstLine = new Promise<string>((resolve, reject) => {
    const check = () => {
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    };
    child.stdout.on('data', check);
    void exited.then(({ code, signal }) => {
      check();
      reject(new Error(`agent process exited (${code ?? signal}) before a line: ${err}`));
    });
  });
  after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, firstLine, exited };
}

describe('SqliteStore', () => {
  test('everything survives closing and reopening, and versions continue', async () => {
    const stateDir = freshDir();
    let store = openSqliteStore({ stateDir });
    const a = await store.put(pod('a'));
    await store.put({ kind: 'Namespace', namespace: '', name: 'prod', body: { metadata: { name: 'prod' } } });
    const last = await store.delete({ kind: 'Pod', namespace: 'default', name: 'a' });
    await store.put(pod('b'));
    await store.setState('pod-ips', { 'default/b': '10.200.0.9' });
    const before = { pods: await store.list('Pod'), namespaces: await store.list('Namespace') };
    await store.close();

    store = openSqliteStore({ stateDir });
    assert.deepEqual({ pods: await store.list('Pod'), namespaces: await store.list('Namespace') }, before);
    assert.deepEqual(await store.getState('pod-ips'), { 'default/b': '10.200.0.9' });
    assert.equal((await store.put(pod('b'))).result, 'unchanged');
    const again = await store.put(pod('a'));
    assert.ok(again.object.resourceVersion > last!.resourceVersion && last!.resourceVersion > a.object.resourceVersion);
    await store.close();

    // Durable settings that live in the file: WAL, and the schema at its version.
    const raw = new Database(join(stateDir, DATABASE_FILE), { readonly: true });
    try {
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
      assert.deepEqual(raw.prepare('SELECT version FROM schema_version').pluck().all(), [SCHEMA_VERSION]);
    } finally {
      raw.close();
    }
  });

  test('a put that returned survives kill -9 of the agent right after', async () => {
    const stateDir = freshDir();
    const agent = agentProcess(
      stateDir,
      `await store.put({ kind: 'Pod', namespace: 'default', name: 'web', body: { spec: { image: 'nginx' } } });
       await store.transaction(async (tx) => {
         await tx.put({ kind: 'Service', namespace: 'default', name: 'web', body: { port: 80 } });
         await tx.setState('pod-ips', { 'default/web': '10.200.0.5' });
       });`,
    );
    assert.equal(await agent.firstLine, 'ok');
    agent.child.kill('SIGKILL');
    assert.deepEqual(await agent.exited, { code: null, signal: 'SIGKILL' });
    assert.ok(existsSync(join(stateDir, `${DATABASE_FILE}-wal`)), 'the commit sits in the WAL, not yet checkpointed');

    const store = openSqliteStore({ stateDir });
    try {
      assert.deepEqual((await store.get({ kind: 'Pod', namespace: 'default', name: 'web' }))?.body, { spec: { image: 'nginx' } });
      assert.deepEqual((await store.get({ kind: 'Service', namespace: 'default', name: 'web' }))?.body, { port: 80 });
      assert.deepEqual(await store.getState('pod-ips'), { 'default/web': '10.200.0.5' });
    } finally {
      await store.close();
    }
  });

  test('a second agent on the same state directory fails with a clear error while the first runs', async () => {
    const stateDir = freshDir();
    const path = join(stateDir, DATABASE_FILE);
    const first = openSqliteStore({ stateDir });
    await first.put(pod('web'));

    // Another process, as a second agent would be.
    const second = agentProcess(stateDir, '');
    assert.equal(
      await second.firstLine,
      `error MEMBRANE_E_STORE_LOCKED ${path}: open the database: the database is locked by another process ` +
        '(is another membrane agent running with this state directory?)',
    );
    assert.equal((await second.exited).code, 3);
    // And within this process.
    assert.throws(() => openSqliteStore({ stateDir }), rejectsWith('MEMBRANE_E_STORE_LOCKED', new RegExp(`^${path}: `)));
    // The first agent is not disturbed.
    assert.equal((await first.put(pod('api'))).result, 'created');
    await first.close();

    const next = openSqliteStore({ stateDir });
    assert.equal((await next.list('Pod')).length, 2);
    await next.close();
  });

  test('the lock dies with the agent: kill -9 leaves nothing stale behind', async () => {
    const stateDir = freshDir();
    const holder = agentProcess(stateDir, '');
    assert.equal(await holder.firstLine, 'ok');
    assert.throws(() => openSqliteStore({ stateDir }), rejectsWith('MEMBRANE_E_STORE_LOCKED'));
    holder.child.kill('SIGKILL');
    await holder.exited;
    const store = openSqliteStore({ stateDir });
    await store.close();
  });

  test('the database and its WAL are private (0600) in a private directory (0700)', async () => {
    const stateDir = freshDir();
    const path = join(stateDir, DATABASE_FILE);
    const store = openSqliteStore({ stateDir });
    await store.put(pod('web'));
    assert.equal(statSync(stateDir).mode & 0o777, 0o700);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(`${path}-wal`).mode & 0o777, 0o600);
    assert.equal(existsSync(`${path}-shm`), false, 'exclusive locking keeps the WAL index in memory');
    await store.close();

    // A file someone made readable is made private again at open.
    chmodSync(path, 0o644);
    const again = openSqliteStore({ stateDir });
    assert.equal(statSync(path).mode & 0o777, 0o600);
    await again.close();
  });

  test('a state directory that cannot be created or written is named in the error', async (t) => {
    const blocker = join(freshDir() + '-file');
    writeFileSync(blocker, 'not a directory');
    assert.throws(
      () => openSqliteStore({ stateDir: join(blocker, 'state') }),
      rejectsWith('MEMBRANE_E_STORE_UNWRITABLE', new RegExp(`^${join(blocker, 'state')}: cannot create the state directory: ENOTDIR`)),
    );
    if (process.getuid?.() === 0) {
      t.skip('running as root: file permissions do not stop root (the ENOTDIR case above still ran)');
      return;
    }
    const stateDir = freshDir();
    const store = openSqliteStore({ stateDir });
    await store.close();
    chmodSync(stateDir, 0o500);
    try {
      assert.throws(() => openSqliteStore({ stateDir }), rejectsWith('MEMBRANE_E_STORE_UNWRITABLE', new RegExp(`${stateDir}`)));
    } finally {
      chmodSync(stateDir, 0o700);
    }
  });

  test('a corrupt database is reported with its path, and left in place', async () => {
    const stateDir = freshDir();
    const path = join(stateDir, DATABASE_FILE);
    const store = openSqliteStore({ stateDir });
    await store.close();
    const garbage = Buffer.alloc(8192, 'garbage!');
    writeFileSync(path, garbage);
    assert.throws(
      () => openSqliteStore({ stateDir }),
      rejectsWith('MEMBRANE_E_STORE_CORRUPT', new RegExp(`^${path}: open the database: the database is corrupt \\(file is not a database\\); move it aside`)),
    );
    assert.deepEqual(readFileSync(path), garbage);

    // Damage past the header: the integrity check at open finds it.
    const dir2 = freshDir();
    const path2 = join(dir2, DATABASE_FILE);
    const s2 = openSqliteStore({ stateDir: dir2 });
    await s2.transaction(async (tx) => {
      for (let i = 0; i < 200; i++) await tx.put(pod(`pod-${i}`, 'x'.repeat(200)));
    });
    await s2.close();
    const bytes = readFileSync(path2);
    const pageSize = bytes.readUInt16BE(16);
    bytes.fill(0x5a, 2 * pageSize + 8, 3 * pageSize); // inside page 3, keeping its header byte
    writeFileSync(path2, bytes);
    assert.throws(() => openSqliteStore({ stateDir: dir2 }), rejectsWith('MEMBRANE_E_STORE_CORRUPT', new RegExp(`^${path2}: .*corrupt`)));
  });

  test('a database from a newer schema is refused; the current one is not migrated twice', async () => {
    const stateDir = freshDir();
    const path = join(stateDir, DATABASE_FILE);
    const store = openSqliteStore({ stateDir });
    await store.put(pod('web'));
    await store.close();
    // Reopening at the current version keeps the data and records no new migration.
    const again = openSqliteStore({ stateDir });
    assert.equal((await again.list('Pod')).length, 1);
    await again.close();

    const raw = new Database(path);
    raw.prepare('INSERT INTO schema_version (version, applied_at) VALUES (?, ?)').run(SCHEMA_VERSION + 1, new Date().toISOString());
    raw.close();
    assert.throws(
      () => openSqliteStore({ stateDir }),
      rejectsWith(
        'MEMBRANE_E_STORE_SCHEMA',
        new RegExp(`^${path}: schema version ${SCHEMA_VERSION + 1} was written by a newer membrane \\(this one knows up to ${SCHEMA_VERSION}\\)`),
      ),
    );
  });
});
