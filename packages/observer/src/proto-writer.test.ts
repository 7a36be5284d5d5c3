import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { flow as pb } from '@membrane/proto';
import { ProtoWriter } from './proto-writer.js';

test('addresses, strings and nested messages of every length read back as protobuf-es reads them', () => {
  for (const [n, s] of [[0, '0.0.0.0'], [0xffffffff, '255.255.255.255'], [0x0a00010f, '10.0.1.15'], [0xcb00710b, '203.0.113.11']] as const) {
    const w = new ProtoWriter(8);
    w.ipv4(1, n);
    w.ipv4(2, n);
    assert.deepEqual([fromBinary(pb.IPSchema, w.take()).source, fromBinary(pb.IPSchema, w.take()).destination], [s, s]);
  }
  for (const len of [0, 1, 127, 128, 200, 16383, 16384, 70000]) {
    const name = 'x'.repeat(len);
    const w = new ProtoWriter(16);
    w.begin(8); // Flow.source (an Endpoint)
    w.uint(1, 4_000_000_000);
    w.string(5, name);
    w.begin(6); // a Workload inside it
    w.string(1, 'ünïcode');
    w.end();
    w.end();
    w.string(11, 'node');
    const f = fromBinary(pb.FlowSchema, w.take());
    assert.deepEqual([f.source?.ID, f.source?.podName.length, f.source?.workloads[0]?.name, f.nodeName], [4_000_000_000, len, 'ünïcode', 'node'], `length ${len}`);
    const ref = create(pb.FlowSchema, { source: { ID: 4_000_000_000, podName: name, workloads: [{ name: 'ünïcode' }] }, nodeName: 'node' });
    assert.deepEqual(w.take(), toBinary(pb.FlowSchema, ref), 'byte for byte what protobuf-es writes');
  }
});
