/**
 * What naming the followed namespaces adds to a --netns.all rescan (issue 19), in-process and on
 * the real kernel: N kubelet-shaped pods (test/integration/harness/kubelet.ts: cni-<uuid>
 * namespace, a process in a kubelet-shaped cgroup v2, a /var/log/pods directory, an address), then
 * per round: the discovery scan a rescan already does (scanNamespaces: the reference), the identity
 * of every pod namespace (its processes' cgroups, /var/log/pods), and an RTM_GETADDR dump inside
 * each (a route socket opened there by descriptor). Medians over the rounds.
 *
 *   flock /tmp/ctx-kernel.lock npm run bench:k8s-names -- [N=50] [rounds=20]
 *
 * Needs root and a cgroup v2 hierarchy; removes every pod, cgroup and namespace it made.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { readAddresses } from '../src/namespace/addresses.js';
import { scanNamespaces } from '../src/namespace/discovery.js';
import { IdentityResolver } from '../src/namespace/identity.js';
import { cgroupRoots, FakePod } from '../test/integration/harness/kubelet.js';

const n = Number(process.argv[2] ?? 50);
const rounds = Number(process.argv[3] ?? 20);
const hierarchy = cgroupRoots().v2;
if (hierarchy === undefined) throw new Error('no cgroup v2 hierarchy mounted');

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function time(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

const pods: FakePod[] = [];
const fds: number[] = [];
try {
  for (let i = 0; i < n; i++) {
    pods.push(
      await FakePod.create({
        namespace: 'bench',
        pod: `pod-${i}`,
        container: 'c',
        driver: i % 2 === 0 ? 'systemd' : 'cgroupfs',
        qos: 'burstable',
        hierarchy,
        address: `10.251.${i >> 8}.${(i & 255) + 1}`,
      }),
    );
  }
  for (const p of pods) fds.push(openSync(`/run/netns/${p.netns.name}`, constants.O_RDONLY));
  const resolver = new IdentityResolver();
  const scan = await scanNamespaces();
  const wanted = new Map<string, readonly number[]>();
  for (const p of pods) {
    const inode = [...scan.found.values()].find((f) => f.name === p.netns.name)!.inode;
    wanted.set(inode, scan.pids.get(inode) ?? []);
  }
  const scans: number[] = [];
  const identities: number[] = [];
  const addresses: number[] = [];
  let named = 0;
  for (let r = 0; r < rounds; r++) {
    scans.push(await time(() => scanNamespaces()));
    identities.push(
      await time(async () => {
        named = [...(await resolver.resolve(wanted)).values()].filter((x) => x.pod !== undefined).length;
      }),
    );
    addresses.push(await time(() => Promise.all(fds.map((fd) => readAddresses(fd)))));
  }
  if (named !== n) throw new Error(`${named} of ${n} pods named`);
  const s = median(scans);
  const i = median(identities);
  const a = median(addresses);
  console.log(
    JSON.stringify({
      namespaces: n,
      rounds,
      scan_ms: +s.toFixed(2),
      identities_ms: +i.toFixed(2),
      addresses_ms: +a.toFixed(2),
      added_per_namespace_ms: +((i + a) / n).toFixed(3),
      added_vs_scan: +((i + a) / s).toFixed(2),
    }),
  );
} finally {
  for (const fd of fds) closeSync(fd);
  for (const p of pods) await p.remove();
}
