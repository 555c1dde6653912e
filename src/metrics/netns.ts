/**
 * --netns.all's own metrics: how many namespaces are followed, active and skipped, events from
 * namespaces not followed, and one info series per shown namespace. Every per-namespace metric is
 * the same group as in default mode with a `netns` label (the groups take each namespace's
 * labels); only these are particular to discovery.
 */
import type { Registry } from '@prometheus-io/client';
import { Family } from './family.js';
import type { MetricScope } from './scope.js';

export interface DiscoveryMetrics {
  followed(): number;
  skipped(): number;
  eventsUnmatched(): number;
  /** One per shown namespace: its labels and identity. */
  identities(): Iterable<NetnsIdentity>;
}

/** A shown namespace: its label, inode, and whose it is where the node tells (identity.ts). */
export interface NetnsIdentity {
  netns: string;
  inode: string;
  own: boolean;
  pod?: string | undefined;
  namespace?: string | undefined;
  uid?: string | undefined;
  containerId?: string | undefined;
}

/** The info series' labels: identity labels only where known (an empty label is no label). */
function infoLabels(id: NetnsIdentity): Record<string, string> {
  return {
    netns: id.netns,
    inode: id.inode,
    own: String(id.own),
    ...(id.pod === undefined ? {} : { pod: id.pod }),
    ...(id.namespace === undefined ? {} : { namespace: id.namespace }),
    ...(id.uid === undefined ? {} : { uid: id.uid }),
    ...(id.containerId === undefined ? {} : { container_id: id.containerId }),
  };
}

export function registerNamespaceMetrics(
  registry: Registry,
  scope: MetricScope,
  src: DiscoveryMetrics,
): void {
  new Family(
    registry,
    'conntrack_netns_followed',
    'Network namespaces followed (--netns.all), active or idle; only active ones (with entries) have per-namespace series.',
    'gauge',
    (f) => f.add({}, {}, src.followed()),
  );
  new Family(
    registry,
    'conntrack_netns_active',
    'Followed network namespaces whose table is in use: they have per-namespace series (netns label).',
    'gauge',
    (f) => f.add({}, {}, [...scope.shown()].length),
  );
  new Family(
    registry,
    'conntrack_netns_skipped',
    'Network namespaces found but not followed because --netns.max was reached.',
    'gauge',
    (f) => f.add({}, {}, src.skipped()),
  );
  new Family(
    registry,
    'conntrack_netns_events_unmatched_total',
    'Event datagrams from a namespace id the exporter does not follow (skipped for --netns.max, or just gone).',
    'counter',
    (f) => f.add({}, {}, src.eventsUnmatched()),
  );
  new Family(
    registry,
    'conntrack_netns_info',
    "One per active network namespace: its netns label, nsfs inode, whether it is the exporter's own, and whose it is: the pod (pod, namespace, uid) from its processes' cgroups and /var/log/pods, or a plain container's container_id. Join: * on(instance, netns) group_left(pod, namespace).",
    'gauge',
    (f) => {
      for (const id of src.identities()) f.add({}, infoLabels(id), 1);
    },
  );
}
