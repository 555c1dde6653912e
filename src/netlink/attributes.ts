/**
 * The netlink attribute walk (struct nlattr, linux/netlink.h), the one every decoder uses: the
 * event and dump path, the statistics, the namespace ids. Headers are host byte order; payloads
 * are big-endian in nfnetlink and host order in rtnetlink, so the byte order is the cursor's.
 *
 * Allocation-free: a cursor is reset onto a region and walked with next(); entering a nest
 * reuses one child cursor per depth (created on first use), so a decoder that keeps its root
 * cursor allocates nothing per message, attribute or nest. Lengths and nesting are checked before
 * a payload is read, and anything malformed throws ConntrackError with the offending offset.
 */
import { endianness } from 'node:os';
import { ConntrackError } from '../errors.js';
import { align4, readU16h } from './nlmsg.js';

export const NLA_HDRLEN = 4;
export const NLA_F_NESTED = 0x8000;
const NLA_F_NET_BYTEORDER = 0x4000;
const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

/** How a netlink family stores scalar payloads: nfnetlink big-endian, rtnetlink host order. */
export type ByteOrder = 'big-endian' | 'host';

const EMPTY = Buffer.alloc(0);

export class AttributeCursor {
  /** The buffer the offsets point into (usually a whole receive area: offsets are absolute). */
  buf: Buffer = EMPTY;
  /** Names the enclosing attribute or message in error messages. */
  where = '';
  /** After next() returned true: the attribute's type (flags masked off), its nested flag, payload. */
  type = 0;
  nested = false;
  start = 0;
  end = 0;
  private off = 0;
  private limit = 0;
  /** Scalars are big-endian (always in nfnetlink; in rtnetlink on a big-endian host). */
  private readonly be: boolean;
  private child: AttributeCursor | undefined;

  constructor(readonly order: ByteOrder) {
    this.be = order === 'big-endian' || endianness() === 'BE';
  }

  /** Walks the attributes in buf[from, to) from the first. */
  reset(buf: Buffer, from: number, to: number, where: string): this {
    this.buf = buf;
    this.off = from;
    this.limit = to;
    this.where = where;
    this.type = 0;
    this.nested = false;
    this.start = from;
    this.end = from;
    return this;
  }

  /** Steps to the next attribute; false at the end of the region. */
  next(): boolean {
    const off = this.off;
    const limit = this.limit;
    if (off >= limit) return false;
    if (limit - off < NLA_HDRLEN) throw this.truncated(off);
    const len = readU16h(this.buf, off);
    const rawType = readU16h(this.buf, off + 2);
    if (len < NLA_HDRLEN || off + len > limit) throw this.overrun(off, len, rawType);
    this.type = rawType & NLA_TYPE_MASK;
    this.nested = (rawType & NLA_F_NESTED) !== 0;
    this.start = off + NLA_HDRLEN;
    this.end = off + len;
    // The last attribute of a nest may be unpadded; overshooting `limit` just ends the walk.
    this.off = off + align4(len);
    return true;
  }

  /**
   * The children of the current attribute, on this cursor's child (one per depth, reused: valid
   * until this cursor enters another nest). A nest without NLA_F_NESTED is accepted: kernels
   * before 5.2 did not set it.
   */
  enter(name: string): AttributeCursor {
    this.child ??= new AttributeCursor(this.order);
    return this.child.reset(this.buf, this.start, this.end, name);
  }

  /** Checks a fixed-size scalar payload and returns its offset in `buf`. */
  fixed(name: string, size: number): number {
    if (this.nested) throw this.nestedScalar(name);
    if (this.end - this.start !== size) throw this.wrongLength(name, size);
    return this.start;
  }

  u8(name: string): number {
    return this.buf[this.fixed(name, 1)]!;
  }

  u16(name: string): number {
    const at = this.fixed(name, 2);
    return this.be ? this.buf.readUInt16BE(at) : this.buf.readUInt16LE(at);
  }

  u32(name: string): number {
    const at = this.fixed(name, 4);
    return this.be ? this.buf.readUInt32BE(at) : this.buf.readUInt32LE(at);
  }

  s32(name: string): number {
    return this.u32(name) | 0;
  }

  u64(name: string): bigint {
    const at = this.fixed(name, 8);
    return this.be ? this.buf.readBigUInt64BE(at) : this.buf.readBigUInt64LE(at);
  }

  /** A u64 as a double, without a BigInt: exact below 2^53 (nanosecond clocks lose < 0.2 µs). */
  u64Number(name: string): number {
    const at = this.fixed(name, 8);
    const b = this.buf;
    return this.be
      ? b.readUInt32BE(at) * 4294967296 + b.readUInt32BE(at + 4)
      : b.readUInt32LE(at + 4) * 4294967296 + b.readUInt32LE(at);
  }

  /** A NUL-terminated string (helper names, security contexts). */
  string(name: string): string {
    if (this.nested) throw this.nestedScalar(name);
    let stop = this.start;
    while (stop < this.end && this.buf[stop] !== 0) stop++;
    return this.buf.toString('utf8', this.start, stop);
  }

  /** A copy of the payload. */
  bytes(name: string): Buffer {
    if (this.nested) throw this.nestedScalar(name);
    return Buffer.from(this.buf.subarray(this.start, this.end));
  }

  // Errors are built out of line so that next() and fixed() stay small enough to inline.

  private truncated(off: number): ConntrackError {
    return new ConntrackError(
      'CT_ERR_TRUNCATED',
      `${this.where}: ${this.limit - off} bytes left, too few for an attribute header`,
      { offset: off },
    );
  }

  private overrun(off: number, len: number, rawType: number): ConntrackError {
    return new ConntrackError(
      'CT_ERR_TRUNCATED',
      `${this.where}: attribute type ${rawType & NLA_TYPE_MASK} declares length ${len}, ${this.limit - off} bytes left`,
      { offset: off },
    );
  }

  private nestedScalar(name: string): ConntrackError {
    return new ConntrackError('CT_ERR_NESTING', `${name}: scalar attribute carries the nested flag`, {
      offset: this.start - NLA_HDRLEN,
    });
  }

  private wrongLength(name: string, size: number): ConntrackError {
    return new ConntrackError(
      'CT_ERR_ATTR_LENGTH',
      `${name}: payload of ${this.end - this.start} bytes, expected ${size}`,
      { offset: this.start - NLA_HDRLEN },
    );
  }
}
