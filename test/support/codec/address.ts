/**
 * Address text to bytes, the inverse of src/ctnetlink/address.ts's formatters (which the exporter
 * runs): for the encoders and tests. Accepts what the formatters produce.
 */
import { isIP } from 'node:net';

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
