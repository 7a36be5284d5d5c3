#!/usr/bin/env node
// bench/agent: the whole stack, driven through `bin/membrane` as a user would,
// against a real agent of its own (own state directory, pin root, pod CIDR
// 10.203.0.0/16 and kernel names `mbrba_…`):
//   - pods_started_per_s: N pods (`sleep infinity`) in one `membrane apply`,
//     from starting the command to all pods Running;
//   - agent_rss_mb_per_100_endpoints: the agent's VmRSS with those N pods
//     minus with none, per 100 endpoints;
//   - apply_to_enforced_ms_<rules>: a client pod sends UDP datagrams to a
//     server pod on a port the server's policy denies; `membrane apply -f` of
//     a CiliumNetworkPolicy of <rules> ingress rules (filler fromCIDR rules on
//     other ports, plus the rule allowing the client's port), from starting
//     the command to the first datagram the server receives. Median of a few
//     repetitions, reverting to the denying policy (and waiting for the
//     denial) in between. Also reported: the `membrane apply` command's own
//     run time (apply_command_ms_<rules>) and the agent's `enforcedMs` from
//     `membrane apply -o json` (agent_enforced_ms_<rules>).
// `membrane down` ends every run, on failure too, and the run checks that
// nothing with its names is left.
// Usage: bench/agent [--quick]   (root; last line: JSON, see shared/spec/cli.md)
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, fstatSync, closeSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const quick = process.argv.includes('--quick');
const PODS = quick ? 20 : 100;
const RULES = [1, 100, 1000];
const REPS = quick ? 3 : 7;
const CIDR = '10.203.0.0/16';
const PREFIX = 'mbrba';
const NS = 'bench';
const UDP_PORT = 9000;
const FIRST_SOURCE_PORT = 20000;
/** The denial is in force once the server has heard nothing for this long (the client sends every ms). */
const QUIET_MS = 300;

const root = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const MEMBRANE = join(root, 'bin/membrane');
const TRAFFIC = join(root, 'bench/agent-traffic.mjs');

if (process.geteuid?.() !== 0) {
  console.error('bench/agent needs root (CAP_BPF/CAP_NET_ADMIN): run as root');
  process.exit(1);
}
for (const f of ['packages/cli/dist/main.js', 'packages/agent/dist/main.js']) {
  if (!existsSync(join(root, f))) {
    console.error(`bench/agent: ${f} is missing: run \`npm run build\``);
    process.exit(1);
  }
}

const log = (s) => process.stderr.write(`agent: ${s}\n`);
/** CLOCK_REALTIME in ms with sub-ms digits: the pods' server reads the same clock the same way. */
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(join(tmpdir(), 'mbr-bench-agent-'));
const TAG = `mbr-bench-agent-${process.pid}`;
const env = {
  ...process.env,
  MEMBRANE_STATE_DIR: join(dir, 'state'),
  MEMBRANE_PIN_ROOT: `/sys/fs/bpf/mbr-bench-agent-${process.pid}`,
  MEMBRANE_POD_CIDR: CIDR,
  MEMBRANE_SERVICE_CIDR: '10.223.0.0/24',
  MEMBRANE_NAME_PREFIX: PREFIX,
};
delete env.MEMBRANE_SOCKET;
delete env.MEMBRANE_API_PORT;

/** The `membrane` commands running now (the end of the run waits for them). */
const running = new Set();
/** Set once the run is ending (a failure or a signal): the measurements start no more commands. */
let stopping = false;

/** Runs `membrane ARGS`; resolves with its output and the times it started and ended. */
function membrane(args, { timeoutMs = 300_000, final = false } = {}) {
  if (stopping && !final) return Promise.reject(new Error('stopping'));
  const p = new Promise((resolve, reject) => {
    const t0 = now();
    const c = spawn(MEMBRANE, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('error', reject);
    c.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err, t0, t1: now() });
    });
  });
  const tracked = p.catch(() => undefined);
  running.add(tracked);
  void tracked.then(() => running.delete(tracked));
  return p;
}

