/**
 * The unit a client is limited by (connections, failed logins): an IPv4 address, or an IPv6 /64.
 * A host or subscriber owns a whole /64 and can use any of its 2⁶⁴ addresses, so limits per
 * /128 would limit nothing. IPv4-mapped IPv6 addresses (a dual-stack socket) count as IPv4.
 */
import { parseAddress } from '../ctnetlink/address.js';

export function clientKey(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  let bytes: Buffer;
  try {
    bytes = parseAddress(address);
  } catch {
    return address;
  }
  if (bytes.length === 4) return address;
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes.readUInt16BE(10) === 0xffff;
  if (mapped) return bytes.subarray(12).join('.');
  return `${bytes.subarray(0, 8).toString('hex')}::/64`;
}
