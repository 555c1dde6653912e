/**
 * What net.netfilter.nf_conntrack_events means for the exporter, said once at start-up.
 *
 * The kernel attaches the event cache to a flow when the flow is created: with mode 1 always,
 * with mode 2 (the default since Linux 6.0) only if a process listens to ctnetlink events at
 * that moment (anywhere on the host: listeners are tracked globally), with mode 0 never. A flow without it sends no UPDATE or DESTROY, ever: a silent
 * flow, followed only by re-dumps. The sysctl is per network namespace.
 */

export interface EventModeNotice {
  level: 'info' | 'warn';
  mode: number | undefined;
  msg: string;
}

export function eventModeNotice(mode: number | undefined): EventModeNotice {
  switch (mode) {
    case 1:
      return {
        level: 'info',
        mode,
        msg: 'nf_conntrack_events=1: every flow created from now on sends events, also while the exporter is down; only flows older than the setting are silent',
      };
    case 2:
      return {
        level: 'info',
        mode,
        msg: 'nf_conntrack_events=2: flows created while no process on the host listens to conntrack events (before start-up, during restarts) never send events; they are counted from dumps and followed by re-dumps and the drift check, so their state changes show late. Set net.netfilter.nf_conntrack_events=1 on the host to avoid it (see README)',
      };
    case 0:
      return {
        level: 'warn',
        mode,
        msg: 'nf_conntrack_events=0: the kernel sends no conntrack events; flows are seen only through re-dumps and the drift check. Set --resync.interval, or net.netfilter.nf_conntrack_events=1',
      };
    default:
      return {
        level: 'warn',
        mode,
        msg: 'net.netfilter.nf_conntrack_events could not be read; flows created while no process listened may send no events',
      };
  }
}
