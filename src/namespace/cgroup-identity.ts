/**
 * Whose a process is, read from its cgroup path (/proc/PID/cgroup): the kubelet names every pod's
 * cgroup after the pod's UID and every container's after its id, for both cgroup drivers and both
 * cgroup versions:
 *
 *   systemd   .../kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid, _ for ->.slice/cri-containerd-<id>.scope
 *             (CRI-O: crio-<id>.scope, cri-dockerd: docker-<id>.scope; guaranteed pods one level
 *             higher: kubepods.slice/kubepods-pod<uid>.slice/...)
 *   cgroupfs  .../kubepods/burstable/pod<uid>/<id>    (guaranteed: kubepods/pod<uid>/<id>)
 *
 * Outside Kubernetes a container runtime names the container's cgroup after its id: docker
 * (`docker-<id>.scope`, `/docker/<id>`), podman (`libpod-<id>.scope`, `/libpod_parent/libpod-<id>`),
 * nerdctl (`nerdctl-<id>.scope`).
 *
 * Pure: a path in, what it names out. The outermost pod segment wins: a process that can create
 * cgroups below its own (a pod with CAP_SYS_ADMIN and its own cgroup namespace) can append any
 * names, but cannot change what the kubelet put above it.
 */

export interface CgroupIdentity {
  /** The pod UID with dashes (static pods: the 32 hex digits of their config hash). */
  readonly podUid: string | undefined;
  /** The container's (or pod sandbox's) id, 64 hex digits, as the runtime names it. */
  readonly containerId: string | undefined;
  /** Which runtime named the container's cgroup: `containerd`, `crio`, `docker`, `podman`, `nerdctl`. */
  readonly runtime: string | undefined;
}

/** A pod UID as the kubelet writes it in a cgroup name: a UUID (systemd: `_` for `-`) or 32 hex. */
const UID = '([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}|[0-9a-f]{32})';
/** systemd driver: kubepods-pod<uid>.slice, kubepods-burstable-pod<uid>.slice (kind: kubelet-kubepods-...). */
const SYSTEMD_POD = new RegExp(`^[a-z0-9-]*kubepods[a-z0-9-]*-pod${UID}\\.slice$`);
/** cgroupfs driver: pod<uid> below a kubepods directory. */
const CGROUPFS_POD = new RegExp(`^pod${UID}$`);
const ID = '([0-9a-f]{64})';
/** A container's cgroup, by runtime prefix; a bare id is cgroupfs (containerd, docker). */
const CONTAINER: readonly [RegExp, string | undefined][] = [
  [new RegExp(`^cri-containerd-${ID}\\.scope$`), 'containerd'],
  [new RegExp(`^crio-${ID}(?:\\.scope)?$`), 'crio'],
  [new RegExp(`^(?:cri-)?docker-${ID}\\.scope$`), 'docker'],
  [new RegExp(`^libpod-${ID}(?:\\.scope)?$`), 'podman'],
  [new RegExp(`^nerdctl-${ID}\\.scope$`), 'nerdctl'],
  [new RegExp(`^${ID}$`), undefined],
];

/** A cgroup path segment that names a container: its id and runtime. */
function containerOf(segment: string | undefined): { id: string; runtime: string | undefined } | undefined {
  if (segment === undefined) return undefined;
  for (const [re, runtime] of CONTAINER) {
    const m = re.exec(segment);
    if (m) return { id: m[1]!, runtime };
  }
  return undefined;
}

/** The pod the kubelet's segments of a path name: outermost first, with the container below it. */
function podOf(segments: readonly string[]): CgroupIdentity | undefined {
  let underKubepods = false;
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    const pod = SYSTEMD_POD.exec(s) ?? (underKubepods ? CGROUPFS_POD.exec(s) : null);
    if (s === 'kubepods' || s.endsWith('kubepods.slice')) underKubepods = true;
    if (!pod) continue;
    const c = containerOf(segments[i + 1]);
    return { podUid: pod[1]!.replaceAll('_', '-'), containerId: c?.id, runtime: c?.runtime };
  }
  return undefined;
}

/**
 * A container of a plain runtime: only the prefixed forms, or a bare id under docker's own
 * directory (cgroupfs: /docker/<id>), count; a bare 64-hex name alone is too weak.
 */
function plainContainerOf(segments: readonly string[]): CgroupIdentity | undefined {
  for (let i = 0; i < segments.length; i++) {
    const c = containerOf(segments[i]);
    if (c?.runtime !== undefined) return { podUid: undefined, containerId: c.id, runtime: c.runtime };
    if (c && segments[i - 1] === 'docker') return { podUid: undefined, containerId: c.id, runtime: 'docker' };
  }
  return undefined;
}

/** What one cgroup path names, or undefined when it names neither a pod nor a container. */
export function identityOfPath(path: string): CgroupIdentity | undefined {
  const segments = path.split('/');
  return podOf(segments) ?? plainContainerOf(segments);
}

/**
 * What /proc/PID/cgroup's text names: the first line that names a pod, else the first that names
 * a container. cgroup v2 has one line (`0::/path`); v1 one per hierarchy (`4:memory:/path`), all
 * naming the same pod, and a hybrid system both.
 */
export function identityOfCgroup(text: string): CgroupIdentity | undefined {
  let container: CgroupIdentity | undefined;
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':', line.indexOf(':') + 1);
    if (colon < 0) continue;
    const id = identityOfPath(line.slice(colon + 1));
    if (id?.podUid !== undefined) return id;
    container ??= id;
  }
  return container;
}
