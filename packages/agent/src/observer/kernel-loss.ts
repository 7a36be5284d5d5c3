/**
 * The kernel's count of events its ring buffer could not take (a per-CPU
 * counter the programs bump when bpf_ringbuf_reserve fails) passed to the
 * observer as it grows, so that every loss is told: in the metrics and
 * in-band to every GetFlows follower, exactly as many as were lost.
 */
import type { Observer } from '@membrane/observer';

export class KernelLossWatch {
  private last: number;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly read: () => bigint,
    private readonly observer: () => Observer,
  ) {
    this.last = Number(read());
  }

  /** Reads the counter now and tells the observer what is new. */
  poll(): void {
    let now: number;
    try {
      now = Number(this.read());
    } catch {
      return; // the datapath closed (the agent stops): nothing more to count
    }
    if (now > this.last) this.observer().kernelLost(now - this.last);
    this.last = now;
  }

  start(everyMs = 1000): void {
    this.timer = setInterval(() => this.poll(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
