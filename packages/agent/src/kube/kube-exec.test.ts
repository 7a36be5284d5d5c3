// kubectl exec's WebSocket protocol against local commands: a plain HTTP
// server hands its upgrades to handleExecUpgrade (as KubeServer will) and a
// ws client speaks v5.channel.k8s.io the way client-go does.
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { WebSocket } from 'ws';
import { CHANNEL, endExecSessions, execQuery, handleExecUpgrade, nonZeroExitStatus, type ExecStatus } from './kube-exec.js';

const V5 = 'v5.channel.k8s.io';

async function startServer(t: TestContext): Promise<{ port: number; errors: Error[] }> {
  const errors: Error[] = [];
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => {
    const q = execQuery(new URL(req.url ?? '/', 'http://127.0.0.1'));
    if ('error' in q) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      return;
    }
    handleExecUpgrade(req, socket, head, { ...q, launch: (c) => ({ file: c[0]!, args: c.slice(1) }), onError: (e) => errors.push(e) });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    assert.deepEqual(errors, [], 'no unexpected errors');
  });
  return { port: (server.address() as AddressInfo).port, errors };
}

function execUrl(port: number, command: string[], flags: { stdin?: boolean; stdout?: boolean; stderr?: boolean; tty?: boolean }): string {
  const q = new URLSearchParams();
  for (const c of command) q.append('command', c);
  q.set('container', 'c');
  for (const [k, v] of Object.entries(flags)) if (v) q.set(k, 'true');
  return `ws://127.0.0.1:${port}/api/v1/namespaces/default/pods/p/exec?${q}`;
}

interface Session {
  ws: WebSocket;
  out: () => string;
  err: () => string;
  /** Resolves when stdout has matched re. */
  waitOut: (re: RegExp) => Promise<string>;
  /** Resolves at the close frame with the status received before it. */
  done: Promise<{ status: ExecStatus | undefined; code: number; statusBeforeClose: boolean }>;
  send: (channel: number, data: string | Buffer) => void;
}

function open(url: string, protocols: string | string[] = V5): Session {
  const ws = new WebSocket(url, protocols);
  let out = '';
  let err = '';
  let status: ExecStatus | undefined;
  const waiters: { re: RegExp; resolve: (s: string) => void }[] = [];
  ws.on('message', (data: Buffer, isBinary) => {
    assert.ok(isBinary, 'every frame is binary');
    const payload = data.subarray(1).toString('utf8');
    if (data[0] === CHANNEL.stdout) out += payload;
    else if (data[0] === CHANNEL.stderr) err += payload;
    else if (data[0] === CHANNEL.status) status = JSON.parse(payload) as ExecStatus;
    else assert.fail(`unexpected channel ${data[0]}`);
    for (const w of [...waiters]) {
      if (w.re.test(out)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(out);
      }
    }
  });
  const done = new Promise<{ status: ExecStatus | undefined; code: number; statusBeforeClose: boolean }>((resolve, reject) => {
    ws.on('error', reject);
    ws.on('close', (code) => resolve({ status, code, statusBeforeClose: status !== undefined }));
  });
  return {
    ws,
    out: () => out,
    err: () => err,
    waitOut: (re) => (re.test(out) ? Promise.resolve(out) : new Promise((resolve) => waiters.push({ re, resolve }))),
    done,
    send: (channel, data) => ws.send(Buffer.concat([Buffer.from([channel]), Buffer.from(data)])),
  };
}

/** Gone, or a zombie waiting for a parent that does not reap (PID 1 of a container may not). */
function processGone(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return true;
  try {
    return /^\d+ \(.*\) Z /.test(readFileSync(stat, 'utf8'));
  } catch {
    return true;
  }
}

