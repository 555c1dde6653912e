/**
 * Namespace ids (RTM_NEWNSID / RTM_GETNSID over NETLINK_ROUTE, linux/net_namespace.h). A socket
 * with NETLINK_LISTEN_ALL_NSID receives another namespace's broadcasts only if that namespace has
 * an id as seen from the listener's namespace, and each datagram then carries the id in a control
 * message. So the exporter asks the kernel for the id of every namespace it follows and, when there
 * is none yet, has the kernel assign one (what `ip netns set NAME auto` does). Ids are per pair of
 * namespaces and live as long as the peer namespace: nothing to release.
 */
import { ConntrackError } from '../errors.js';
import { AttributeCursor } from '../netlink/attributes.js';
import { NLMSG_ERROR, NLMSG_HDRLEN, readU16h, writeU16h, writeU32h } from '../netlink/nlmsg.js';
import { type Requester, RequestSocket } from '../netlink/request.js';
import { NetlinkSocket } from '../netlink/transport.js';
import { type ReopenOptions, ResilientRequestSocket, type SocketHealth } from '../sync/resubscribe.js';

const NETLINK_ROUTE = 0;
export const RTM_NEWNSID = 88;
export const RTM_GETNSID = 90;
/** struct rtgenmsg: one byte of family, padded to 4 (NLMSG_ALIGN). */
const RTGENMSG_LEN = 4;
// enum of net_namespace.h
export const NETNSA_NSID = 1;
/** @kernel unused here, kept so that the list reads like the header */
export const NETNSA_PID = 2;
export const NETNSA_FD = 3;
const NETNSA_NSID_NOT_ASSIGNED = -1;
const EEXIST = 17;

/**
 * Payload of RTM_GETNSID (nsid undefined) or RTM_NEWNSID (nsid -1: the kernel picks one) for the
 * namespace open as file descriptor `fd` in this process. Attributes are host byte order.
 */
export function encodeNsidRequest(fd: number, nsid?: number): Buffer {
  const attrs = nsid === undefined ? 1 : 2;
  const b = Buffer.alloc(RTGENMSG_LEN + attrs * 8);
  let off = RTGENMSG_LEN; // rtgen_family AF_UNSPEC (0) and padding
  writeU16h(b, 8, off); // nla_len
  writeU16h(b, NETNSA_FD, off + 2); // NETNSA_FD: u32
  writeU32h(b, fd >>> 0, off + 4);
  off += 8;
  if (nsid !== undefined) {
    writeU16h(b, 8, off);
    writeU16h(b, NETNSA_NSID, off + 2); // NETNSA_NSID: s32, -1 = assign
    writeU32h(b, nsid >>> 0, off + 4);
  }
  return b;
}

/** rtnetlink attributes are host byte order. */
const nsidCursor = new AttributeCursor('host');

/**
 * The NETNSA_NSID of an RTM_NEWNSID message at buf[start, end) (the kernel's reply to
 * RTM_GETNSID): an id >= 0, or -1 (NETNSA_NSID_NOT_ASSIGNED).
 */
export function decodeNsidReply(buf: Buffer, start: number, end: number): number {
  if (end - start < NLMSG_HDRLEN + RTGENMSG_LEN || readU16h(buf, start + 4) !== RTM_NEWNSID) {
    throw new ConntrackError('CT_ERR_MESSAGE_TYPE', 'not an RTM_NEWNSID message', { offset: start });
  }
  const c = nsidCursor.reset(buf, start + NLMSG_HDRLEN + RTGENMSG_LEN, end, 'RTM_NEWNSID');
  while (c.next()) if (c.type === NETNSA_NSID) return c.s32('NETNSA_NSID');
  throw new ConntrackError('CT_ERR_MISSING_ATTR', 'RTM_NEWNSID reply without NETNSA_NSID', { offset: start });
}

/**
 * Asks for and assigns namespace ids, from the exporter's own namespace. Its socket is reopened
 * after it breaks (sync/resubscribe.ts); meanwhile a request fails and discovery asks again at
 * its next scan.
 */
export class NsidClient {
  constructor(
    private readonly socket: Requester,
    /** The socket's state, when it reopens itself. */
    readonly health?: SocketHealth,
  ) {}

  static open(log: ReopenOptions['log'], timeoutMs = 5000): NsidClient {
    const socket = new ResilientRequestSocket(
      'nsid',
      (onBroken) => {
        const sock = NetlinkSocket.open(
          NETLINK_ROUTE,
          { slots: 4, slotSize: 8192 },
          'opening the rtnetlink socket',
        );
        return new RequestSocket(sock, timeoutMs, onBroken);
      },
      { log },
    );
    return new NsidClient(socket, socket.health);
  }

  /**
   * The id of the namespace open as `fd` (a NamespaceRef's descriptor, kept by discovery: never
   * reopened from a path, which may name another namespace by now), or -1 if it has none.
   */
  get(fd: number): Promise<number> {
    return this.query(fd);
  }

  /** The id of the namespace open as `fd`, assigned now if it had none. */
  async ensure(fd: number): Promise<number> {
    const id = await this.query(fd);
    if (id >= 0) return id;
    try {
      await this.socket.request(RTM_NEWNSID, 0, encodeNsidRequest(fd, NETNSA_NSID_NOT_ASSIGNED), () => {});
    } catch (err) {
      // Someone else (ip netns set, a CNI plugin) assigned one in between: fine, read it.
      if (!(err instanceof ConntrackError && err.errno === EEXIST)) throw err;
    }
    return this.query(fd);
  }

  close(): void {
    this.socket.close();
  }

  private async query(fd: number): Promise<number> {
    let id: number | undefined;
    await this.socket.request(RTM_GETNSID, 0, encodeNsidRequest(fd), (buf, type, _flags, start, end) => {
      if (type !== NLMSG_ERROR) id = decodeNsidReply(buf, start, end);
    });
    if (id === undefined)
      throw new ConntrackError('CT_ERR_MISSING_ATTR', 'RTM_GETNSID reply carried no message');
    return id;
  }
}
