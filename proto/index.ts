/**
 * The protobuf-es messages and services of Membrane's protos (gen/, made by
 * `npm run generate -w proto` from the .proto files beside it; CI checks
 * that they are not stale: scripts/check-proto.mjs).
 */
export * as flow from './gen/flow/flow_pb.js';
export * as observer from './gen/observer/observer_pb.js';
export * as peer from './gen/peer/peer_pb.js';
export * as relay from './gen/relay/relay_pb.js';
export * as membranev1 from './gen/membrane/v1/flow_pb.js';
