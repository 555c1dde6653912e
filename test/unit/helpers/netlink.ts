/**
 * For fake Transports that stand in for the kernel under a RequestSocket: batches laid out as the
 * addon lays them out, and the kernel's NLMSG_ERROR acknowledgement.
 */
import { encodeMessage, NLMSG_ERROR, NLMSG_HDRLEN } from '../../../src/netlink/nlmsg.js';
import { type Batch, META_FIELDS } from '../../../src/netlink/transport.js';

/**
 * Datagrams as one batch, each in its own 4 KiB slot as the addon receives them. `nsids` are the
 * namespace ids they came from (-1, the default: none); datagram `truncated` is marked cut short.
 */
export function batchOf(
  datagrams: readonly Buffer[],
  opts: { nsids?: readonly number[]; truncated?: number } = {},
): Batch {
  const slot = 4096;
  const buf = Buffer.alloc(slot * datagrams.length);
  const meta = new Int32Array(datagrams.length * META_FIELDS);
  datagrams.forEach((d, i) => {
    d.copy(buf, i * slot);
    meta[i * META_FIELDS] = i * slot;
    meta[i * META_FIELDS + 1] = i === opts.truncated ? -d.length : d.length;
    meta[i * META_FIELDS + 2] = opts.nsids?.[i] ?? -1;
  });
  return { buf, meta, count: datagrams.length };
}

/** NLMSG_ERROR for `seq`: an acknowledgement (errno 0) or the kernel's error. */
export function ack(seq: number, errno = 0): Buffer {
  const p = Buffer.alloc(4 + NLMSG_HDRLEN);
  p.writeInt32LE(-errno);
  return encodeMessage(NLMSG_ERROR, 0, seq, p);
}
