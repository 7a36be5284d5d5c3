#!/usr/bin/env node
// Enforces the package import rules of design.md section 2: which workspace
// packages each package may import, and that `policy` (which also runs in a
// browser) imports nothing from node:* or any other Node built-in. Test files
// (*.test.ts) may import node:test and node:assert.
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// The tree to check: the repository, or a folder given as argument (tests).
process.chdir(process.argv[2] ?? resolve(dirname(fileURLToPath(import.meta.url)), '..'));

const MAY_IMPORT = {
  api: [],
  policy: ['api'],
  identity: ['policy', 'api'],
  endpoint: ['policy', 'identity', 'api', 'datapath'],
  datapath: ['policy', 'api'],
  // The proxy needs the addon's socket options Node lacks (IP_TRANSPARENT, SO_MARK: design.md section 3) and the ipcache model.
  proxy: ['policy', 'api', 'identity', 'datapath'],
  observer: ['api', 'policy', 'proto'],
  agent: ['*'],
  // observe: the observer's one filter implementation and Hubble's printers (design.md section 5), over the protos.
  cli: ['api', 'policy', 'proto', 'observer'],
  // The console: the engine runs in the browser (preview), the observer's one filter implementation and printers (its browser entry), over the protos.
  ui: ['api', 'policy', 'proto', 'observer'],
  testkit: ['*'],
};
// Packages whose shipped code must run without Node built-ins.
const NO_NODE = new Set(['policy', 'api', 'ui']);
const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

const problems = [];
for (const pkg of readdirSync('packages').sort()) {
  const src = join('packages', pkg, 'src');
  if (!existsSync(src)) continue;
  const allowed = MAY_IMPORT[pkg];
  if (!allowed) {
    problems.push(`packages/${pkg}: not in the package table of design.md section 2 (add it to scripts/check-imports.mjs)`);
    continue;
  }
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(ts|tsx)$/.test(name) && !name.endsWith('.d.ts')) check(p, name.includes('.test.'));
    }
  };
  const check = (file, isTest) => {
    const text = readFileSync(file, 'utf8');
    const re = /(?:^|\n)\s*(?:import|export)[^'"\n]*?from\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
    let m;
    while ((m = re.exec(text))) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (spec.startsWith('.')) continue;
      const at = relative('.', file);
      if (spec.startsWith('@membrane/')) {
        const target = spec.slice('@membrane/'.length).split('/')[0];
        if (pkg === 'ui' && target === 'observer' && spec !== '@membrane/observer/browser') problems.push(`${at}: the console imports the observer only through @membrane/observer/browser (no Node built-ins, no metrics library)`);
        if (target !== pkg && !allowed.includes('*') && !allowed.includes(target)) {
          problems.push(`${at}: package ${pkg} may not import @membrane/${target} (allowed: ${allowed.join(', ') || 'none'})`);
        }
        continue;
      }
      if (NODE_BUILTINS.has(spec) || spec.startsWith('node:')) {
        if (NO_NODE.has(pkg) && !isTest) problems.push(`${at}: package ${pkg} must run in a browser and may not import ${spec}`);
      }
    }
  };
  walk(src);
}
if (problems.length) {
  console.error('check-imports: package import rules broken:\n  ' + problems.join('\n  '));
  process.exit(1);
}
console.log('check-imports: package import rules hold');
