/** Writes to a streaming response, waiting while its buffer is full (or until it closes). */
interface Writable {
  write(chunk: string | Uint8Array): boolean;
  once(ev: 'drain' | 'close', l: () => void): unknown;
  off(ev: 'drain' | 'close', l: () => void): unknown;
}

export async function writeAndWait(res: Writable, chunk: string | Uint8Array): Promise<void> {
  if (res.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}
