// The agent restarts without dropping a packet ("The agent", done-when 2).
// Driven through the CLI only. Real workloads (small Node scripts, run as the
// pods' commands) keep traffic flowing while the agent is killed with
// SIGKILL, stays down for a second, and is started again:
//   - an allowed client streams to the server: UDP on one long-lived socket
//     (stream A: conntrack keeps it), UDP from a fresh socket each time
//     (stream F: every datagram is a new flow, judged by the policy map),
//     one long-lived TCP connection (stream S) and a new TCP connection
//     every 100 ms (stream C), each with sequence numbers;
//   - a denied client probes the same port: UDP every 2 ms (stream D) and a
//     TCP connect every 100 ms (stream X).
// Then: not one sequence of the allowed streams is missing, no TCP segment
// was retransmitted and the stream was never reset, the server got nothing
// at all from the denied client, the pods kept their IPs and processes
// (restart count 0) and the endpoints are restored. `membrane down` leaves
// nothing behind. Own pod CIDR (10.202/16), name prefix, state dir and pin root.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { requireRoot } from '@membrane/testkit';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const membrane = join(root, 'bin/membrane');
const CIDR = '10.202.0.0/16';
const PORT = 7000;
const NS = 'restart';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The server: records every datagram, connection and TCP line it receives, per source address. */
const SERVER = String.raw`
import dgram from 'node:dgram';
import net from 'node:net';
import fs from 'node:fs';
const [dir, portS] = process.argv.slice(2);
const port = Number(portS);
const udp = new Map();
const conns = [];
const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
sock.on('message', (msg, ri) => {
  const now = Date.now();
  const [stream, seq] = msg.toString().split(' ');
  const key = ri.address + ' ' + stream;
  let e = udp.get(key);
  if (!e) udp.set(key, (e = { seqs: [], times: [] }));
  e.seqs.push(Number(seq));
  e.times.push(now);
});
sock.bind(port, '0.0.0.0');
const srv = net.createServer((c) => {
  const conn = { ip: String(c.remoteAddress).replace(/^::ffff:/, ''), port: c.remotePort, acceptedAt: Date.now(), stream: null, seqs: 0, first: null, last: null, gaps: [], times: [], errors: [], closed: false };
  conns.push(conn);
  c.setNoDelay(true);
  let buf = '';
  c.on('data', (d) => {
    const now = Date.now();
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const [stream, seqS] = buf.slice(0, i).split(' ');
      buf = buf.slice(i + 1);
      const seq = Number(seqS);
      conn.stream ??= stream;
      if (conn.last !== null && seq !== conn.last + 1) conn.gaps.push([conn.last, seq]);
      conn.first ??= seq;
      conn.last = seq;
      conn.seqs++;
      if (stream === 'S') conn.times.push(now);
    }
  });
  c.on('error', (e) => conn.errors.push(e.code ?? String(e)));
  c.on('close', () => (conn.closed = true));
});
srv.listen(port, '0.0.0.0', () => console.log('server listening on ' + port + ', pid ' + process.pid));
fs.writeFileSync(dir + '/pid-server', String(process.pid));
let gen = '';
setInterval(() => {
  let want = '';
  try { want = fs.readFileSync(dir + '/dump', 'utf8'); } catch { return; }
  if (want === gen) return;
  gen = want;
  const out = { gen, pid: process.pid, udp: Object.fromEntries(udp), conns };
  fs.writeFileSync(dir + '/result-server.json.tmp', JSON.stringify(out));
  fs.renameSync(dir + '/result-server.json.tmp', dir + '/result-server.json');
}, 20);
`;

