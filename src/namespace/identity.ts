/**
 * Who a followed namespace belongs to, from the node alone (--netns.all): the processes discovery
 * found in it, their cgroups (cgroup-identity.ts: pod UID, or a plain container's id) and the
 * kubelet's pod log directories (pod-logs.ts: UID -> namespace and pod name). Resolved afresh at
 * every rescan, so a name disappears with the last process of its pod or with the pod's log
 * directory.
 *
 * A namespace is named only when every process sampled in it names the same pod (or the same
 * container): the node's own namespace holds host processes and every hostNetwork pod, and must
 * not take the name of whichever pod's process was listed first.
 */
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { identityOfCgroup } from './cgroup-identity.js';
import { type PodName, readPodLogs } from './pod-logs.js';

export interface NamespaceIdentity {
  /** The pod's UID, from the cgroup path. */
  readonly uid?: string;
  /** Pod name and namespace, from its log directory; absent when it has none (yet). */
  readonly pod?: string;
  readonly namespace?: string;
  /** Outside Kubernetes: the container's id, shortened to 12 digits as `docker ps` shows it. */
  readonly containerId?: string;
}

export interface IdentityRoots {
  /** procfs, normally /proc. */
  proc: string;
  /** The kubelet's pod log directories, normally /var/log/pods. */
  podLogs: string;
}

const DEFAULT_ROOTS: IdentityRoots = { proc: '/proc', podLogs: '/var/log/pods' };
/** /proc/PID/cgroup read at most: v1 has a line per hierarchy, each at most a path long. */
const MAX_CGROUP_BYTES = 65536;
const SHORT_ID = 12;

async function readBounded(path: string): Promise<string | undefined> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(path, 'r');
    const buf = Buffer.alloc(MAX_CGROUP_BYTES);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.toString('utf8', 0, bytesRead);
  } catch {
    return undefined; // the process is gone
  } finally {
    await fh?.close();
  }
}

type Owner = { uid: string } | { containerId: string } | undefined;

const sameOwner = (a: Owner, b: Owner): boolean =>
  a !== undefined &&
  b !== undefined &&
  ('uid' in a ? 'uid' in b && a.uid === b.uid : 'containerId' in b && a.containerId === b.containerId);

/**
 * Reads the identities of namespaces from the processes in them. `pids` per namespace inode are
 * what discovery sampled; a process that has left the namespace since (or a pid reused by another
 * process) is not believed.
 */
export class IdentityResolver {
  constructor(private readonly roots: IdentityRoots = DEFAULT_ROOTS) {}

  async resolve(pids: ReadonlyMap<string, readonly number[]>): Promise<Map<string, NamespaceIdentity>> {
    const pods = await readPodLogs(this.roots.podLogs);
    const out = new Map<string, NamespaceIdentity>();
    await Promise.all(
      [...pids].map(async ([inode, list]) => {
        const id = await this.identityOf(inode, list, pods);
        if (id) out.set(inode, id);
      }),
    );
    return out;
  }

  private async identityOf(
    inode: string,
    pids: readonly number[],
    pods: ReadonlyMap<string, PodName>,
  ): Promise<NamespaceIdentity | undefined> {
    let owner: Owner;
    for (const pid of pids) {
      const o = await this.ownerOf(inode, pid);
      if (o === undefined) continue; // gone or moved: says nothing
      if (o === 'none') return undefined;
      if (owner !== undefined && !sameOwner(owner, o)) return undefined;
      owner = o;
    }
    if (owner === undefined) return undefined;
    if ('containerId' in owner) return { containerId: owner.containerId.slice(0, SHORT_ID) };
    const p = pods.get(owner.uid);
    return p ? { uid: owner.uid, pod: p.pod, namespace: p.namespace } : { uid: owner.uid };
  }

  /** The pod or container of `pid`, 'none' for a process of neither, undefined if no longer in `inode`. */
  private async ownerOf(inode: string, pid: number): Promise<Owner | 'none'> {
    const dir = join(this.roots.proc, String(pid));
    const text = await readBounded(join(dir, 'cgroup'));
    if (text === undefined) return undefined;
    // Read after the cgroup: a pid reused in between shows another namespace here.
    const st = await stat(join(dir, 'ns/net'), { bigint: true }).catch(() => undefined);
    if (st === undefined || String(st.ino) !== inode) return undefined;
    const id = identityOfCgroup(text);
    if (id?.podUid !== undefined) return { uid: id.podUid };
    if (id?.containerId !== undefined) return { containerId: id.containerId };
    return 'none';
  }
}
