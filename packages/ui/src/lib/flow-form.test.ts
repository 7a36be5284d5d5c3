import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { FilterError } from '@membrane/observer/browser';
import { flow as pb } from '@membrane/proto';
import { formPredicate } from './flow-form.js';

const ep = (namespace: string, podName: string, labels: string[] = []) => ({ namespace, podName, labels });
const tcp = (dport: number) => ({ protocol: { case: 'TCP' as const, value: { sourcePort: 40000, destinationPort: dport } } });
const flows = [
  create(pb.FlowSchema, { uuid: 'xwing-drop', verdict: pb.Verdict.DROPPED, source: ep('default', 'xwing', ['k8s:class=xwing']), destination: ep('default', 'deathstar-1', ['k8s:class=deathstar']), l4: tcp(80) }),
  create(pb.FlowSchema, { uuid: 'tie-put', verdict: pb.Verdict.DROPPED, source: ep('default', 'tiefighter'), destination: ep('default', 'deathstar-1'), l4: tcp(80), l7: { type: pb.L7FlowType.REQUEST, record: { case: 'http', value: { method: 'PUT', code: 403, url: 'http://deathstar/v1/exhaust-port' } } } }),
  create(pb.FlowSchema, { uuid: 'tie-post', verdict: pb.Verdict.FORWARDED, source: ep('default', 'tiefighter'), destination: ep('default', 'deathstar-1'), l4: tcp(80), l7: { type: pb.L7FlowType.RESPONSE, record: { case: 'http', value: { method: 'POST', code: 200, url: 'http://deathstar/v1/request-landing' } } } }),
  create(pb.FlowSchema, { uuid: 'dns', verdict: pb.Verdict.FORWARDED, source: ep('shop', 'web'), destination: ep('kube-system', 'kube-dns'), l4: { protocol: { case: 'UDP', value: { sourcePort: 5000, destinationPort: 53 } } } }),
];
const pick = (form: Parameters<typeof formPredicate>[0]) => flows.filter(formPredicate(form)).map((f) => f.uuid);

test("the form filters as hubble observe's flags do: side-less fields match either side, the rest narrow", () => {
  assert.deepEqual(pick({}), ['xwing-drop', 'tie-put', 'tie-post', 'dns']);
  assert.deepEqual(pick({ pod: 'deathstar' }), ['xwing-drop', 'tie-put', 'tie-post'], 'either side');
  assert.deepEqual(pick({ pod: 'deathstar', verdict: 'DROPPED' }), ['xwing-drop', 'tie-put']);
  assert.deepEqual(pick({ namespaces: ['kube-system'] }), ['dns']);
  assert.deepEqual(pick({ namespaces: ['shop', 'kube-system'], port: '53' }), ['dns']);
  assert.deepEqual(pick({ label: 'class=xwing' }), ['xwing-drop']);
  assert.deepEqual(pick({ httpStatus: '4+' }), ['tie-put']);
  assert.deepEqual(pick({ httpMethod: 'post', httpPath: '^/v1/request' }), ['tie-post']);
});

test('a bad field is refused, naming it', () => {
  assert.throws(() => formPredicate({ httpPath: '(' }), (e: Error) => e instanceof FilterError && /http_path/.test(e.message));
  assert.throws(() => formPredicate({ label: 'a in (' }), (e: Error) => e instanceof FilterError);
});
