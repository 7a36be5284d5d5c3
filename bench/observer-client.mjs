#!/usr/bin/env node
// The GetFlows client of bench/observer, in its own process: one gRPC call
// over HTTP/2 (number = the ring), counting the length-prefixed messages as
// they arrive and decoding every 1000th (and the last) with protobuf-es to
// check it is a flow. Prints one JSON line: {flows, seconds, checked}.
import { connect } from 'node:http2';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { observer as obs } from '../proto/dist/index.js';

const [address, number] = process.argv.slice(2);
const session = connect(`http://${address}`);
const req = create(obs.GetFlowsRequestSchema, { number: BigInt(number) });
const body = toBinary(obs.GetFlowsRequestSchema, req);
const frame = Buffer.alloc(5 + body.length);
frame.writeUInt32BE(body.length, 1);
frame.set(body, 5);
const t0 = performance.now();
const stream = session.request({ ':method': 'POST', ':path': '/observer.Observer/GetFlows', 'content-type': 'application/grpc', te: 'trailers' });
stream.end(frame);
let flows = 0;
let checked = 0;
let pending = Buffer.alloc(0);
let status = '';
stream.on('trailers', (t) => (status = String(t['grpc-status'])));
stream.on('response', (h) => {
  if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
});
stream.on('data', (d) => {
  pending = pending.length ? Buffer.concat([pending, d]) : d;
  let at = 0;
  while (pending.length - at >= 5) {
    const len = pending.readUInt32BE(at + 1);
    if (pending.length - at < 5 + len) break;
    if (flows % 1000 === 0) {
      const r = fromBinary(obs.GetFlowsResponseSchema, pending.subarray(at + 5, at + 5 + len));
      if (r.responseTypes.case !== 'flow') throw new Error(`message ${flows}: ${r.responseTypes.case}, not a flow`);
      checked++;
    }
    at += 5 + len;
    flows++;
  }
  pending = pending.subarray(at);
});
stream.on('end', () => {
  console.log(JSON.stringify({ flows, seconds: (performance.now() - t0) / 1000, checked, status }));
  session.close();
});
