/**
 * A small protobuf writer for the observer's hot path: GetFlows streams
 * flows faster than a reflective encoder (protobuf-es' toBinary) can write
 * them, so the flows of datapath events are written field by field into
 * one growing buffer, with sub-messages many flows share (endpoints,
 * policies, the membrane extension) written once by protobuf-es and copied
 * in as bytes. Every message it writes is checked against protobuf-es'
 * own encoding in the tests (datapath-flow.test.ts).
 *
 * Nested messages are written with a reserved one-to-three-byte length
 * that is filled in (and the body moved, in the rare case it needs more
 * room than reserved) when the message ends.
 */
const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;

export class ProtoWriter {
  buf: Uint8Array;
  pos = 0;
  private readonly open: number[] = [];

  constructor(size = 1 << 16) {
    this.buf = new Uint8Array(size);
  }

  /** Makes room for n more bytes. */
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.pos));
    this.buf = b;
  }

  reset(): void {
    this.pos = 0;
    this.open.length = 0;
  }

  /** The bytes written since `from`, copied out. */
  take(from = 0): Uint8Array {
    return this.buf.slice(from, this.pos);
  }

  varint(v: number): void {
    this.room(10);
    const b = this.buf;
    let p = this.pos;
    if (v < 0) {
      // int32 negatives are ten bytes of two's complement (not written by the observer; kept correct).
      return this.bigVarint(BigInt.asUintN(64, BigInt(v)));
    }
    while (v > 0x7f) {
      b[p++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    b[p++] = v;
    this.pos = p;
  }

  private bigVarint(v: bigint): void {
    this.room(10);
    while (v > 0x7fn) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  /** A varint field, skipped when 0 (proto3's default). */
  uint(field: number, v: number): void {
    if (v === 0) return;
    this.tag(field, WIRE_VARINT);
    this.varint(v);
  }

  /** A bool field, skipped when false. */
  bool(field: number, v: boolean): void {
    if (!v) return;
    this.tag(field, WIRE_VARINT);
    this.varint(1);
  }

  /** A string field of ASCII text (addresses, uuids), skipped when empty. */
  ascii(field: number, s: string): void {
    if (s.length === 0) return;
    this.tag(field, WIRE_LEN);
    this.varint(s.length);
    this.room(s.length);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** A string field holding a dotted IPv4 address (a host-order number), written without making the string. */
  ipv4(field: number, n: number): void {
    this.tag(field, WIRE_LEN);
    this.room(16);
    const b = this.buf;
    const lenAt = this.pos++;
    let p = this.pos;
    for (let shift = 24; shift >= 0; shift -= 8) {
      const o = (n >>> shift) & 255;
      if (o >= 100) b[p++] = 48 + Math.floor(o / 100);
      if (o >= 10) b[p++] = 48 + (Math.floor(o / 10) % 10);
      b[p++] = 48 + (o % 10);
      if (shift) b[p++] = 46;
    }
    b[lenAt] = p - lenAt - 1;
    this.pos = p;
  }

  /** A string field of any text, skipped when empty. */
  string(field: number, s: string): void {
    if (s.length === 0) return;
    // eslint-disable-next-line no-control-regex
    if (/^[\x00-\x7f]*$/.test(s)) return this.ascii(field, s);
    this.bytesField(field, new TextEncoder().encode(s));
  }

  /** A length-delimited field with these bytes as its body (a sub-message written once). */
  bytesField(field: number, body: Uint8Array): void {
    this.tag(field, WIRE_LEN);
    this.varint(body.length);
    this.raw(body);
  }

  /** Bytes as they are (fields already encoded). */
  raw(bytes: Uint8Array): void {
    this.room(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Begins a sub-message field; end() closes the innermost. */
  begin(field: number): void {
    this.tag(field, WIRE_LEN);
    this.room(2);
    this.open.push(this.pos);
    this.pos += 2; // room for a length < 16384; end() moves the body when longer
  }

  end(): void {
    const at = this.open.pop()!;
    const len = this.pos - at - 2;
    if (len < 128) {
      // One length byte: move the body back by one.
      this.buf[at] = len;
      this.buf.copyWithin(at + 1, at + 2, this.pos);
      this.pos -= 1;
    } else if (len < 16384) {
      this.buf[at] = (len & 0x7f) | 0x80;
      this.buf[at + 1] = len >>> 7;
    } else {
      const lenBytes = varintLength(len);
      this.room(lenBytes - 2);
      this.buf.copyWithin(at + lenBytes, at + 2, this.pos);
      this.pos += lenBytes - 2;
      let p = at;
      let v = len;
      while (v > 0x7f) {
        this.buf[p++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      this.buf[p] = v;
    }
  }

  /** A gRPC message frame: the uncompressed flag and a 4-byte big-endian length, filled by endFrame(). */
  beginFrame(): number {
    this.room(5);
    const at = this.pos;
    this.buf[at] = 0;
    this.pos += 5;
    return at;
  }

  endFrame(at: number): void {
    const len = this.pos - at - 5;
    this.buf[at + 1] = len >>> 24;
    this.buf[at + 2] = (len >>> 16) & 255;
    this.buf[at + 3] = (len >>> 8) & 255;
    this.buf[at + 4] = len & 255;
  }

  /** A google.protobuf.Timestamp sub-message. */
  timestamp(field: number, seconds: number, nanos: number): void {
    this.begin(field);
    this.uint(1, seconds);
    this.uint(2, nanos);
    this.end();
  }
}

export function varintLength(v: number): number {
  let n = 1;
  while (v > 0x7f) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

export { WIRE_FIXED64, WIRE_LEN, WIRE_VARINT };
