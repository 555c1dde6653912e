/**
 * The timeouts the kernel gives flows, per protocol and state: the
 * net.netfilter.nf_conntrack_<protocol>_timeout[_<state>] sysctls of a namespace (each namespace
 * has its own), in seconds. They change rarely, but are read at every scrape like the other
 * sysctls rather than cached: the 25 files of Linux 6.18, read at once, cost ~60-200 µs in
 * another namespace (a pread each on a kept file) and ~300 µs in our own (open, read, close by
 * path), where reading them through the thread pool cost 1-4 ms of CPU per scrape.
 *
 * The names are a fixed list of the ones kernels have had, so no sysctl can mint a series we do
 * not know; a name this kernel lacks (DCCP and UDP-Lite were removed, SCTP's heartbeat_acked
 * too) is looked for once and then left alone.
 */
import { type ProcFiles, readSysctlSync } from './proc.js';

/** Every timeout sysctl known, without the `nf_conntrack_` prefix. */
const TIMEOUT_SYSCTLS = [
  ...[
    'syn_sent',
    'syn_recv',
    'established',
    'fin_wait',
    'close_wait',
    'last_ack',
    'time_wait',
    'close',
    'max_retrans',
    'unacknowledged',
  ].map((s) => `tcp_timeout_${s}`),
  'udp_timeout',
  'udp_timeout_stream',
  'udplite_timeout',
  'udplite_timeout_stream',
  'icmp_timeout',
  'icmpv6_timeout',
  'generic_timeout',
  'gre_timeout',
  'gre_timeout_stream',
  ...[
    'closed',
    'cookie_wait',
    'cookie_echoed',
    'established',
    'shutdown_sent',
    'shutdown_recd',
    'shutdown_ack_sent',
    'heartbeat_sent',
    'heartbeat_acked',
  ].map((s) => `sctp_timeout_${s}`),
  ...['request', 'respond', 'partopen', 'open', 'closereq', 'closing', 'timewait'].map(
    (s) => `dccp_timeout_${s}`,
  ),
].map((n) => `nf_conntrack_${n}`);

export interface TimeoutLabels {
  /** As conntrack_flows names it: tcp, udp, udplite, icmp, icmpv6, gre, sctp, dccp; `generic` for the rest. */
  protocol: string;
  /**
   * The state the timeout applies in, as conntrack_flows names states: TCP, SCTP and DCCP their
   * kernel states (TCP adds MAX_RETRANS and UNACKNOWLEDGED, which replace the state's timeout
   * while segments are retransmitted or unacknowledged); UDP, UDP-Lite and GRE UNREPLIED (the
   * plain timeout, also for replied flows the kernel has not yet marked assured) and ASSURED (the
   * `_stream` timeout); ICMP, ICMPv6 and generic ALL (one timeout for every flow).
   */
  state: string;
}

/** Protocols whose flows have an unreplied and a `_stream` (assured) timeout. */
const STREAM_PROTOCOLS = new Set(['udp', 'udplite', 'gre']);

/**
 * Labels of a timeout sysctl's name; undefined for a name that is not a flow timeout
 * (nf_conntrack_frag6_timeout is IPv6 reassembly's, nf_conntrack_tcp_max_retrans a count).
 */
export function timeoutLabels(name: string): TimeoutLabels | undefined {
  const m = /^nf_conntrack_([a-z0-9]+)_timeout(?:_([a-z_]+))?$/.exec(name);
  const protocol = m?.[1];
  if (m === null || protocol === undefined || protocol === 'frag6') return undefined;
  const suffix = m[2];
  if (STREAM_PROTOCOLS.has(protocol)) {
    if (suffix === undefined) return { protocol, state: 'UNREPLIED' };
    return suffix === 'stream' ? { protocol, state: 'ASSURED' } : undefined;
  }
  return { protocol, state: suffix === undefined ? 'ALL' : suffix.toUpperCase() };
}

export interface Timeout extends TimeoutLabels {
  seconds: number;
}

const KNOWN = TIMEOUT_SYSCTLS.map((name) => {
  const labels = timeoutLabels(name);
  if (!labels) throw new Error(`${name} is not a timeout sysctl`);
  return { name, ...labels };
});

/** One namespace's timeouts. */
export class TimeoutReader {
  /** Names this kernel does not have: sysctls of the built-in protocols never appear later. */
  private readonly absent = new Set<string>();

  constructor(private readonly files: ProcFiles) {}

  /** The timeouts this kernel has; one that cannot be read is left out and reported to `failed`. */
  read(failed: () => void): Timeout[] {
    const out: Timeout[] = [];
    for (const { name, protocol, state } of KNOWN) {
      if (this.absent.has(name)) continue;
      try {
        const seconds = readSysctlSync(this.files, name);
        if (seconds === undefined) this.absent.add(name);
        else out.push({ protocol, state, seconds });
      } catch {
        failed();
      }
    }
    return out;
  }
}
