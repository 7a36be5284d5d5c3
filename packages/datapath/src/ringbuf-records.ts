/**
 * The batch format of the addon's ring buffer consumer: records back to
 * back, each a little-endian u32 length followed by that many bytes, without
 * padding. One batch arrives per wakeup of the event loop.
 */
export const RECORD_HEADER_BYTES = 4;

/** The records of one batch, as views into it (no copies). */
export function splitRecords(batch: Uint8Array): Buffer[] {
  const b = Buffer.from(batch.buffer, batch.byteOffset, batch.byteLength);
  const out: Buffer[] = [];
  let at = 0;
  while (at < b.length) {
    if (b.length - at < RECORD_HEADER_BYTES) {
      throw new RangeError(`ring buffer batch: ${b.length - at} stray byte(s) at offset ${at} (a record header is ${RECORD_HEADER_BYTES})`);
    }
    const len = b.readUInt32LE(at);
    const start = at + RECORD_HEADER_BYTES;
    if (start + len > b.length) {
      throw new RangeError(`ring buffer batch: record at offset ${at} claims ${len} bytes, ${b.length - start} remain`);
    }
    out.push(b.subarray(start, start + len));
    at = start + len;
  }
  return out;
}

/** Builds a batch from records (the inverse of splitRecords; for tests and replays). */
export function joinRecords(records: readonly Uint8Array[]): Buffer {
  const total = records.reduce((n, r) => n + RECORD_HEADER_BYTES + r.length, 0);
  const out = Buffer.alloc(total);
  let at = 0;
  for (const r of records) {
    out.writeUInt32LE(r.length, at);
    out.set(r, at + RECORD_HEADER_BYTES);
    at += RECORD_HEADER_BYTES + r.length;
  }
  return out;
}
