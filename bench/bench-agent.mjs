// Helpers the agent-backed benchmarks share (bench/services, bench/l7): a
// scratch agent on names of its own, traffic processes inside its pods, and
// the arithmetic of their figures.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const ROOT = new URL('..', import.meta.url).pathname;
export const MEMBRANE = join(ROOT, 'bin/membrane');

/** An agent's environment of its own (state directory, pin root, names `mbr<tag>`, CIDRs); `run` is `membrane` in it. */
export function scratchAgent(tag, podCIDR, serviceCIDR, extraEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), `mbr-bench-${tag}-`));
  const env = { ...process.env, MEMBRANE_STATE_DIR: join(dir, 'state'), MEMBRANE_PIN_ROOT: `/sys/fs/bpf/mbr-bench-${tag}-${process.pid}`, MEMBRANE_POD_CIDR: podCIDR, MEMBRANE_SERVICE_CIDR: serviceCIDR, MEMBRANE_NAME_PREFIX: `mbr${tag}`, MEMBRANE_HUBBLE_PORT: '0', MEMBRANE_METRICS_PORT: '0', MEMBRANE_UI_PORT: '0', MEMBRANE_KUBE_PORT: '0', MEMBRANE_DNS_PROXY_PORT: '0', ...extraEnv };
  const run = (...args) => {
    const r = spawnSync(MEMBRANE, args, { env, encoding: 'utf8', timeout: 180_000 });
    if (r.status !== 0) throw new Error(`membrane ${args.join(' ')}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  return {
    dir,
    env,
    run,
    /** `membrane down`, then the directory goes (whatever happened before). */
    remove: () => {
      spawnSync(MEMBRANE, ['down'], { env, encoding: 'utf8' });
      rmSync(dir, { recursive: true, force: true });
    },
    /** The network namespace of one of its pods. */
    netnsOf: (pod) => `mbr${tag}_pod_${JSON.parse(run('endpoint', 'list', '-o', 'json')).find((e) => e.pod === pod).id.toString(36)}`,
  };
}

export const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** `node script args` inside a pod's namespace, pinned to a CPU. */
export function inPod(netns, cpu, script, args, stdin = 'ignore') {
  return spawn('ip', ['netns', 'exec', netns, 'taskset', '-c', cpu, process.execPath, script, ...args], { stdio: [stdin, 'pipe', 'inherit'] });
}

/** The first line a traffic process prints, as JSON. */
export function firstJSON(child) {
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', (l) => resolve(JSON.parse(l)));
    child.once('exit', (code) => reject(new Error(`traffic process exited (${code})`)));
  });
}
