// Every malformed manifest in packages/policy/testdata/invalid/ must be
// rejected clearly, through the real CLI: `policy validate` exits 2 with
// exactly the expected one-line message (document, field path, reason, code),
// and the same document given as a scenario's policy makes `policy test` exit
// 2 with a message that names `policies[0]` and the same field.
//
// Each YAML file's first line is `# expect: <the exact stderr line>`; a JSON
// file keeps its expectation in a sibling `NAME.json.expect` file. The line
// names the file by its path relative to the repository root, so the command
// runs there and is given that relative path.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { repoRoot } from './test/paths.js';

const folder = 'packages/policy/testdata/invalid';
const membrane = `${repoRoot}/bin/membrane`;
const MANIFEST = /\.(ya?ml|json)$/;

function run(...args: string[]) {
  return spawnSync(membrane, args, { cwd: repoRoot, encoding: 'utf8' });
}

interface Case {
  name: string;
  /** Path relative to the repository root, as given to the command. */
  rel: string;
  text: string;
  expected: string;
}

function loadCases(): Case[] {
  const names = readdirSync(join(repoRoot, folder)).filter((n) => MANIFEST.test(n)).sort();
  return names.map((name) => {
    const rel = `${folder}/${name}`;
    const text = readFileSync(join(repoRoot, rel), 'utf8');
    let expected: string;
    if (name.endsWith('.json')) {
      expected = readFileSync(join(repoRoot, `${rel}.expect`), 'utf8').replace(/\n$/, '');
    } else {
      const first = text.slice(0, text.indexOf('\n'));
      const m = /^# expect: (.+)$/.exec(first);
      assert.ok(m, `${rel}: the first line must be "# expect: <stderr line>", not ${JSON.stringify(first)}`);
      expected = m[1]!;
    }
    assert.ok(!expected.includes('\n'), `${rel}: the expectation is one line`);
    return { name, rel, text, expected };
  });
}

const cases = loadCases();

/**
 * Splits `membrane: <file>: document N[ items[i]][ (Kind ns/name)]: <rest>`;
 * rest is `[<field.path>: ]<reason> [MEMBRANE_E_...]`.
 */
function parseExpected(c: Case) {
  const prefix = `membrane: ${c.rel}: `;
  assert.ok(c.expected.startsWith(prefix), `${c.rel}: the expectation must start with ${JSON.stringify(prefix)}`);
  const m = /^document (\d+)((?: items\[\d+\])?)(?: \(([^)]*)\))?: (.*) \[(MEMBRANE_E_[A-Z_]+)\]$/.exec(c.expected.slice(prefix.length));
  assert.ok(m, `${c.rel}: the expectation does not name a document, a reason and a code: ${c.expected}`);
  const rest = m[4]!;
  // A field path is the leading run of non-blank characters before ": " (label keys may hold ':').
  const p = /^(\S+?): (.+)$/.exec(rest);
  const fieldPath = p ? p[1]! : '';
  return { document: Number(m[1]), items: m[2]!, object: m[3], rest, fieldPath, code: m[5]! };
}

const tmp = mkdtempSync(join(tmpdir(), 'membrane-invalid-input-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test(`${folder} holds at least 25 malformed manifests, each with its expectation`, () => {
  assert.ok(cases.length >= 25, `only ${cases.length} files in ${folder}`);
  for (const c of cases) parseExpected(c);
  // Every .expect file belongs to a JSON manifest.
  for (const n of readdirSync(join(repoRoot, folder)).filter((x) => x.endsWith('.expect'))) {
    assert.ok(cases.some((c) => `${c.name}.expect` === n && c.name.endsWith('.json')), `${n} has no JSON manifest beside it`);
  }
});

test('the messages name the document, the field and the code', () => {
  // YAML syntax errors name a line and column instead of a field.
  const structural = cases.filter((c) => parseExpected(c).code !== 'MEMBRANE_E_YAML');
  const fields = structural.filter((c) => parseExpected(c).fieldPath !== '');
  // All but whole-document problems (e.g. a manifest that is not a mapping) name a field.
  assert.ok(fields.length >= structural.length - 3, `${structural.length - fields.length} expectations name no field`);
  for (const c of cases.filter((x) => parseExpected(x).code === 'MEMBRANE_E_YAML' && /syntax/.test(x.expected))) {
    assert.match(c.expected, /at line \d+, column \d+: /, `${c.rel}: a syntax error names its line and column`);
  }
  const second = cases.find((c) => c.name === 'second-document-invalid.yaml');
  assert.ok(second, 'second-document-invalid.yaml is missing');
  assert.equal(parseExpected(second).document, 2);
});

for (const c of cases) {
  test(`policy validate ${c.name}: exit 2 with the expected line`, () => {
    const r = run('policy', 'validate', c.rel);
    assert.equal(r.stdout, '', `${c.rel}: nothing on stdout`);
    assert.equal(r.stderr, `${c.expected}\n`);
    assert.equal(r.status, 2);
  });

  test(`policy test with ${c.name} as a scenario's policy: exit 2 naming policies[0]`, () => {
    const e = parseExpected(c);
    // JSON is YAML: the document text travels as one string, byte for byte.
    const scenario = {
      name: `invalid input: ${c.name}`,
      endpoints: [{ name: 'web', namespace: 'default', labels: { app: 'web' } }],
      policies: [c.text],
      probes: [{ from: 'default/web', to: 'default/web', port: 80, expect: 'allowed' }],
    };
    const file = join(tmp, c.name.replace(MANIFEST, '') + '.scenario.yaml');
    writeFileSync(file, JSON.stringify(scenario, null, 2) + '\n');
    try {
      const r = run('policy', 'test', file);
      assert.equal(r.status, 2, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
      assert.ok(r.stderr.includes(file), `the message names the scenario file: ${r.stderr}`);
      // The policy string is loaded on its own: a second document is still `document 2`.
      const label = `policies[0]${e.document > 1 ? ` document ${e.document}` : ''}${e.items}`;
      assert.ok(r.stderr.includes(`${label}${e.object ? ` (${e.object})` : ''}: `), `names ${label}: ${r.stderr}`);
      if (e.fieldPath) assert.ok(r.stderr.includes(`: ${e.fieldPath}: `), `names ${e.fieldPath}: ${r.stderr}`);
      // Line numbers of a YAML syntax error count from the policy string, which is the same text.
      assert.ok(r.stderr.includes(`${e.rest} [${e.code}]`), `gives the same reason: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /internal error/);
    } finally {
      rmSync(file, { force: true });
    }
  });
}
