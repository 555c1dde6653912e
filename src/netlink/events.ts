/**
 * The ctnetlink event socket: joined to the NEW/UPDATE/DESTROY groups. NETLINK_NO_ENOBUFS is set,
 * so a full receive queue never fails the socket; the kernel's drop counter for the socket, read
 * by the addon after every batch, reports each loss (an overrun: the shadow table must resync).
 * Reopening it after a failure is synchronisation's business (sync/resubscribe.ts).
 */
import { ConntrackError } from '../errors.js';
import { NFNLGRP_CONNTRACK_DESTROY, NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_UPDATE } from './nfnetlink.js';
import {
  type Batch,
  NETLINK_ADD_MEMBERSHIP,
  NETLINK_LISTEN_ALL_NSID,
  NETLINK_NETFILTER,
  NETLINK_NO_ENOBUFS,
  NetlinkSocket,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SOL_NETLINK,
  SOL_SOCKET,
  socketError,
} from './transport.js';

export interface EventSocketHandlers {
  /** Event datagrams; each usually holds one event message. */
  onBatch(batch: Batch): void;
  /** The kernel dropped `lost` event messages for us: the receive queue was full. */
  onOverrun(lost: number): void;
  /** Any other socket failure; the socket may be unusable afterwards. */
  onError(err: ConntrackError): void;
}

export interface EventSocketOptions {
  /** Receive buffer in bytes; set with SO_RCVBUFFORCE, so net.core.rmem_max does not cap it. */
  rcvbuf?: number | undefined;
  /** A network namespace's file descriptor, as OpenOptions.netns. */
  netns?: number | undefined;
  /**
   * Also receive the events of every namespace that has an id as seen from this one (--netns.all);
   * each datagram's id is in the batch meta. Needs CAP_NET_BROADCAST here, and the kernel checks
   * it again over each sending namespace.
   */
  listenAllNsid?: boolean | undefined;
}

/** Events are small (a few hundred bytes); 256 a read keeps syscalls rare under a flood. */
const EVENT_SLOTS = 256;
const EVENT_SLOT_SIZE = 8192;
/**
 * At 100,000 events/s, 5 ms gathers 500 events (about 0.6 MB of the default 16 MiB buffer) per
 * wake-up. Metrics are read every few seconds; a few milliseconds of delay cost nothing.
 */
const EVENT_PAUSE_MS = 5;

export class EventSocket {
  private readonly sock: NetlinkSocket;

  constructor(handlers: EventSocketHandlers, options: EventSocketOptions = {}) {
    this.sock = NetlinkSocket.open(
      NETLINK_NETFILTER,
      { slots: EVENT_SLOTS, slotSize: EVENT_SLOT_SIZE, netns: options.netns, pauseMs: EVENT_PAUSE_MS },
      'opening the ctnetlink event socket',
    );
    try {
      this.sock.setInt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1);
      if (options.listenAllNsid) {
        try {
          this.sock.setInt(SOL_NETLINK, NETLINK_LISTEN_ALL_NSID, 1);
        } catch (err) {
          throw new ConntrackError(
            'CT_ERR_PERMISSION',
            'NETLINK_LISTEN_ALL_NSID (--netns.all) was refused: it needs CAP_NET_BROADCAST (add NET_BROADCAST to the container capabilities)',
            { cause: err },
          );
        }
      }
      if (options.rcvbuf !== undefined) {
        try {
          this.sock.setInt(SOL_SOCKET, SO_RCVBUFFORCE, options.rcvbuf);
        } catch {
          // Without CAP_NET_ADMIN in the socket's namespace: the capped SO_RCVBUF still helps.
          this.sock.setInt(SOL_SOCKET, SO_RCVBUF, options.rcvbuf);
        }
      }
      for (const group of [NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_UPDATE, NFNLGRP_CONNTRACK_DESTROY]) {
        this.sock.setInt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group);
      }
      this.sock.start(
        (batch, lost) => {
          if (batch.count > 0) handlers.onBatch(batch);
          if (lost > 0) handlers.onOverrun(lost);
        },
        (err) => handlers.onError(err),
      );
    } catch (err) {
      this.sock.close();
      throw err instanceof ConntrackError ? err : socketError(err, 'joining the ctnetlink event groups');
    }
  }

  /** The effective SO_RCVBUF, as the kernel reports it (twice what was granted). */
  get receiveBufferSize(): number {
    return this.sock.getInt(SOL_SOCKET, SO_RCVBUF);
  }

  close(): void {
    this.sock.close();
  }
}
