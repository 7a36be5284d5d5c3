/**
 * A cleanup registry: each resource is registered on the line after it is
 * created, and `run` undoes them in reverse order — also after a failure
 * half-way, so nothing the project created outlives its owner.
 */
export type Undo = () => void | Promise<void>;

export class Cleanup {
  private readonly undos: { what: string; undo: Undo }[] = [];

  add(what: string, undo: Undo): void {
    this.undos.push({ what, undo });
  }

  get size(): number {
    return this.undos.length;
  }

  /** Undo everything, newest first. Every undo runs; failures are collected and reported together. */
  async run(): Promise<void> {
    const errors: string[] = [];
    while (this.undos.length > 0) {
      const { what, undo } = this.undos.pop()!;
      try {
        await undo();
      } catch (e) {
        errors.push(`${what}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (errors.length > 0) throw new Error(`cleanup failed for ${errors.length} resource(s): ${errors.join('; ')}`);
  }
}
