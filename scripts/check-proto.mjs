#!/usr/bin/env node
// The generated protobuf-es code (proto/gen) must be what the .proto files
// give now: regenerates into a scratch directory with the pinned buf and
// protoc-gen-es and compares file by file. Exit 1 (and what differs) when
// proto/gen is stale: run `npm run generate -w proto` and commit.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const protoDir = join(root, 'proto');
const bin = join(root, 'node_modules', '.bin');

function files(dir) {
  const out = [];
  const walk = (d) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

const scratch = mkdtempSync(join(tmpdir(), 'mbr-proto-'));
try {
  const r = spawnSync(join(bin, 'buf'), ['generate', '--template', 'buf.gen.yaml', '-o', scratch], {
    cwd: protoDir,
    env: { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` },
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    console.error(`check-proto: buf generate failed (exit ${r.status}): ${r.stderr || r.error?.message}`);
    process.exit(1);
  }
  const want = join(scratch, 'gen');
  const have = join(protoDir, 'gen');
  const a = files(want);
  const b = files(have);
  const problems = [];
  for (const f of new Set([...a, ...b])) {
    if (!a.includes(f)) problems.push(`proto/gen/${f}: no .proto file generates it any more`);
    else if (!b.includes(f)) problems.push(`proto/gen/${f}: missing (not generated and committed)`);
    else if (!readFileSync(join(want, f)).equals(readFileSync(join(have, f)))) problems.push(`proto/gen/${f}: differs from what its .proto file generates`);
  }
  if (problems.length) {
    for (const p of problems) console.error(`check-proto: ${p}`);
    console.error('check-proto: proto/gen is stale: run `npm run generate -w proto` and commit proto/gen');
    process.exit(1);
  }
  console.log(`check-proto: proto/gen is up to date (${a.length} files)`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