async function ok(args, opts) {
  const r = await membrane(args, opts);
  if (r.code !== 0) throw new Error(`membrane ${args.join(' ')} exited ${r.code}: ${(r.err || r.out).trim()}`);
  return r;
}

// ---- what is ours in the kernel and the process table ---------------------------------

function sh(cmd, args) {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('error', () => resolve({ code: 127, out: '' }));
    c.on('close', (code) => resolve({ code, out }));
  });
}

/** Processes whose environment carries this run (pod containers get TAG; the agent inherits the state directory). */
function ourProcesses() {
  const pids = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const e = readFileSync(`/proc/${d}/environ`, 'utf8');
      if (e.includes(`MBR_BENCH_RUN=${TAG}\0`) || e.includes(`MEMBRANE_STATE_DIR=${env.MEMBRANE_STATE_DIR}\0`)) pids.push(Number(d));
    } catch {
      /* gone, or a kernel thread */
    }
  }
  return pids;
}

async function leftovers() {
  const found = { netns: [], links: [], routes: [], pins: [], pids: [] };
  for (const l of (await sh('ip', ['netns', 'list'])).out.split('\n')) if (l.startsWith(`${PREFIX}_`)) found.netns.push(l.split(' ')[0]);
  for (const l of (await sh('ip', ['-o', 'link', 'show'])).out.split('\n')) {
    const name = l.split(':')[1]?.trim().split('@')[0];
    if (name?.startsWith(`${PREFIX}_`)) found.links.push(name);
  }
  for (const l of (await sh('ip', ['route', 'show', 'table', 'all'])).out.split('\n')) if (/\b10\.203\./.test(l)) found.routes.push(l.trim());
  const pin = env.MEMBRANE_PIN_ROOT;
  if (existsSync(pin)) found.pins.push(...(readdirSync(pin).length ? readdirSync(pin).map((n) => `${pin}/${n}`) : [pin]));
  found.pids.push(...ourProcesses());
  return found;
}

const describe = (f) => [...f.netns.map((x) => `netns ${x}`), ...f.links.map((x) => `link ${x}`), ...f.routes.map((x) => `route ${x}`), ...f.pins.map((x) => `pin ${x}`), ...f.pids.map((x) => `process ${x}`)];

/** Last resort after a failed `membrane down`: remove what carries this run's names, only that. */
async function forceRemove(f) {
  for (const pid of f.pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const n of f.netns) await sh('ip', ['netns', 'delete', n]);
  for (const l of f.links) await sh('ip', ['link', 'delete', l]);
  for (const r of (await sh('ip', ['route', 'show', 'table', 'main', 'type', 'unreachable', 'proto', '77'])).out.split('\n')) {
    if (r.startsWith('10.203.')) await sh('ip', ['route', 'delete', 'unreachable', r.split(' ')[0], 'table', 'main', 'proto', '77']);
  }
  if (existsSync(env.MEMBRANE_PIN_ROOT)) rmSync(env.MEMBRANE_PIN_ROOT, { recursive: true, force: true });
}

// ---- the agent and its pods -------------------------------------------------------------

async function agentPid() {
  return JSON.parse((await ok(['status', '-o', 'json'])).out).agent.pid;
}

