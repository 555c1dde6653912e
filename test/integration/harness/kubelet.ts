/**
 * Pods laid out as the kubelet lays them out, without Kubernetes: a named network namespace
 * `cni-<uuid>` with a process in it (as the pause container), that process in a kubelet-shaped
 * cgroup (systemd or cgroupfs driver; cgroup v2, or a v1 hierarchy where the machine mounts one),
 * and the pod's log directory /var/log/pods/<namespace>_<pod>_<uid>/<container>/. Everything is
 * made under a parent cgroup `ctx-k8s-<pid>` of the test's own and removed by remove().
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Netns, sleep, TRACKING_RULESET } from './netns.js';

export const POD_LOGS = '/var/log/pods';

export type Driver = 'systemd' | 'cgroupfs' | 'docker';
export type QosClass = 'guaranteed' | 'burstable' | 'besteffort';

/** Mount points of the cgroup v2 hierarchy and of one v1 hierarchy, from /proc/self/mountinfo. */
export function cgroupRoots(): { v2: string | undefined; v1: string | undefined } {
  let v2: string | undefined;
  const v1: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    const mountPoint = left?.split(' ')[4];
    const [fstype, , options] = (right ?? '').split(' ');
    if (mountPoint === undefined) continue;
    if (fstype === 'cgroup2') v2 ??= mountPoint;
    // A v1 hierarchy nobody charges against: pids (or systemd's named one), never memory.
    else if (fstype === 'cgroup' && /(^|,)(pids|name=systemd)(,|$)/.test(options ?? '')) v1.push(mountPoint);
  }
  return { v2, v1: v1.sort()[0] };
}

/** The cgroup path below `parent` the kubelet (or docker, for 'docker') gives a container. */
export function kubeletCgroup(driver: Driver, qos: QosClass, uid: string, containerId: string): string {
  if (driver === 'docker') return `system.slice/docker-${containerId}.scope`;
  if (driver === 'cgroupfs') {
    return qos === 'guaranteed'
      ? `kubepods/pod${uid}/${containerId}`
      : `kubepods/${qos}/pod${uid}/${containerId}`;
  }
  const u = uid.replaceAll('-', '_');
  return qos === 'guaranteed'
    ? `kubepods.slice/kubepods-pod${u}.slice/cri-containerd-${containerId}.scope`
    : `kubepods.slice/kubepods-${qos}.slice/kubepods-${qos}-pod${u}.slice/cri-containerd-${containerId}.scope`;
}

export interface PodSpec {
  namespace: string;
  pod: string;
  container: string;
  driver: Driver;
  qos: QosClass;
  /** The cgroup hierarchy's mount point. */
  hierarchy: string;
  /** An address given to the namespace's loopback (scope global): the pod's IP. */
  address: string;
}

let serial = 0;

/** rmdir, waiting (bounded) for a killed process to have left the cgroup. */
async function removeCgroup(dir: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || i >= 50) throw err;
      await sleep(100);
    }
  }
}

export class FakePod {
  readonly uid = randomUUID();
  readonly containerId = randomBytes(32).toString('hex');
  readonly netns: Netns;
  readonly pid: number;
  private readonly cgroupDirs: string[] = [];
  private readonly logDir: string;
  private readonly madeLogRoot: boolean;

  private constructor(readonly spec: PodSpec) {
    this.netns = Netns.named(`cni-${randomUUID()}`, TRACKING_RULESET);
    this.netns.run('ip', ['addr', 'add', `${spec.address}/32`, 'dev', 'lo']);
    this.logDir = join(POD_LOGS, `${spec.namespace}_${spec.pod}_${this.uid}`);
    this.madeLogRoot = !existsSync(POD_LOGS);
    // `ip netns exec` execs the command itself: the child's pid is the sleeping process's.
    const child = this.netns.spawn('sleep', ['600']);
    if (child.pid === undefined) throw new Error('sleep did not start');
    this.pid = child.pid;
  }

  static async create(spec: PodSpec): Promise<FakePod> {
    const p = new FakePod(spec);
    try {
      await p.enter();
      mkdirSync(join(p.logDir, spec.container), { recursive: true });
      writeFileSync(join(p.logDir, spec.container, '0.log'), '');
    } catch (err) {
      await p.remove();
      throw err;
    }
    return p;
  }

  /** The pod's processes end (the namespace stays pinned under /var/run/netns, as CNI leaves it). */
  kill(): void {
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  /** Kills the process, then removes its cgroups (leaf first), the log directory and the namespace. */
  async remove(): Promise<void> {
    this.kill();
    for (const dir of this.cgroupDirs.reverse()) await removeCgroup(dir);
    rmSync(this.logDir, { recursive: true, force: true });
    if (this.madeLogRoot) rmSync(POD_LOGS, { recursive: true, force: true });
    this.netns.delete();
  }

  /** Moves the process into its kubelet-shaped cgroup, made below `ctx-k8s-<pid>-<n>`. */
  private async enter(): Promise<void> {
    const { driver, qos, hierarchy } = this.spec;
    const top = `ctx-k8s-${process.pid}-${serial++}`;
    const rel = `${top}/${kubeletCgroup(driver, qos, this.uid, this.containerId)}`;
    let dir = hierarchy;
    for (const part of rel.split('/')) {
      dir = join(dir, part);
      mkdirSync(dir);
      this.cgroupDirs.push(dir);
    }
    // The process must exist before it can be moved: `ip netns exec` has exec'd sleep by now or soon.
    for (let i = 0; ; i++) {
      const comm = readFileSync(`/proc/${this.pid}/comm`, 'utf8').trim();
      if (comm === 'sleep') break;
      if (i >= 100) throw new Error(`process ${this.pid} is ${comm}, not sleep`);
      await sleep(20);
    }
    writeFileSync(join(dir, 'cgroup.procs'), String(this.pid));
  }
}
