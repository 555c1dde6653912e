/**
 * Address text as inet_ntop(3) writes it, so flows compare equal to `conntrack -L` output:
 * dotted quad for IPv4; RFC 5952 for IPv6, with glibc's embedded-IPv4 forms (::ffff:a.b.c.d and
 * ::a.b.c.d).
 */
import { isIP } from 'node:net';

export function formatIPv4(buf: Buffer, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

export function formatIPv6(buf: Buffer, off: number): string {
  const [zeroAt, zeros] = longestZeroRun(buf, off);
  const v4 = embeddedIPv4Prefix(buf, off, zeroAt, zeros);
  if (v4 !== undefined) return v4 + formatIPv4(buf, off + 12);
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i >= zeroAt && i < zeroAt + zeros) {
      if (i === zeroAt) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    out += buf.readUInt16BE(off + 2 * i).toString(16);
  }
  if (zeroAt + zeros === 8) out += ':';
  return out;
}

/** glibc writes the last 32 bits as IPv4 after six zero groups (::a.b.c.d) or five and ffff. */
function embeddedIPv4Prefix(buf: Buffer, off: number, zeroAt: number, zeros: number): string | undefined {
  if (zeroAt !== 0) return undefined;
  if (zeros === 6) return '::';
  if (zeros === 5 && buf.readUInt16BE(off + 10) === 0xffff) return '::ffff:';
  return undefined;
}

/** The longest run of two or more zero groups, the first one on a tie: [start, length], or [-1, 0]. */
function longestZeroRun(buf: Buffer, off: number): [number, number] {
  let bestAt = -1;
  let best = 0;
  let runAt = -1;
  for (let i = 0; i < 8; i++) {
    if (buf.readUInt16BE(off + 2 * i) !== 0) {
      runAt = -1;
      continue;
    }
    if (runAt === -1) runAt = i;
    if (i - runAt + 1 > best) {
      bestAt = runAt;
      best = i - runAt + 1;
    }
  }
  return best < 2 ? [-1, 0] : [bestAt, best];
}

/** Address text to bytes, the inverse of the formatters above (client addresses, tests). */
export function parseAddress(text: string): Buffer {
  const kind = isIP(text);
  if (kind === 0) throw new TypeError(`not an IP address: ${text}`);
  if (kind === 4) {
    const parts = text.split('.').map(Number);
    if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
      throw new TypeError(`not an IPv4 address: ${text}`);
    }
    return Buffer.from(parts);
  }
  const out = Buffer.alloc(16);
  let body = text;
  let tail: Buffer | undefined;
  const lastColon = body.lastIndexOf(':');
  if (body.slice(lastColon + 1).includes('.')) {
    tail = parseAddress(body.slice(lastColon + 1));
    body = `${body.slice(0, lastColon + 1)}0:0`;
  }
  const [head = '', rest] = body.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = rest === undefined ? [] : rest === '' ? [] : rest.split(':');
  const missing = 8 - left.length - right.length;
  if ((rest === undefined && missing !== 0) || missing < 0)
    throw new TypeError(`not an IPv6 address: ${text}`);
  const groups = [...left, ...Array<string>(rest === undefined ? 0 : missing).fill('0'), ...right];
  groups.forEach((g, i) => {
    const v = Number.parseInt(g, 16);
    if (!/^[0-9a-fA-F]{1,4}$/.test(g) || Number.isNaN(v)) throw new TypeError(`not an IPv6 address: ${text}`);
    out.writeUInt16BE(v, 2 * i);
  });
  if (tail) tail.copy(out, 12);
  return out;
}