async function eventually(check: () => boolean, what: string, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) assert.fail(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('execQuery reads kubectl exec parameters as the apiserver does', () => {
  const u = new URL('https://x/api/v1/namespaces/default/pods/p/exec?command=sh&command=-c&command=echo+hi&container=c&stderr=true&stdout=true');
  assert.deepEqual(execQuery(u), { command: ['sh', '-c', 'echo hi'], container: 'c', stdin: false, stdout: true, stderr: true, tty: false });
  // -it: kubectl sends stderr=false; even if it did not, a tty merges stderr.
  assert.deepEqual(execQuery(new URL('https://x/e?command=sh&stdin=true&stdout=true&stderr=true&tty=true')), {
    command: ['sh'],
    stdin: true,
    stdout: true,
    stderr: false,
    tty: true,
  });
  assert.deepEqual(execQuery(new URL('https://x/e?command=ls&stdout=1&stdin=false&tty=0')), { command: ['ls'], stdin: false, stdout: true, stderr: false, tty: false });
  assert.deepEqual(execQuery(new URL('https://x/e?stdout=true')), { error: 'you must specify at least 1 command' });
  assert.deepEqual(execQuery(new URL('https://x/e?command=ls')), { error: 'you must specify at least 1 of stdin, stdout, stderr' });
});

test('stdout and stderr go to channels 1 and 2; exit 0 is Success, then a close frame 1000', async (t) => {
  const { port } = await startServer(t);
  const s = open(execUrl(port, ['sh', '-c', 'echo out; echo err >&2'], { stdout: true, stderr: true }));
  await new Promise((r) => s.ws.once('open', r));
  assert.equal(s.ws.protocol, V5);
  const r = await s.done;
  assert.equal(s.out(), 'out\n');
  assert.equal(s.err(), 'err\n');
  assert.deepEqual(r.status, { metadata: {}, status: 'Success' });
  assert.equal(r.code, 1000);
});

test('a non-zero exit is NonZeroExitCode with the code as ExitCode cause, in kubelet and containerd words', async (t) => {
  const { port } = await startServer(t);
  const r = await open(execUrl(port, ['sh', '-c', 'exit 7'], { stdout: true, stderr: true })).done;
  assert.deepEqual(r.status, {
    metadata: {},
    status: 'Failure',
    message: 'command terminated with non-zero exit code: error executing command [sh -c exit 7], exit code 7',
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: '7' }] },
  });
  assert.deepEqual(r.status, nonZeroExitStatus(['sh', '-c', 'exit 7'], 7));
  assert.equal(r.code, 1000);
  // Death by a signal is 128 + its number, as runc reports it.
  const killed = await open(execUrl(port, ['sh', '-c', 'kill -TERM $$'], { stdout: true })).done;
  assert.equal(killed.status?.details?.causes[0]?.message, '143');
});

test('a command that cannot be started is an InternalError, as kubelet reports what the runtime said', async (t) => {
  const { port } = await startServer(t);
  for (const tty of [false, true]) {
    const r = await open(execUrl(port, ['no-such-command-mbr'], { stdout: true, stdin: tty, tty })).done;
    const cause = 'error executing command in container: failed to exec in container: exec: "no-such-command-mbr": executable file not found in $PATH';
    assert.deepEqual(r.status, {
      metadata: {},
      status: 'Failure',
      message: `Internal error occurred: ${cause}`,
      reason: 'InternalError',
      details: { causes: [{ message: cause }] },
      code: 500,
    });
    assert.equal(r.code, 1000);
  }
  const abs = await open(execUrl(port, ['/no/such/file'], { stdout: true })).done;
  assert.match(abs.status?.message ?? '', /exec: "\/no\/such\/file": stat \/no\/such\/file: no such file or directory$/);
});

test('stdin reaches the command; the v5 CLOSE signal [255, 0] ends its input', async (t) => {
  const { port } = await startServer(t);
  const s = open(execUrl(port, ['cat'], { stdin: true, stdout: true, stderr: true }));
  await new Promise((r) => s.ws.once('open', r));
  s.send(CHANNEL.stdin, 'hello\n');
  await s.waitOut(/hello\n/);
  s.send(CHANNEL.stdin, 'world\n');
  await s.waitOut(/world\n/);
  s.ws.send(Buffer.from([CHANNEL.close, CHANNEL.stdin]));
  const r = await s.done;
  assert.equal(s.out(), 'hello\nworld\n');
  assert.deepEqual(r.status, { metadata: {}, status: 'Success' });
  assert.equal(r.code, 1000);
});

test('without stdin the command reads /dev/null', async (t) => {
  const { port } = await startServer(t);
  const s = open(execUrl(port, ['cat'], { stdout: true }));
  const r = await s.done;
  assert.equal(s.out(), '');
  assert.equal(r.status?.status, 'Success');
});

test('much output arrives whole and in order before the status', async (t) => {
  const { port } = await startServer(t);
  const s = open(execUrl(port, ['sh', '-c', 'seq 1 200000'], { stdout: true }));
  const r = await s.done;
  const lines = s.out().trimEnd().split('\n');
  assert.equal(lines.length, 200000);
  assert.equal(lines[199999], '200000');
  assert.ok(r.statusBeforeClose);
  assert.equal(r.status?.status, 'Success');
});

test('with a tty the command has a pty as controlling terminal, and resizes reach it', async (t) => {
  const { port } = await startServer(t);
  const tty = await open(execUrl(port, ['tty'], { stdout: true, tty: true })).done;
  assert.equal(tty.status?.status, 'Success');

  const s = open(execUrl(port, ['sh', '-c', 'tty; stty size; read x; stty size; test -t 0 && echo ctty=$(ps -o tty= -p $$)'], { stdin: true, stdout: true, tty: true }));
  // The pty's ONLCR turns \n into \r\n, as a terminal shows it.
  const first = await s.waitOut(/24 80\r\n/);
  const dev = /^(\/dev\/pts\/\d+)\r\n/.exec(first)?.[1];
  assert.ok(dev, first);
  s.send(CHANNEL.resize, JSON.stringify({ Width: 100, Height: 30 }));
  s.send(CHANNEL.stdin, '\n');
  const r = await s.done;
  assert.match(s.out(), /24 80\r\n(\r\n)?30 100\r\n/);
  // ps names the controlling terminal without /dev/: the pty is the shell's.
  assert.match(s.out(), new RegExp(`ctty=${dev.slice('/dev/'.length)}\\r\\n$`));
  assert.equal(r.status?.status, 'Success');
  assert.equal(r.code, 1000);
});

