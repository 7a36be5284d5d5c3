#!/usr/bin/env node
// Compiles the datapath's BPF programs: every packages/*/bpf/**/*.c becomes
// packages/*/dist/bpf/**/*.o (same relative path), with clang -O2 -g -target
// bpf. -g matters: libbpf reads map definitions and ring buffers from BTF.
// Headers (*.h) are not compiled; every program is rebuilt on each run (a
// few hundred milliseconds), so a changed header is never missed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLANG = process.env.CLANG ?? 'clang';
const INSTALL_HINT = 'apt-get install clang llvm libbpf-dev (or run ./scripts/setup as root)';

function fail(message) {
  console.error(`build-bpf: ${message}`);
  process.exit(1);
}

function walk(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.c')) out.push(p);
  }
  return out;
}

const jobs = [];
for (const pkg of readdirSync(join(root, 'packages')).sort()) {
  const bpfDir = join(root, 'packages', pkg, 'bpf');
  if (!existsSync(bpfDir)) continue;
  for (const src of walk(bpfDir, [])) {
    const rel = relative(bpfDir, src).replace(/\.c$/, '.o');
    jobs.push({ bpfDir, src, out: join(root, 'packages', pkg, 'dist', 'bpf', rel) });
  }
}
if (jobs.length === 0) process.exit(0);

const version = spawnSync(CLANG, ['--version'], { encoding: 'utf8' });
if (version.error) {
  fail(`${CLANG} not found (${version.error.code}); the BPF programs need it: ${INSTALL_HINT}`);
}
if (!existsSync('/usr/include/bpf/bpf_helpers.h')) {
  fail(`/usr/include/bpf/bpf_helpers.h is missing; the BPF programs need libbpf's headers: ${INSTALL_HINT}`);
}
// -target bpf drops the host's multiarch include dir, where <asm/types.h>
// (pulled in by <linux/bpf.h>) lives on Debian.
const multiarch = spawnSync('gcc', ['-print-multiarch'], { encoding: 'utf8' }).stdout?.trim();
const archInclude = multiarch ? [`-I/usr/include/${multiarch}`] : [];

let failed = 0;
for (const { bpfDir, src, out } of jobs) {
  mkdirSync(dirname(out), { recursive: true });
  const args = ['-O2', '-g', '-target', 'bpf', '-Wall', '-Werror', '-I', bpfDir, ...archInclude, '-c', src, '-o', out];
  const r = spawnSync(CLANG, args, { encoding: 'utf8' });
  if (r.status !== 0) {
    failed++;
    console.error(`build-bpf: ${relative(root, src)} failed:\n${r.stderr}`);
  } else if (r.stderr) {
    process.stderr.write(r.stderr);
  }
}
if (failed) fail(`${failed} of ${jobs.length} BPF program(s) did not compile`);
console.log(`build-bpf: ${jobs.length} BPF program(s) compiled`);
