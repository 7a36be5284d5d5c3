/**
 * `pods/NAME/log`: a container's output as kubelet serves it — all of it,
 * the last `tailLines` lines, what was written in the last `sinceSeconds`,
 * and with `follow` what comes after until the client goes. Containers
 * write straight to their log file (the processes outlive an agent
 * restart, so nothing of ours sits in between and no line carries a time);
 * `sinceSeconds` is answered from the file's size sampled every second
 * (LogSizes): the bytes written after the first sample taken at or after
 * the cut-off, from the next line start, so the answer is exact to a
 * second.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';

const KEEP_MS = 3_600_000;

/** Each followed file's size over time: [time ms, size] a second, for an hour. */
export class LogSizes {
  private readonly samples = new Map<string, [number, number][]>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly files: () => string[]) {}

  start(everyMs = 1000): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  sample(now = Date.now()): void {
    const seen = new Set<string>();
    for (const f of this.files()) {
      seen.add(f);
      let size: number;
      try {
        size = statSync(f).size;
      } catch {
        continue;
      }
      const list = this.samples.get(f) ?? [];
      if (list.length === 0 || list.at(-1)![1] !== size) list.push([now, size]);
      while (list.length > 1 && list[0]![0] < now - KEEP_MS) list.shift();
      this.samples.set(f, list);
    }
    for (const f of this.samples.keys()) if (!seen.has(f)) this.samples.delete(f);
  }

  /** The size the file had at `at` (the earliest known when asked about earlier). */
  sizeAt(file: string, at: number): number {
    const list = this.samples.get(file);
    if (!list?.length) return 0;
    let size = 0;
    for (const [t, s] of list) {
      if (t > at) break;
      size = s;
    }
    return list[0]![0] > at ? 0 : size;
  }
}

function readFrom(path: string, offset: number): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const size = statSync(path).size;
    if (size <= offset) return Buffer.alloc(0);
    const buf = Buffer.alloc(size - offset);
    const n = readSync(fd, buf, 0, buf.length, offset);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** The last n lines of a text (a last line without a newline counts). */
export function tailLines(buf: Buffer, n: number): Buffer {
  if (n <= 0) return Buffer.alloc(0);
  let end = buf.length;
  if (end > 0 && buf[end - 1] === 0x0a) end--;
  let i = end;
  let lines = 0;
  while (i > 0) {
    if (buf[i - 1] === 0x0a && ++lines === n) break;
    i--;
  }
  return buf.subarray(i);
}

export interface LogRequest {
  file: string;
  follow: boolean;
  tailLines?: number;
  sinceSeconds?: number;
  limitBytes?: number;
}

export function serveLog(req: IncomingMessage, res: ServerResponse, sizes: LogSizes, l: LogRequest): void {
  let start = 0;
  if (l.sinceSeconds !== undefined) {
    start = sizes.sizeAt(l.file, Date.now() - l.sinceSeconds * 1000);
    if (start > 0) {
      // From the start of the line that was being written at the cut-off's sample.
      const before = readFrom(l.file, 0).subarray(0, start);
      const nl = before.lastIndexOf(0x0a);
      start = nl === before.length - 1 ? start : nl + 1;
    }
  }
  const all = readFrom(l.file, start);
  let offset = start + all.length;
  let text = all;
  if (l.tailLines !== undefined) text = tailLines(text, l.tailLines);
  if (l.limitBytes !== undefined) text = text.subarray(0, l.limitBytes);
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-cache, private', ...(l.follow ? { 'transfer-encoding': 'chunked' } : {}) });
  res.write(text);
  if (!l.follow) {
    res.end();
    return;
  }
  const t = setInterval(() => {
    const more = readFrom(l.file, offset);
    if (more.length) {
      offset += more.length;
      res.write(more);
    }
  }, 200);
  const done = () => clearInterval(t);
  res.on('close', done);
  req.on('close', done);
}
