/**
 * The agent's one serial queue: every change to objects, pods and the
 * kernel runs here, one task at a time, so an apply never interleaves with a
 * container restart or a probe result. `run` hands the caller the task's
 * result or error; `post` is for tasks nobody waits for (timers, process
 * exits), whose errors are reported, never dropped and never unhandled.
 */
export class WorkQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly report: (what: string, error: unknown) => void) {}

  run<T>(fn: () => T | Promise<T>): Promise<T> {
    const task = this.tail.then(fn, fn);
    this.tail = task.catch(() => undefined);
    return task;
  }

  /** Queue a task nobody awaits; a failure is reported with `what`. Ignored once closed. */
  post(what: string, fn: () => unknown): void {
    if (this.closed) return;
    this.run(fn).catch((e: unknown) => this.report(what, e));
  }

  /** Refuse new posted tasks and wait for the queued ones. */
  async close(): Promise<void> {
    this.closed = true;
    await this.tail;
  }
}
