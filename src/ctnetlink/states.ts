/**
 * Protocol state machines as the kernel numbers them: TCP (nf_conntrack_tcp.h), SCTP
 * (nf_conntrack_sctp.h) and DCCP (nf_conntrack_dccp.h, not shipped in uapi everywhere; DCCP
 * tracking was removed from recent kernels). Names are the kernel's, as `conntrack -L` prints them.
 */
export const TCP_STATES = [
  'NONE',
  'SYN_SENT',
  'SYN_RECV',
  'ESTABLISHED',
  'FIN_WAIT',
  'CLOSE_WAIT',
  'LAST_ACK',
  'TIME_WAIT',
  'CLOSE',
  'SYN_SENT2', // TCP_CONNTRACK_LISTEN, reused for simultaneous open
] as const;

export const SCTP_STATES = [
  'NONE',
  'CLOSED',
  'COOKIE_WAIT',
  'COOKIE_ECHOED',
  'ESTABLISHED',
  'SHUTDOWN_SENT',
  'SHUTDOWN_RECD',
  'SHUTDOWN_ACK_SENT',
  'HEARTBEAT_SENT',
  'HEARTBEAT_ACKED', // no longer used by the kernel
] as const;

export const DCCP_STATES = [
  'NONE',
  'REQUEST',
  'RESPOND',
  'PARTOPEN',
  'OPEN',
  'CLOSEREQ',
  'CLOSING',
  'TIMEWAIT',
  'IGNORE',
  'INVALID',
] as const;

/**
 * Name of state `n` in `table`, or `UNKNOWN` for a number beyond it (one a newer kernel adds):
 * one label per protocol, so no number can mint a series of its own.
 */
export function stateName(table: readonly string[], n: number): string {
  return table[n] ?? 'UNKNOWN';
}
