import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { flow as pb } from '@membrane/proto';
import { previewMarks } from './preview-marks.js';
import { classifyFlow } from './service-map.js';

const f = (src: string, dst: string) =>
  create(pb.FlowSchema, { source: { namespace: 'default', podName: src, identity: 1 }, destination: { namespace: 'default', podName: dst, identity: 2 }, l4: { protocol: { case: 'TCP', value: { sourcePort: 40000, destinationPort: 80 } } } });

test('a preview on the map: changed flows counted on their edges, by the way they change', () => {
  const tie = f('tiefighter', 'deathstar');
  const xw = f('xwing', 'deathstar');
  const m = previewMarks([
    { flow: tie, before: 'denied', after: 'allowed' },
    { flow: tie, before: 'denied', after: 'allowed' },
    { flow: xw, before: 'allowed', after: 'denied' },
  ]);
  assert.deepEqual(m.get(classifyFlow(tie).edgeId), { toAllowed: 2, toDenied: 0 });
  assert.deepEqual(m.get(classifyFlow(xw).edgeId), { toAllowed: 0, toDenied: 1 });
  assert.equal(m.size, 2);
});