/** A client: 'allowed' streams A, F, S and C; 'denied' probes with D and X. Stops when DIR/stop appears. */
const CLIENT = String.raw`
import dgram from 'node:dgram';
import net from 'node:net';
import fs from 'node:fs';
const [dir, mode, host, portS] = process.argv.slice(2);
const port = Number(portS);
const name = process.env.POD_NAME;
fs.writeFileSync(dir + '/pid-' + name, String(process.pid));
const r = { mode, pid: process.pid, startedAt: Date.now(), udp: {}, tcpStream: null, connects: { attempts: 0, ok: 0, failed: 0, errors: {}, maxLatencyMs: 0, okSeqs: [] } };
let pending = 0;
const timers = [];
function udpStream(stream, fresh) {
  const s = (r.udp[stream] = { next: 0, sent: 0, lastSent: -1, errors: [], sendTimes: [] });
  const shared = fresh ? null : dgram.createSocket('udp4');
  return () => {
    const seq = s.next++;
    const sock = shared ?? dgram.createSocket('udp4');
    pending++;
    sock.send(stream + ' ' + seq, port, host, (err) => {
      pending--;
      if (err) s.errors.push([seq, err.code ?? String(err)]);
      else {
        s.sent++;
        s.lastSent = Math.max(s.lastSent, seq);
        s.sendTimes.push(Date.now());
      }
      if (fresh) sock.close();
    });
  };
}
function connectLoop(stream, timeoutMs) {
  const c = r.connects;
  let seq = 0;
  return () => {
    const n = seq++;
    const t0 = Date.now();
    c.attempts++;
    pending++;
    let done = false;
    const finish = (ok, why) => {
      if (done) return;
      done = true;
      pending--;
      if (ok) { c.ok++; c.okSeqs.push(n); c.maxLatencyMs = Math.max(c.maxLatencyMs, Date.now() - t0); }
      else { c.failed++; c.errors[why] = (c.errors[why] ?? 0) + 1; }
    };
    const sock = net.connect({ port, host });
    const timer = setTimeout(() => { finish(false, 'timeout'); sock.destroy(); }, timeoutMs);
    sock.on('connect', () => { clearTimeout(timer); finish(true); sock.end(stream + ' ' + n + '\n'); });
    sock.on('error', (e) => { clearTimeout(timer); finish(false, e.code ?? String(e)); });
  };
}
if (mode === 'allowed') {
  const a = udpStream('A', false);
  const f = udpStream('F', true);
  const t = (r.tcpStream = { connected: false, next: 0, lastWritten: -1, errors: [], closed: false });
  const s = net.connect({ port, host });
  s.setNoDelay(true);
  s.on('connect', () => (t.connected = true));
  s.on('error', (e) => t.errors.push(e.code ?? String(e)));
  s.on('close', () => (t.closed = true));
  timers.push(setInterval(() => {
    a();
    f();
    if (t.connected && !t.closed) {
      const seq = t.next++;
      s.write('S ' + seq + '\n');
      t.lastWritten = seq;
    }
  }, 2));
  timers.push(setInterval(connectLoop('C', 3000), 100));
} else {
  const d = udpStream('D', false);
  timers.push(setInterval(d, 2));
  // Probes that are dropped never connect: give up after 100 ms and try again.
  timers.push(setInterval(connectLoop('X', 100), 100));
}
const poll = setInterval(async () => {
  if (!fs.existsSync(dir + '/stop')) return;
  clearInterval(poll);
  r.stoppedAt = Date.now();
  for (const t of timers) clearInterval(t);
  const deadline = Date.now() + 4000;
  while (pending > 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
  r.pendingAtEnd = pending;
  fs.writeFileSync(dir + '/result-' + name + '.json.tmp', JSON.stringify(r));
  fs.renameSync(dir + '/result-' + name + '.json.tmp', dir + '/result-' + name + '.json');
  console.log('stopped: result written');
  setInterval(() => {}, 1 << 30);
}, 10);
console.log(name + ' (' + mode + ') sending to ' + host + ':' + port + ', pid ' + process.pid);
`;