/** VmRSS in MB: the median of a few readings a little apart (GC makes single readings jumpy). */
async function rssMb(pid) {
  const xs = [];
  for (let i = 0; i < 5; i++) {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (!m) throw new Error(`no VmRSS for the agent (pid ${pid})`);
    xs.push(Number(m[1]) / 1024);
    await sleep(200);
  }
  return median(xs);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const envYaml = `env: [{name: MBR_BENCH_RUN, value: ${TAG}}]`;
const podYaml = (name, labels, command) =>
  `---
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${NS}, labels: {${Object.entries(labels).map(([k, v]) => `${k}: ${v}`).join(', ')}}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    command: ${JSON.stringify(command)}
    ${envYaml}
`;

async function pods() {
  return JSON.parse((await ok(['get', 'pods', '-n', NS, '-o', 'json'])).out).items;
}

/** A CiliumNetworkPolicy on the server: `rules` ingress rules, the last one for the client (UDP open or not). */
function policyYaml(rules, open) {
  let s = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: server-in
  namespace: ${NS}
spec:
  endpointSelector:
    matchLabels:
      app: server
  ingress:
`;
  for (let i = 0; i < rules - 1; i++) {
    s += `  - fromCIDR:
    - 203.0.113.${(i % 250) + 1}/32
    toPorts:
    - ports:
      - port: "${10000 + i}"
        protocol: TCP
`;
  }
  s += `  - fromEndpoints:
    - matchLabels:
        app: client
    toPorts:
    - ports:
      - port: "5001"
        protocol: TCP
`;
  if (open) s += `      - port: "${UDP_PORT}"
        protocol: UDP
`;
  return s;
}

/** The server's receive log, read as it grows. */
class ReceiveLog {
  constructor(path) {
    this.path = path;
    this.fd = undefined;
    this.offset = 0;
    this.partial = '';
  }
  /** New complete lines since the last call. */
  read() {
    if (this.fd === undefined) {
      if (!existsSync(this.path)) return [];
      this.fd = openSync(this.path, 'r');
    }
    const size = fstatSync(this.fd).size;
    if (size <= this.offset) return [];
    const buf = Buffer.alloc(size - this.offset);
    readSync(this.fd, buf, 0, buf.length, this.offset);
    this.offset = size;
    const text = this.partial + buf.toString('utf8');
    const lines = text.split('\n');
    this.partial = lines.pop();
    return lines;
  }
  close() {
    if (this.fd !== undefined) closeSync(this.fd);
  }
}

const receipts = (lines) => lines.filter((l) => l !== 'ready').map((l) => Number(l.split(' ')[0]));

/** Waits until the server has received nothing for QUIET_MS (the denying policy holds, no flow carried over). */
async function waitForDenial(recv) {
  const deadline = Date.now() + 15_000;
  let last = Date.now();
  while (Date.now() - last < QUIET_MS) {
    if (Date.now() > deadline) throw new Error('the server kept receiving the client\'s datagrams under the denying policy');
    if (receipts(recv.read()).length) last = Date.now();
    await sleep(10);
  }
}

// ---- the run ----------------------------------------------------------------------------

const figures = {};
const detail = { rules: {} };
let exitCode = 0;
let owned = false;
let finishing;

/** Ends the run once, however it ends: `membrane down`, then the check that nothing is left. */
function finish() {
  finishing ??= finishNow();
  return finishing;
}

async function finishNow() {
  stopping = true;
  if (owned) {
    // Let commands under way end, and the agent finish a change a killed command started
    // (an apply is queued behind it), so `down` removes everything it made.
    await Promise.all([...running]);
    if (existsSync(env.MEMBRANE_STATE_DIR)) await membrane(['apply', '-f', join(dir, 'ns.yaml')], { timeoutMs: 120_000, final: true }).catch(() => undefined);
    log('membrane down');
    const down = await membrane(['down'], { timeoutMs: 300_000, final: true }).catch((e) => ({ code: 1, err: String(e) }));
    if (down.code !== 0) {
      console.error(`bench/agent: membrane down failed: ${(down.err || down.out || '').trim()}`);
      exitCode = 1;
    }
    let left = await leftovers();
    // The pin root may remain as an empty directory: that is not a leak, remove it.
    if (left.pins.length === 1 && left.pins[0] === env.MEMBRANE_PIN_ROOT) {
      rmdirSync(env.MEMBRANE_PIN_ROOT);
      left.pins = [];
    }
    const leaks = describe(left);
    if (leaks.length) {
      console.error(`bench/agent: left behind after membrane down: ${leaks.join(', ')}`);
      exitCode = 1;
      await forceRemove(left);
      const still = describe(await leftovers());
      if (still.length) console.error(`bench/agent: could not remove: ${still.join(', ')}`);
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    console.error(`bench/agent: ${sig}: stopping`);
    exitCode = 1;
    finish().finally(() => process.exit(1));
  });
}

try {
  // Another run (or a crashed one) using these names or this CIDR: refuse rather than touch it.
  const before = describe(await leftovers());
  if (before.length) throw new Error(`${PREFIX}_* / ${CIDR} already in use (another bench/agent run, or one that crashed?): ${before.join(', ')}`);
  owned = true;

  const nsFile = write('ns.yaml', `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}}\n`);
  log('membrane up');
  await ok(['up', '--api-port', '0'], { timeoutMs: 180_000 });
  const pid = await agentPid();
  await ok(['apply', '-f', nsFile]);
  await sleep(1000);
  const rssIdle = await rssMb(pid);

  // Pods started per second: N pods in one apply; the clock stops when all are Running.
  let manifest = '';
  for (let i = 0; i < PODS; i++) manifest += podYaml(`idle-${i}`, { app: 'idle' }, ['sleep', 'infinity']);
  const podsFile = write('pods.yaml', manifest);
  log(`${PODS} pods in one apply`);
  const a = await ok(['apply', '-f', podsFile]);
  let allRunning = a.t1;
  for (;;) {
    const items = (await pods()).filter((p) => p.metadata.name.startsWith('idle-'));
    const notRunning = items.filter((p) => p.status.phase !== 'Running');
    if (items.length === PODS && notRunning.length === 0) break;
    if (now() - a.t0 > 120_000) throw new Error(`${notRunning.length} of ${PODS} pods not Running after 120 s (${notRunning.slice(0, 3).map((p) => `${p.metadata.name}: ${p.status.phase} ${p.status.reason ?? ''}`).join('; ')})`);
    await sleep(50);
    allRunning = now();
  }
  const startSeconds = (allRunning - a.t0) / 1000;
  figures.pods_started_per_s = +(PODS / startSeconds).toFixed(2);
  figures.pods_apply_ms = +(allRunning - a.t0).toFixed(1);
  log(`${PODS} pods Running ${figures.pods_apply_ms} ms after the apply started`);

  await sleep(1000);
  const rssPods = await rssMb(pid);
  figures.agent_rss_mb_idle = +rssIdle.toFixed(1);
  figures.agent_rss_mb_with_pods = +rssPods.toFixed(1);
  figures.agent_rss_mb_per_100_endpoints = +(((rssPods - rssIdle) / PODS) * 100).toFixed(2);
  log(`agent RSS ${rssIdle.toFixed(1)} MB with no pods, ${rssPods.toFixed(1)} MB with ${PODS}`);

  // Policy change to enforcement through the whole stack.
  const recvPath = join(dir, 'server-receives.log');
  const recv = new ReceiveLog(recvPath);
  await ok(['apply', '-f', write('policy-initial.yaml', policyYaml(1, false))]);
  await ok(['apply', '-f', write('server.yaml', podYaml('server', { app: 'server' }, [process.execPath, TRAFFIC, 'server', String(UDP_PORT), recvPath]))]);
  const server = (await pods()).find((p) => p.metadata.name === 'server');
  if (!server?.status.podIP) throw new Error('the server pod has no IP');
  for (let t = Date.now(); !recv.read().includes('ready'); await sleep(20)) {
    if (Date.now() - t > 10_000) throw new Error(`the server pod did not start listening (see ${env.MEMBRANE_STATE_DIR}/logs)`);
  }
  await ok(['apply', '-f', write('client.yaml', podYaml('client', { app: 'client' }, [process.execPath, TRAFFIC, 'client', server.status.podIP, String(UDP_PORT), String(FIRST_SOURCE_PORT)]))]);

  for (const n of RULES) {
    const closedFile = write(`policy-${n}-closed.yaml`, policyYaml(n, false));
    const openFile = write(`policy-${n}-open.yaml`, policyYaml(n, true));
    const samples = [];
    const agentMs = [];
    const commandMs = [];
    for (let rep = 0; rep < REPS; rep++) {
      await ok(['apply', '-f', closedFile]);
      await waitForDenial(recv);
      const child = membrane(['apply', '-f', openFile, '-o', 'json']);
      let first;
      let result;
      child.then((r) => (result = r), (e) => (result = { code: -1, err: String(e), out: '', t0: NaN, t1: NaN }));
      const deadline = Date.now() + 30_000;
      while (first === undefined || result === undefined) {
        if (first === undefined) first = receipts(recv.read())[0];
        if (Date.now() > deadline) throw new Error(`no datagram reached the server within 30 s of applying ${n} rules`);
        await sleep(first === undefined ? 2 : 10);
      }
      if (result.code !== 0) throw new Error(`membrane apply ${openFile} exited ${result.code}: ${result.err.trim()}`);
      if (first < result.t0) throw new Error(`a datagram got through before the apply started (${(result.t0 - first).toFixed(3)} ms): the denial did not hold`);
      samples.push(first - result.t0);
      commandMs.push(result.t1 - result.t0);
      agentMs.push(JSON.parse(result.out).enforcedMs);
    }
    const ms = median(samples);
    figures[`apply_to_enforced_ms_${n}`] = +ms.toFixed(2);
    figures[`apply_command_ms_${n}`] = +median(commandMs).toFixed(2);
    figures[`agent_enforced_ms_${n}`] = +median(agentMs).toFixed(2);
    detail.rules[n] = { min: Math.min(...samples), max: Math.max(...samples) };
    log(`${n} rule(s): first datagram ${ms.toFixed(2)} ms after the apply started (median of ${REPS}; min ${Math.min(...samples).toFixed(2)}, max ${Math.max(...samples).toFixed(2)}); command ${figures[`apply_command_ms_${n}`]} ms, agent ${figures[`agent_enforced_ms_${n}`]} ms`);
  }
  recv.close();
} catch (e) {
  if (!stopping) console.error(`bench/agent: ${e instanceof Error ? e.message : String(e)}`);
  exitCode = 1;
} finally {
  await finish();
}

function write(name, text) {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

if (exitCode === 0) {
  const rows = [
    [`pods started / s (${PODS} pods, one apply)`, figures.pods_started_per_s],
    ['agent RSS, no pods (MB)', figures.agent_rss_mb_idle],
    [`agent RSS, ${PODS} pods (MB)`, figures.agent_rss_mb_with_pods],
    ['agent RSS per 100 endpoints (MB)', figures.agent_rss_mb_per_100_endpoints],
  ];
  for (const r of rows) console.log(`${r[0].padEnd(40)}${r[1]}`);
  console.log(`${'RULES'.padEnd(8)}${'APPLY TO ENFORCED (ms)'.padEnd(26)}${'APPLY COMMAND (ms)'.padEnd(22)}AGENT enforcedMs`);
  for (const n of RULES) console.log(`${String(n).padEnd(8)}${String(figures[`apply_to_enforced_ms_${n}`]).padEnd(26)}${String(figures[`apply_command_ms_${n}`]).padEnd(22)}${figures[`agent_enforced_ms_${n}`]}`);
  console.log(
    JSON.stringify({
      bench: 'agent',
      figures,
      config: {
        pods: PODS,
        endpoints_during_policy_changes: PODS + 2,
        reps: REPS,
        rules: 'ingress rules of one CiliumNetworkPolicy spec (N-1 fromCIDR fillers + the allowing rule), as bench/datapath',
        clock: 'CLOCK_REALTIME (performance.timeOrigin + performance.now()) in bench and server; resolution ~1 ms (the client sends every ms)',
        rss: 'agent VmRSS (/proc/PID/status), median of 5 readings 200 ms apart, 1 s after the change; no GC forced, so it includes garbage not yet collected',
        pod_cidr: CIDR,
        quick,
        node: process.version,
      },
    }),
  );
}
process.exit(exitCode);
