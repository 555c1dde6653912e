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
  // Longest run of two or more zero groups, the first one on a tie.
  let bestBase = -1;
  let bestLen = 0;
  let curBase = -1;
  let curLen = 0;
  for (let i = 0; i < 8; i++) {
    if (buf.readUInt16BE(off + 2 * i) === 0) {
      if (curBase === -1) {
        curBase = i;
        curLen = 1;
      } else curLen++;
      if (curLen > bestLen) {
        bestBase = curBase;
        bestLen = curLen;
      }
    } else curBase = -1;
  }
  if (bestLen < 2) bestBase = -1;

  let out = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    if (
      i === 6 &&
      bestBase === 0 &&
      (bestLen === 6 || (bestLen === 5 && buf.readUInt16BE(off + 10) === 0xffff))
    ) {
      return out + formatIPv4(buf, off + 12);
    }
    out += buf.readUInt16BE(off + 2 * i).toString(16);
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) out += ':';
  return out;
}

/** Inverse of the formatters, for encoders and tests. Accepts what the formatters produce. */
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