test('with a tty stderr is merged into stdout and the exit code still comes back', async (t) => {
  const { port } = await startServer(t);
  const s = open(execUrl(port, ['sh', '-c', 'echo err >&2; exit 3'], { stdout: true, tty: true }));
  const r = await s.done;
  assert.equal(s.out(), 'err\r\n');
  assert.equal(s.err(), '');
  assert.equal(r.status?.details?.causes[0]?.message, '3');
});

test('a client that goes away takes the command and its children with it', async (t) => {
  const { port } = await startServer(t);
  for (const tty of [false, true]) {
    // $$ is the command (the group leader), $! a child in its group.
    const s = open(execUrl(port, ['sh', '-c', 'sleep 60 & echo $$ $!; wait'], { stdout: true, tty }));
    const out = await s.waitOut(/^\d+ \d+\r?\n/);
    const [leader, child] = out.trim().split(' ').map(Number) as [number, number];
    assert.ok(!processGone(leader) && !processGone(child), 'running before the client goes');
    s.ws.terminate(); // TCP gone, no close frame
    await eventually(() => processGone(leader) && processGone(child), `pids ${leader} and ${child} gone (tty ${tty})`);
  }
});

test('children left behind by an exited command do not outlive the session', async (t) => {
  const { port } = await startServer(t);
  const s = open(execUrl(port, ['sh', '-c', 'sleep 60 >/dev/null 2>&1 & echo $!'], { stdout: true }));
  const r = await s.done;
  assert.equal(r.status?.status, 'Success');
  const pid = Number(s.out().trim());
  await eventually(() => processGone(pid), `background sleep ${pid} killed`);
  // One holding the output open delays the end by the grace period only.
  const started = Date.now();
  const held = await open(execUrl(port, ['sh', '-c', 'sleep 60 & echo started'], { stdout: true })).done;
  assert.equal(held.status?.status, 'Success');
  assert.ok(Date.now() - started < 4000, `ended after ${Date.now() - started} ms`);
});

test('endExecSessions (the server stopping) ends every session and its processes', async (t) => {
  const { port } = await startServer(t);
  const s = open(execUrl(port, ['sh', '-c', 'echo $$; exec sleep 60'], { stdout: true, tty: true }));
  const pid = Number((await s.waitOut(/^\d+\r\n/)).trim());
  assert.equal(endExecSessions(), 1);
  const r = await s.done;
  assert.equal(r.status?.reason, 'InternalError');
  assert.equal(r.status?.message, 'Internal error occurred: error executing command in container: the agent is stopping');
  assert.equal(r.code, 1000);
  await eventually(() => processGone(pid), `sleep ${pid} killed`);
  assert.equal(endExecSessions(), 0);
});

test('pings are answered while the command runs', async (t) => {
  const { port } = await startServer(t);
  const s = open(execUrl(port, ['sh', '-c', 'read x'], { stdin: true, stdout: true }));
  await new Promise((r) => s.ws.once('open', r));
  const pong = new Promise<Buffer>((resolve) => s.ws.once('pong', resolve));
  s.ws.ping(Buffer.from('beat'));
  assert.equal((await pong).toString(), 'beat');
  s.send(CHANNEL.stdin, '\n');
  assert.equal((await s.done).code, 1000);
});

test('v4.channel.k8s.io is the fallback; v5 is preferred when both are offered', async (t) => {
  const { port } = await startServer(t);
  const v4 = open(execUrl(port, ['true'], { stdout: true }), ['v4.channel.k8s.io']);
  await new Promise((r) => v4.ws.once('open', r));
  assert.equal(v4.ws.protocol, 'v4.channel.k8s.io');
  assert.equal((await v4.done).status?.status, 'Success');
  const both = open(execUrl(port, ['true'], { stdout: true }), ['v4.channel.k8s.io', V5]);
  await new Promise((r) => both.ws.once('open', r));
  assert.equal(both.ws.protocol, V5);
  await both.done;
});

test('an unsupported subprotocol is refused with 400 and no upgrade', async (t) => {
  const { port } = await startServer(t);
  for (const protocols of [['v3.channel.k8s.io'], ['base64.channel.k8s.io'], []]) {
    const ws = new WebSocket(execUrl(port, ['true'], { stdout: true }), protocols);
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      ws.on('open', () => reject(new Error('upgraded')));
      ws.on('error', () => {});
      ws.on('unexpected-response', (_req, r) => {
        let body = '';
        r.on('data', (c: Buffer) => (body += c.toString()));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
      });
    });
    assert.equal(res.status, 400);
    const status = JSON.parse(res.body) as { kind: string; reason: string; message: string };
    assert.equal(status.kind, 'Status');
    assert.equal(status.reason, 'BadRequest');
    assert.match(status.message, /requested protocol\(s\) are not supported: \[.*\]; supports \[v5\.channel\.k8s\.io v4\.channel\.k8s\.io\]/);
  }
});