interface UdpRecv {
  seqs: number[];
  times: number[];
}
interface Conn {
  ip: string;
  port: number;
  stream: string | null;
  seqs: number;
  first: number | null;
  last: number | null;
  gaps: [number, number][];
  times: number[];
  errors: string[];
  closed: boolean;
}
interface ServerResult {
  gen: string;
  pid: number;
  udp: Record<string, UdpRecv>;
  conns: Conn[];
}
interface UdpSent {
  next: number;
  sent: number;
  lastSent: number;
  errors: [number, string][];
  sendTimes: number[];
}
interface ClientResult {
  mode: string;
  pid: number;
  udp: Record<string, UdpSent>;
  tcpStream: { connected: boolean; next: number; lastWritten: number; errors: string[]; closed: boolean } | null;
  connects: { attempts: number; ok: number; failed: number; errors: Record<string, number>; maxLatencyMs: number; okSeqs: number[] };
  pendingAtEnd: number;
}
interface PodJson {
  metadata: { name: string };
  status: { phase: string; podIP: string; containerStatuses: { name: string; restartCount: number; state: { running?: { startedAt: string } } }[] };
}

test(
  'agent restart (kill -9, up): no allowed packet dropped, no denied packet delivered, pods and endpoints adopted',
  { timeout: 240_000 },
  async (t) => {
    if (!requireRoot(t, 'the agent loads BPF programs and makes network namespaces')) return;
    const dir = mkdtempSync(join(tmpdir(), 'mbr-restart-'));
    const tag = (process.pid % 1296).toString(36);
    const prefix = `mbrr${tag}`; // links <prefix>_e<id>, netns <prefix>_pod_<id>
    const pinRoot = `/sys/fs/bpf/mbr-test-restart-${process.pid}`;
    const env = { ...process.env, MEMBRANE_STATE_DIR: join(dir, 'state'), MEMBRANE_PIN_ROOT: pinRoot, MEMBRANE_POD_CIDR: CIDR, MEMBRANE_SERVICE_CIDR: '10.212.0.0/24', MEMBRANE_NAME_PREFIX: prefix };
    const run = (...args: string[]) => spawnSync(membrane, args, { env, encoding: 'utf8', timeout: 120_000 });
    const ok = (...args: string[]) => {
      const r = run(...args);
      assert.equal(r.status, 0, `membrane ${args.join(' ')} exited ${r.status}: ${r.stderr}${r.stdout}`);
      return r.stdout;
    };
    const agentPids = new Set<number>();

    /** What this run may have left in the kernel and the process table. */
    const leftovers = (): string[] => {
      const out: string[] = [];
      const netns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith(`${prefix}_`));
      if (netns.length) out.push(`netns: ${netns.join(', ')}`);
      const links = spawnSync('ip', ['-o', 'link'], { encoding: 'utf8' })
        .stdout.split('\n')
        .map((l) => l.split(': ')[1]?.split('@')[0] ?? '')
        .filter((n) => n.startsWith(`${prefix}_`));
      if (links.length) out.push(`links: ${links.join(', ')}`);
      const routes = spawnSync('ip', ['route', 'show', 'table', 'main'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes('10.202.') || l.includes('10.212.0.'));
      if (routes.length) out.push(`routes: ${routes.join('; ')}`);
      if (existsSync(pinRoot)) out.push(`pins: ${pinRoot} [${readdirSync(pinRoot).join(', ')}]`);
      const procs = workloadPids();
      if (procs.length) out.push(`processes running from the temp dir: ${procs.join(', ')}`);
      const agents = [...agentPids].filter(alive);
      if (agents.length) out.push(`agent processes: ${agents.join(', ')}`);
      return out;
    };
    /** The processes seen in our pods' namespaces (noted while they exist: they outlive a deleted namespace). */
    const workloads = new Set<number>();
    const noteWorkloads = (): void => {
      for (const n of spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n')) {
        const name = n.split(' ')[0]!;
        if (!name.startsWith(`${prefix}_pod_`)) continue;
        for (const p of spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)) workloads.add(Number(p));
      }
    };
    const workloadPids = (): number[] => {
      noteWorkloads();
      return [...workloads].filter((p) => p !== process.pid && alive(p));
    };

    let passed = false;
    t.after(async () => {
      // `down` removes everything when the agent runs; if it does not (killed and not started
      // again), start it so that it adopts what it left, then take it all down.
      noteWorkloads();
      const d = run('down');
      if (/not running/.test(d.stdout) && leftovers().length > 0) {
        run('up', '--api-port', '0');
        run('down');
      }
      // Last resort, only for what is ours: our workload processes by PID, our names, our routes.
      const left = leftovers();
      if (left.length) {
        t.diagnostic(`LEAK after down: ${left.join(' | ')}`);
        for (const p of [...workloadPids(), ...[...agentPids].filter(alive)]) {
          try {
            process.kill(p, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        for (const n of spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n')) {
          const name = n.split(' ')[0]!;
          if (name.startsWith(`${prefix}_`)) spawnSync('ip', ['netns', 'delete', name]);
        }
        for (const l of spawnSync('ip', ['-o', 'link'], { encoding: 'utf8' }).stdout.split('\n')) {
          const name = l.split(': ')[1]?.split('@')[0] ?? '';
          if (name.startsWith(`${prefix}_`)) spawnSync('ip', ['link', 'delete', name]);
        }
        spawnSync('ip', ['route', 'delete', 'unreachable', CIDR, 'proto', '77']);
        if (existsSync(pinRoot)) rmSync(pinRoot, { recursive: true, force: true });
      }
      if (!passed) {
        const log = join(dir, 'state', 'agent.log');
        if (existsSync(log)) for (const l of readFileSync(log, 'utf8').split('\n').filter(Boolean).slice(-40)) t.diagnostic(`agent log: ${l}`);
      }
      rmSync(dir, { recursive: true, force: true });
    });

    assert.match(ok('up', '--api-port', '0'), /membrane is up/);
    agentPids.add(agentPid());

    // ---- workloads --------------------------------------------------------------------
    writeFileSync(join(dir, 'server.mjs'), SERVER);
    writeFileSync(join(dir, 'client.mjs'), CLIENT);
    const node = process.execPath;
    writeFileSync(
      join(dir, 'server.yaml'),
      `apiVersion: v1
kind: Namespace
metadata: {name: ${NS}}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: only-allowed, namespace: ${NS}}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
  - fromEndpoints: [{matchLabels: {role: allowed}}]
    toPorts: [{ports: [{port: "${PORT}", protocol: UDP}, {port: "${PORT}", protocol: TCP}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: ${NS}, labels: {app: server}}
spec:
  containers:
  - name: server
    command: [${node}, ${join(dir, 'server.mjs')}, ${dir}, "${PORT}"]
    readinessProbe: {tcpSocket: {port: ${PORT}}, periodSeconds: 1}
`,
    );
    assert.match(ok('apply', '-f', join(dir, 'server.yaml')), /pod\/server created/);
    ok('wait', '--for=condition=Ready', 'pod/server', '-n', NS, '--timeout', '30s');
    const serverIP = pods().get('server')!.status.podIP;
    writeFileSync(
      join(dir, 'clients.yaml'),
      ['allowed', 'denied']
        .map(
          (role) => `apiVersion: v1
kind: Pod
metadata: {name: ${role}, namespace: ${NS}, labels: {role: ${role}}}
spec:
  containers:
  - name: client
    command: [${node}, ${join(dir, 'client.mjs')}, ${dir}, ${role}, ${serverIP}, "${PORT}"]
`,
        )
        .join('---\n'),
    );
    assert.match(ok('apply', '-f', join(dir, 'clients.yaml')), /pod\/allowed created/);
    for (const p of ['allowed', 'denied']) ok('wait', '--for=condition=Ready', `pod/${p}`, '-n', NS, '--timeout', '30s');

    const before = pods();
    const allowedIP = before.get('allowed')!.status.podIP;
    const deniedIP = before.get('denied')!.status.podIP;
    const endpointsBefore = endpointList();
    const server = endpointsBefore.find((e) => e.pod === 'server')!;
    assert.equal(server.policyEnforcement.ingress, true, 'the server endpoint enforces ingress policy');
    const kernelBefore = kernelState(server.hostInterface, server.id);

    // Traffic flows: the allowed streams arrive, the denied client gets nothing through.
    let dumps = 0;
    const dump = async (until: (s: ServerResult) => boolean = () => true, ms = 5000): Promise<ServerResult> => {
      const deadline = Date.now() + ms;
      let last: ServerResult | undefined;
      for (;;) {
        const gen = String(++dumps);
        writeFileSync(join(dir, 'dump.tmp'), gen);
        renameSync(join(dir, 'dump.tmp'), join(dir, 'dump'));
        for (let i = 0; i < 100; i++) {
          await sleep(20);
          try {
            const s = JSON.parse(readFileSync(join(dir, 'result-server.json'), 'utf8')) as ServerResult;
            if (s.gen === gen) {
              last = s;
              break;
            }
          } catch {
            /* not written yet */
          }
        }
        if (last && until(last)) return last;
        if (Date.now() > deadline) {
          assert.ok(last, 'the server never wrote its results');
          return last;
        }
        await sleep(100);
      }
    };
    const flowing = await dump((s) => ['A', 'F'].every((k) => (s.udp[`${allowedIP} ${k}`]?.seqs.length ?? 0) > 100) && s.conns.some((c) => c.ip === allowedIP && c.stream === 'S' && c.seqs > 100), 10_000);
    for (const k of ['A', 'F']) assert.ok((flowing.udp[`${allowedIP} ${k}`]?.seqs.length ?? 0) > 100, `allowed stream ${k} flows before the restart`);
    assert.ok(flowing.conns.some((c) => c.ip === allowedIP && c.stream === 'S'), 'the allowed TCP stream flows before the restart');
    await sleep(500);

    // ---- kill -9 the agent, keep it down ~1 s, start it again ---------------------------
    const pid = agentPid();
    const tKill = Date.now();
    process.kill(pid, 'SIGKILL');
    while (alive(pid) && Date.now() - tKill < 5000) await sleep(5);
    assert.ok(!alive(pid), `the agent (pid ${pid}) did not die`);
    const tDead = Date.now();
    assert.equal(run('status').status, 1, 'status says the agent is down');
    await sleep(Math.max(0, 1000 - (Date.now() - tKill)));
    const tUp0 = Date.now();
    const upOut = ok('up', '--api-port', '0');
    const tUp = Date.now();
    assert.match(upOut, /membrane is up/);
    const newPid = agentPid();
    agentPids.add(newPid);
    const agentLog = readFileSync(join(dir, 'state', 'agent.log'), 'utf8').split('\n');
    const restartLog = agentLog.slice(agentLog.map((l) => / starting state directory$/.test(l)).lastIndexOf(true)).filter(Boolean);
    const logTime = (re: RegExp) => Date.parse(restartLog.find((l) => re.test(l))?.split(' ')[0] ?? '');
    const tDatapath = logTime(/ starting BPF datapath$/);
    const tWorkloads = logTime(/ starting workloads$/);
    const tApi = logTime(/ starting API$/);
    assert.notEqual(newPid, pid);
    await sleep(1000);

    // ---- the control plane came back as it was ----------------------------------------
    const after = pods();
    for (const [name, p] of before) {
      const q = after.get(name);
      assert.ok(q, `pod ${name} is still there after the restart`);
      assert.equal(q.status.podIP, p.status.podIP, `pod ${name} keeps its IP`);
      assert.equal(q.status.phase, 'Running', `pod ${name} is running`);
      for (const c of q.status.containerStatuses) assert.equal(c.restartCount, 0, `pod ${name} container ${c.name} restart count`);
      assert.deepEqual(
        q.status.containerStatuses.map((c) => c.state.running?.startedAt),
        p.status.containerStatuses.map((c) => c.state.running?.startedAt),
        `pod ${name}: its containers were adopted, not started again`,
      );
    }
    assert.deepEqual(endpointList(), endpointsBefore, 'endpoint list after the restart equals the one before');
    const kernelAfter = kernelState(server.hostInterface, server.id);
    for (const p of ['server', 'allowed', 'denied']) {
      const pidFile = Number(readFileSync(join(dir, `pid-${p}`), 'utf8'));
      assert.ok(alive(pidFile), `the ${p} workload (pid ${pidFile}) survived the restart`);
    }

    // ---- stop the clients, collect what was sent and received ---------------------------
    writeFileSync(join(dir, 'stop'), '');
    const results = new Map<string, ClientResult>();
    for (const name of ['allowed', 'denied']) {
      const file = join(dir, `result-${name}.json`);
      const deadline = Date.now() + 10_000;
      while (!existsSync(file) && Date.now() < deadline) await sleep(20);
      results.set(name, JSON.parse(readFileSync(file, 'utf8')) as ClientResult);
    }
    const allowed = results.get('allowed')!;
    const denied = results.get('denied')!;
    assert.equal(allowed.pendingAtEnd, 0, 'every send of the allowed client completed');
    const complete = (s: ServerResult) =>
      ['A', 'F'].every((k) => new Set(s.udp[`${allowedIP} ${k}`]?.seqs ?? []).size >= allowed.udp[k]!.sent) &&
      s.conns.some((c) => c.ip === allowedIP && c.stream === 'S' && c.last === allowed.tcpStream!.lastWritten);
    await sleep(100);
    const got = await dump(complete, 3000);
    const snmp = { server: snmpOf('server'), allowed: snmpOf('allowed') };

    // Figures first, so that a failure below still shows them.
    const inWindow = (ts: number[], a: number, b: number) => ts.filter((x) => x >= a && x <= b).length;
    const recvA = got.udp[`${allowedIP} A`] ?? { seqs: [], times: [] };
    const recvF = got.udp[`${allowedIP} F`] ?? { seqs: [], times: [] };
    const sConn = got.conns.filter((c) => c.ip === allowedIP && c.stream === 'S');
    const maxGap = (ts: number[], a: number, b: number) => {
      const w = ts.filter((x) => x >= a - 50 && x <= b + 50).sort((x, y) => x - y);
      let m = 0;
      for (let i = 1; i < w.length; i++) m = Math.max(m, w[i]! - w[i - 1]!);
      return m;
    };
    const downtime = tUp - tKill;
    const figures = {
      agentDowntimeMs: downtime,
      killToDeadMs: tDead - tKill,
      upCommandMs: tUp - tUp0,
      datapathLoadAndPodNetworkMs: tWorkloads - tDatapath,
      adoptReattachAndPolicySwapMs: tApi - tWorkloads,
      allowedUdpDatagramsDuringDowntime: inWindow(recvA.times, tKill, tUp) + inWindow(recvF.times, tKill, tUp),
      allowedNewUdpFlowsDuringDowntime: inWindow(recvF.times, tKill, tUp),
      allowedTcpSegmentsDuringDowntime: sConn.reduce((n, c) => n + inWindow(c.times, tKill, tUp), 0),
      deniedUdpProbesDuringDowntime: inWindow(denied.udp['D']!.sendTimes, tKill, tUp),
      maxArrivalGapMsAroundRestart: { A: maxGap(recvA.times, tKill, tUp), F: maxGap(recvF.times, tKill, tUp), S: maxGap(sConn[0]?.times ?? [], tKill, tUp) },
      sent: { A: allowed.udp['A']!.sent, F: allowed.udp['F']!.sent, S: allowed.tcpStream!.lastWritten + 1, C: allowed.connects.attempts, D: denied.udp['D']!.sent, X: denied.connects.attempts },
      received: { A: new Set(recvA.seqs).size, F: new Set(recvF.seqs).size, S: sConn[0]?.seqs ?? 0, C: got.conns.filter((c) => c.ip === allowedIP && c.stream === 'C').length },
      tcpRetransSegs: { server: snmp.server.Tcp['RetransSegs'], allowed: snmp.allowed.Tcp['RetransSegs'] },
      serverUdpErrors: { InErrors: snmp.server.Udp['InErrors'], RcvbufErrors: snmp.server.Udp['RcvbufErrors'] },
      connectMaxLatencyMs: allowed.connects.maxLatencyMs,
      kernel: { before: kernelBefore, after: kernelAfter },
    };
    t.diagnostic(`agent down for ${downtime} ms (kill → up returned; the agent died ${figures.killToDeadMs} ms after SIGKILL, up took ${figures.upCommandMs} ms)`);
    t.diagnostic(
      `during the downtime: ${figures.allowedUdpDatagramsDuringDowntime} allowed UDP datagrams delivered (${figures.allowedNewUdpFlowsDuringDowntime} of them new flows), ` +
        `${figures.allowedTcpSegmentsDuringDowntime} TCP stream lines, ${figures.deniedUdpProbesDuringDowntime} denied UDP probes sent (none delivered)`,
    );
    t.diagnostic(`sent/received per stream: ${JSON.stringify(figures.sent)} / ${JSON.stringify(figures.received)}; max arrival gap around the restart (ms) ${JSON.stringify(figures.maxArrivalGapMsAroundRestart)}`);
    t.diagnostic(`TCP retransmitted segments ${JSON.stringify(figures.tcpRetransSegs)}, server UDP errors ${JSON.stringify(figures.serverUdpErrors)}, slowest allowed connect ${figures.connectMaxLatencyMs} ms`);
    t.diagnostic(
      `restart: datapath load + pod network ${figures.datapathLoadAndPodNetworkMs} ms, adopt + re-attach + policy swap ${figures.adoptReattachAndPolicySwapMs} ms; ` +
        `server veth programs ${kernelBefore.progs.join('/')} → ${kernelAfter.progs.join('/')}, server policy map ${kernelBefore.policyMap} → ${kernelAfter.policyMap}`,
    );
    for (const l of restartLog) t.diagnostic(`restarted agent: ${l}`);

    // ---- not one allowed packet lost --------------------------------------------------------
    for (const k of ['A', 'F'] as const) {
      const sent = allowed.udp[k]!;
      assert.deepEqual(sent.errors, [], `stream ${k}: send errors`);
      assert.equal(sent.sent, sent.lastSent + 1, `stream ${k}: every datagram from 0 to the last was sent`);
      assert.ok(sent.sent > 500, `stream ${k}: ${sent.sent} datagrams is too few for the test to mean anything`);
      const have = new Set((k === 'A' ? recvA : recvF).seqs);
      const missing: number[] = [];
      for (let i = 0; i <= sent.lastSent; i++) if (!have.has(i)) missing.push(i);
      assert.deepEqual(missing.slice(0, 50), [], `stream ${k}: ${missing.length} of ${sent.sent} datagrams never arrived (server UDP errors ${JSON.stringify(figures.serverUdpErrors)})`);
    }
    const ts = allowed.tcpStream!;
    assert.deepEqual(ts.errors, [], 'the TCP stream saw no error (no reset)');
    assert.equal(ts.closed, false, 'the TCP stream was never closed');
    assert.equal(sConn.length, 1, 'one TCP stream connection, never re-established');
    assert.deepEqual(sConn[0]!.errors, [], 'the server saw no error on the TCP stream');
    assert.equal(sConn[0]!.closed, false);
    assert.deepEqual(sConn[0]!.gaps, []);
    assert.equal(sConn[0]!.first, 0);
    assert.equal(sConn[0]!.last, ts.lastWritten, 'every line of the TCP stream arrived');
    assert.equal(allowed.connects.failed, 0, `allowed TCP connects failed: ${JSON.stringify(allowed.connects.errors)}`);
    assert.ok(allowed.connects.ok > 20);
    const cSeqs = new Set(got.conns.filter((c) => c.ip === allowedIP && c.stream === 'C').map((c) => c.first));
    assert.deepEqual(allowed.connects.okSeqs.filter((s) => !cSeqs.has(s)), [], 'every allowed connection delivered its line');
    assert.equal(snmp.allowed.Tcp['RetransSegs'], 0, 'no TCP segment of the allowed client was retransmitted');
    assert.equal(snmp.server.Tcp['RetransSegs'], 0, 'no TCP segment of the server was retransmitted');

    // ---- nothing from the denied client, ever ---------------------------------------------
    assert.ok(denied.udp['D']!.sent > 500, 'the denied client kept probing');
    assert.ok(figures.deniedUdpProbesDuringDowntime > 50, 'the denied client probed while the agent was down');
    assert.ok(figures.allowedUdpDatagramsDuringDowntime > 50, 'the allowed client streamed while the agent was down');
    assert.ok(denied.connects.attempts > 20);
    assert.deepEqual(
      Object.keys(got.udp).filter((k) => k.startsWith(`${deniedIP} `)),
      [],
      'the server received no datagram from the denied client',
    );
    assert.deepEqual(got.conns.filter((c) => c.ip === deniedIP), [], 'the server accepted no connection from the denied client');
    assert.equal(denied.connects.ok, 0, 'no connect of the denied client succeeded');
    assert.deepEqual(Object.keys(denied.connects.errors), ['timeout'], 'denied connects time out (dropped), never refused');
    assert.deepEqual(
      Object.keys(got.udp).filter((k) => !k.startsWith(`${allowedIP} `)),
      [],
      'the server received datagrams from nobody else',
    );

    // ---- down leaves nothing -----------------------------------------------------------------
    noteWorkloads();
    assert.ok(workloads.size >= 3, `the pods' processes were seen (${workloads.size})`);
    assert.match(ok('down'), /membrane is down/);
    for (let i = 0; i < 50 && leftovers().length > 0; i++) await sleep(100);
    assert.deepEqual(leftovers(), [], 'membrane down left nothing behind');
    passed = true;

    // ---- helpers (hoisted) -----------------------------------------------------------------
    function agentPid(): number {
      return (JSON.parse(ok('status', '-o', 'json')) as { agent: { pid: number } }).agent.pid;
    }
    function pods(): Map<string, PodJson> {
      const l = JSON.parse(ok('get', 'pods', '-n', NS, '-o', 'json')) as { items: PodJson[] };
      return new Map(l.items.map((p) => [p.metadata.name, p]));
    }
    function endpointList() {
      return JSON.parse(ok('endpoint', 'list', '-o', 'json')) as { id: number; pod: string; hostInterface: string; policyEnforcement: { ingress: boolean; egress: boolean } }[];
    }
    function snmpOf(pod: string): Record<string, Record<string, number>> {
      const text = ok('exec', pod, '-n', NS, '--', 'cat', '/proc/net/snmp');
      const out: Record<string, Record<string, number>> = {};
      const lines = text.split('\n').filter(Boolean);
      for (let i = 0; i + 1 < lines.length; i += 2) {
        const [proto, ...names] = lines[i]!.split(/\s+/);
        const values = lines[i + 1]!.split(/\s+/).slice(1).map(Number);
        out[proto!.replace(':', '')] = Object.fromEntries(names.map((n, j) => [n, values[j]!]));
      }
      return out;
    }
    /** The programs on the server's veth and its policy map in the kernel (to show the restart replaced them). */
    function kernelState(hostIf: string, epId: number): { progs: string[]; policyMap: string } {
      const progs = ['ingress', 'egress'].map((dir) => {
        const m = / id (\d+)/.exec(spawnSync('tc', ['filter', 'show', 'dev', hostIf, dir], { encoding: 'utf8' }).stdout);
        return m ? m[1]! : '?';
      });
      const key = [0, 8, 16, 24].map((s) => String((epId >>> s) & 0xff));
      const r = spawnSync('bpftool', ['-j', 'map', 'lookup', 'pinned', join(pinRoot, 'mbr_policy'), 'key', ...key], { encoding: 'utf8' });
      let policyMap = '?';
      try {
        const v = JSON.parse(r.stdout) as { value: number | string[] };
        policyMap = Array.isArray(v.value) ? String(Number.parseInt([...v.value].reverse().join('').replace(/0x/g, ''), 16)) : String(v.value);
      } catch {
        /* bpftool missing or another format */
      }
      return { progs, policyMap };
    }
  },
);

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
