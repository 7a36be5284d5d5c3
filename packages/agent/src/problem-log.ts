/** What went wrong in the background, kept for `membrane status` (the newest 50) and printed to the agent's log. */
export class ProblemLog {
  private readonly items: string[] = [];

  constructor(private readonly log: (m: string) => void = () => {}) {}

  add(what: string): void {
    this.log(`problem: ${what}`);
    this.items.push(`${new Date().toISOString()} ${what}`);
    if (this.items.length > 50) this.items.shift();
  }

  list(): string[] {
    return [...this.items];
  }
}
