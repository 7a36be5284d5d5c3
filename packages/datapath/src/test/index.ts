// Test helpers other packages' tests use through `@membrane/datapath/testing`.
export * from './lxc-harness.js';
export * from './lxc-fixture.js';
export * from './packets.js';
export * from './privileged.js';
