import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { placeAgentError, validatePolicies } from './policy-validate.js';

const rule1 = readFileSync(fileURLToPath(new URL('../../../../examples/starwars/rule1-l7.yaml', import.meta.url)), 'utf8');

test("the demo's rule1 validates as the agent would apply it", () => {
  const v = validatePolicies(rule1);
  assert.deepEqual(v.problems, []);
  assert.equal(v.policies.length, 1);
  assert.equal(v.policies[0]!.ref.name, 'rule1');
});

test('invalid YAML and an invalid field are marked at their lines', () => {
  const bad = rule1.replace('port: "80"', 'port: "99999"');
  assert.notEqual(bad, rule1, 'the example has the port to break');
  const v = validatePolicies(bad);
  assert.equal(v.policies.length, 0);
  assert.equal(v.problems.length >= 1, true);
  const line = bad.split('\n').findIndex((l) => l.includes('99999')) + 1;
  assert.equal(v.problems[0]!.line, line, JSON.stringify(v.problems));
  assert.match(v.problems[0]!.message, /port/);
  const yaml = validatePolicies('kind: CiliumNetworkPolicy\nmetadata: {name: x\n');
  assert.equal(yaml.problems.length >= 1, true);
  assert.match(yaml.problems[0]!.message, /YAML/);
  assert.equal(placeAgentError(bad, v.problems[0]!.message), line);
});
