/**
 * Pod names from the kubelet's log directories: /var/log/pods/<namespace>_<pod>_<uid>/, one per
 * pod on the node (the CRI logging layout every runtime uses), each holding one directory per
 * container name. The kubelet removes a pod's directory when it removes the pod. Read without
 * API-server credentials: a readdir per rescan.
 *
 * Namespace and pod names are DNS labels and subdomains, so they contain no `_`; the UID is last.
 * A name that does not parse that way is ignored, and the number of directories read is capped: a
 * node user who can write there (root) should not make the exporter read without end.
 */
import { opendir } from 'node:fs/promises';

export interface PodName {
  readonly namespace: string;
  readonly pod: string;
  readonly uid: string;
}

/** Namespace: a DNS label (RFC 1123), at most 63 characters. */
const NAMESPACE = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
/** Pod name: a DNS subdomain, at most 253 characters. */
const POD = /^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$/;
/** A UUID, or a static pod's 32 hex digits. */
const UID = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$/;

/** Directories read from the log root per rescan, at most. */
export const MAX_POD_DIRS = 8192;

/** `<namespace>_<pod>_<uid>` -> its parts; undefined for anything else. */
export function parsePodLogDir(name: string): PodName | undefined {
  const parts = name.split('_');
  if (parts.length !== 3) return undefined;
  const [namespace, pod, uid] = parts as [string, string, string];
  if (!NAMESPACE.test(namespace) || !POD.test(pod) || !UID.test(uid)) return undefined;
  return { namespace, pod, uid };
}

/**
 * The pods under `root` by UID: empty when it does not exist (not a Kubernetes node, or not
 * mounted), at most MAX_POD_DIRS directories looked at.
 */
export async function readPodLogs(root: string, max = MAX_POD_DIRS): Promise<Map<string, PodName>> {
  const pods = new Map<string, PodName>();
  let seen = 0;
  try {
    for await (const entry of await opendir(root)) {
      if (++seen > max) break;
      const p = entry.isDirectory() ? parsePodLogDir(entry.name) : undefined;
      if (p) pods.set(p.uid, p);
    }
  } catch {
    // No log root (not a Kubernetes node, or not mounted), or it went away while read.
  }
  return pods;
}
