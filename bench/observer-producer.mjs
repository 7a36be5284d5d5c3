#!/usr/bin/env node
// The event producer of bench/observer, in its own process (on its own CPU):
// opens the bench's pinned maps with a second instance of the programs and
// runs to_container on a SYN its default deny drops, `repeat` times per
// BPF_PROG_TEST_RUN, until it has made the events asked. Prints one JSON line.
import { Datapath } from '../packages/datapath/dist/index.js';
import { buildPacket } from '../packages/datapath/dist/test/packets.js';

const [pinRoot, eventsArg, src, dst] = process.argv.slice(2);
const EVENTS = Number(eventsArg);
const PER_RUN = 1000;
const dp = Datapath.open({ pinRoot });
try {
  const packet = buildPacket({ src, dst, proto: 'tcp', sport: 40000, dport: 80, flags: 2 });
  const t0 = performance.now();
  let made = 0;
  while (made < EVENTS) {
    dp.nb.progTestRun(dp.progs.toContainer, packet, { repeat: PER_RUN });
    made += PER_RUN;
  }
  console.log(JSON.stringify({ made, seconds: (performance.now() - t0) / 1000 }));
} finally {
  dp.close();
}
