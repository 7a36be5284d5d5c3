/**
 * One event at a time into a flow (tests, replays, tools): the observer's
 * own making of flows, without its ring's life. Datapath events go through
 * the same ring, parts and builders as in the observer (datapath-flow.ts);
 * the proxies' events through l7-flow.ts.
 */
import type { DatapathEventRecord } from '@membrane/api';
import type { flow as pb } from '@membrane/proto';
import type { FlowContext } from './flow-context.js';
import type { DnsEventRecord, HttpEventRecord } from './l7-flow.js';
import { Observer } from './observer.js';

export type { DatapathEventRecord };
export type { DnsEventRecord, HttpEventRecord } from './l7-flow.js';
export * from './flow-context.js';
export { l4Summary, policyOf, tcpFlagsSummary } from './flow-parts.js';

export class FlowParser {
  private readonly o: Observer;

  constructor(ctx: FlowContext) {
    this.o = new Observer({ context: ctx, capacity: 64 });
  }

  /** The clock that turns kernel time into wall-clock time. */
  get clock() {
    return this.o.clock;
  }

  fromDatapath(ev: DatapathEventRecord): pb.Flow {
    this.o.ingestDatapath([ev]);
    return this.o.flow(this.o.seen - 1)!;
  }

  fromHttp(ev: HttpEventRecord): pb.Flow {
    this.o.ingestL7(ev);
    return this.o.flow(this.o.seen - 1)!;
  }

  fromDns(ev: DnsEventRecord): pb.Flow {
    this.o.ingestL7(ev);
    return this.o.flow(this.o.seen - 1)!;
  }
}
