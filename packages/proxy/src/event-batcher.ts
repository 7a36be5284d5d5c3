/**
 * L7 events on their way to the agent: sent in batches (every interval, or
 * at once when a batch is full), kept while the agent is away up to a
 * bound, and counted when that bound drops them, so the loss is reported
 * with the next batch instead of being silent.
 */
export interface Batch<E> {
  events: E[];
  /** Events dropped before this batch because the agent was away too long. */
  lost: number;
}

export class EventBatcher<E> {
  private queue: E[] = [];
  private lost = 0;
  private timer?: NodeJS.Timeout;
  private sending = false;

  constructor(
    private readonly send: (b: Batch<E>) => Promise<void>,
    private readonly opts: { intervalMs?: number; batchSize?: number; maxQueued?: number } = {},
  ) {}

  push(e: E): void {
    if (this.queue.length >= (this.opts.maxQueued ?? 20_000)) {
      this.lost++;
      return;
    }
    this.queue.push(e);
    if (this.queue.length >= (this.opts.batchSize ?? 256)) void this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.opts.intervalMs ?? 100);
      this.timer.unref();
    }
  }

  /** Sends what waits; on failure it stays queued for the next attempt. Never rejects. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.sending || (this.queue.length === 0 && this.lost === 0)) return;
    this.sending = true;
    const batch = { events: this.queue.splice(0, this.opts.batchSize ?? 256), lost: this.lost };
    this.lost = 0;
    try {
      await this.send(batch);
    } catch {
      this.queue.unshift(...batch.events);
      this.lost += batch.lost;
      this.sending = false;
      this.timer = setTimeout(() => void this.flush(), 1000);
      this.timer.unref();
      return;
    }
    this.sending = false;
    if (this.queue.length > 0) void this.flush();
  }

  pending(): number {
    return this.queue.length;
  }
}
