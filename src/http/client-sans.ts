/**
 * exporter-toolkit's `client_allowed_sans`: the client certificate must carry a Subject
 * Alternative Name equal to one in the list. Like Go's VerifyPeerCertificate there, the values
 * compared are the DNS names, e-mail addresses, IP addresses (as Go's net.IP.String writes them:
 * dotted IPv4, compressed lower-case IPv6, IPv4-mapped IPv6 as IPv4) and URIs, as exact strings.
 */
import type { X509Certificate } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

/** Go's net.IP.String() of an address as OpenSSL prints it (upper-case, uncompressed IPv6). */
function goIpString(text: string): string {
  if (isIPv4(text) || !isIPv6(text)) return text;
  // The WHATWG serialiser compresses as Go does: the first longest run of two or more zero groups.
  const ip = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(ip);
  if (mapped === null) return ip;
  const hi = Number.parseInt(mapped[1] ?? '0', 16);
  const lo = Number.parseInt(mapped[2] ?? '0', 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** A JSON string literal starting at `from` (its opening quote) -> [value, index after it]. */
function jsonString(text: string, from: number): [string, number] {
  let end = from + 1;
  while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
  return [JSON.parse(text.slice(from, end + 1)) as string, end + 1];
}

/**
 * Node's subjectAltName text ("DNS:a, IP Address:1.2.3.4, URI:\"x,y\"") -> [type, value]. A value
 * that could be misread (a comma in it) is a JSON string literal (CVE-2021-44532).
 */
export function splitAltNames(text: string): [string, string][] {
  const out: [string, string][] = [];
  let at = 0;
  while (at < text.length) {
    const colon = text.indexOf(':', at);
    if (colon < 0) break;
    let value: string;
    let end: number;
    if (text[colon + 1] === '"') {
      [value, end] = jsonString(text, colon + 1);
    } else {
      const comma = text.indexOf(', ', colon);
      end = comma < 0 ? text.length : comma;
      value = text.slice(colon + 1, end);
    }
    out.push([text.slice(at, colon), value]);
    at = end + 2;
  }
  return out;
}

/** The SAN values Go's exporter-toolkit compares, in Go's spelling. */
export function certificateSans(cert: X509Certificate): string[] {
  const text = cert.subjectAltName;
  if (text === undefined) return [];
  return splitAltNames(text).flatMap(([type, value]) => {
    if (type === 'DNS' || type === 'email' || type === 'URI') return [value];
    if (type === 'IP Address') return [goIpString(value)];
    return [];
  });
}

/** True when the certificate carries one of the allowed SANs; a certificate that does not parse: false. */
export function hasAllowedSan(cert: X509Certificate | undefined, allowed: readonly string[]): boolean {
  if (cert === undefined) return false;
  try {
    return certificateSans(cert).some((san) => allowed.includes(san));
  } catch {
    return false;
  }
}
