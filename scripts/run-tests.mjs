#!/usr/bin/env node
// Runs every compiled test file (packages/*/dist/**/*.test.js) with node's
// test runner. Privileged tests (*.privileged.test.js) decide for themselves
// whether to skip (loudly) when not root. Pass file filters as arguments.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const roots = ['proto', 'packages', 'e2e', 'bench'];
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    if (name === 'node_modules') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js') && p.includes(`${'/'}dist${'/'}`)) files.push(p);
  }
}
for (const r of roots) if (existsSync(r)) walk(r);
const filters = process.argv.slice(2);
const selected = filters.length ? files.filter((f) => filters.some((x) => f.includes(x))) : files;
if (selected.length === 0) {
  console.error('run-tests: no test files found (did the build run?)');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...selected], { stdio: 'inherit' });
process.exit(r.status ?? 1);
