/**
 * The interface addresses of a network namespace (RTM_GETADDR over NETLINK_ROUTE, linux/if_addr.h),
 * read inside it: a route socket opened in the namespace by its descriptor (as the unit's request
 * sockets are), one dump of every family, closed again. Under --netns.all they turn a top source or
 * destination into the namespace (and pod) that holds it.
 *
 * Only addresses that name one namespace are kept: host-scope ones (127.0.0.1, ::1) and link-scope
 * ones (fe80::/10, 169.254/16) exist in many namespaces at once.
 */
import { formatIPv4, formatIPv6 } from '../ctnetlink/address.js';
import { ConntrackError } from '../errors.js';
import { AttributeCursor } from '../netlink/attributes.js';
import { NLM_F_DUMP, NLMSG_HDRLEN, readU16h } from '../netlink/nlmsg.js';
import { RequestSocket } from '../netlink/request.js';
import { NetlinkSocket } from '../netlink/transport.js';

const NETLINK_ROUTE = 0;
export const RTM_NEWADDR = 20;
export const RTM_GETADDR = 22;
/** struct ifaddrmsg: family, prefixlen, flags, scope (u8 each), index (u32). */
const IFADDRMSG_LEN = 8;
// enum of if_addr.h
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
const AF_INET = 2;
const AF_INET6 = 10;
/** rt_scope_t: link (253) and host (254) scopes are not unique to a namespace. */
const RT_SCOPE_LINK = 253;
/** Addresses kept per namespace, at most: a namespace's owner can add as many as it likes. */
export const MAX_ADDRESSES = 64;
/**
 * rtnetlink sizes dump datagrams up to 32 KiB for a reader that takes them; a handful of slots is
 * enough, the socket lives for one dump.
 */
const SLOTS = 4;
const SLOT_SIZE = 32768;
const TIMEOUT_MS = 5000;

/** RTM_GETADDR dump request for every family: an ifaddrmsg of zeros (AF_UNSPEC). */
export function encodeGetAddr(): Buffer {
  return Buffer.alloc(IFADDRMSG_LEN);
}

const cursor = new AttributeCursor('host');

/**
 * The address of one RTM_NEWADDR message at buf[start, end) as inet_ntop writes it, or undefined
 * for another family or a link/host-scope address. IFA_LOCAL is the interface's own address (on a
 * point-to-point link IFA_ADDRESS is the peer's), IFA_ADDRESS when there is no IFA_LOCAL (IPv6).
 */
export function decodeAddress(buf: Buffer, start: number, end: number): string | undefined {
  if (end - start < NLMSG_HDRLEN + IFADDRMSG_LEN || readU16h(buf, start + 4) !== RTM_NEWADDR) {
    throw new ConntrackError('CT_ERR_MESSAGE_TYPE', 'not an RTM_NEWADDR message', { offset: start });
  }
  const family = buf[start + NLMSG_HDRLEN]!;
  const scope = buf[start + NLMSG_HDRLEN + 3]!;
  const size = family === AF_INET ? 4 : family === AF_INET6 ? 16 : 0;
  if (size === 0 || scope >= RT_SCOPE_LINK) return undefined;
  const c = cursor.reset(buf, start + NLMSG_HDRLEN + IFADDRMSG_LEN, end, 'RTM_NEWADDR');
  let at: number | undefined;
  while (c.next()) {
    if (c.type === IFA_LOCAL) at = c.fixed('IFA_LOCAL', size);
    else if (c.type === IFA_ADDRESS && at === undefined) at = c.fixed('IFA_ADDRESS', size);
  }
  if (at === undefined) return undefined;
  return size === 4 ? formatIPv4(buf, at) : formatIPv6(buf, at);
}

/** Dumps the addresses through `socket` (a route socket); at most MAX_ADDRESSES, sorted. */
export async function dumpAddresses(socket: RequestSocket): Promise<string[]> {
  const out = new Set<string>();
  await socket.request(RTM_GETADDR, NLM_F_DUMP, encodeGetAddr(), (buf, type, _flags, start, end) => {
    if (type !== RTM_NEWADDR || out.size >= MAX_ADDRESSES) return;
    const a = decodeAddress(buf, start, end);
    if (a !== undefined) out.add(a);
  });
  return [...out].sort();
}

/**
 * The addresses of the namespace open as `netns` (undefined: the exporter's own), read inside it.
 * Throws CT_ERR_SOCKET when it cannot be entered (gone, or no CAP_SYS_ADMIN).
 */
export async function readAddresses(netns: number | undefined): Promise<string[]> {
  const sock = NetlinkSocket.open(
    NETLINK_ROUTE,
    { slots: SLOTS, slotSize: SLOT_SIZE, netns },
    'opening a route socket inside a network namespace',
  );
  const socket = new RequestSocket(sock, TIMEOUT_MS);
  try {
    return await dumpAddresses(socket);
  } finally {
    socket.close();
  }
}
