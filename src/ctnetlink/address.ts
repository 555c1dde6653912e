/**
 * Address text as inet_ntop(3) writes it, so flows compare equal to `conntrack -L` output:
 * dotted quad for IPv4; RFC 5952 for IPv6, with glibc's embedded-IPv4 forms (::ffff:a.b.c.d and
 * ::a.b.c.d).
 */

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
