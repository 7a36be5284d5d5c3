/**
 * Cells and their lifecycle: cells start in the order they were appended and
 * stop in reverse. When a start fails, the cells already started are stopped
 * (in reverse) before the error propagates, so a half-started agent never
 * stays up.
 */
export interface Cell {
  readonly name: string;
  start(): void | Promise<void>;
  stop(): void | Promise<void>;
}

export class Lifecycle {
  private readonly cells: Cell[] = [];
  private started: Cell[] = [];

  append(cell: Cell): void {
    this.cells.push(cell);
  }

  async start(progress: (msg: string) => void = () => {}): Promise<void> {
    for (const c of this.cells) {
      progress(`starting ${c.name}`);
      try {
        await c.start();
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        await this.stop(progress).catch(() => {});
        throw new Error(`start ${c.name}: ${why}`, { cause: e });
      }
      this.started.push(c);
    }
  }

  /** Stop every started cell, newest first; every stop runs even if one fails. */
  async stop(progress: (msg: string) => void = () => {}): Promise<void> {
    const errors: string[] = [];
    while (this.started.length > 0) {
      const c = this.started.pop()!;
      progress(`stopping ${c.name}`);
      try {
        await c.stop();
      } catch (e) {
        errors.push(`${c.name}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (errors.length) throw new Error(`stop failed: ${errors.join('; ')}`);
  }
}
