/**
 * Kubernetes names from the node alone (issue 19), on the real kernel and without Kubernetes:
 * pods laid out as the kubelet lays them out (harness/kubelet.ts: a `cni-<uuid>` namespace with a
 * process in a kubelet-shaped cgroup, both cgroup drivers, cgroup v2 and a v1 hierarchy where the
 * machine has one, and /var/log/pods/<namespace>_<pod>_<uid>/<container>/). The exporter under
 * --netns.all names each pod on conntrack_netns_info, maps the top source that is a pod's address
 * to the pod on conntrack_address_info, and a pod whose process is gone loses its name at the next
 * rescan. A docker-shaped container gets its short id.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ExporterProcess } from './harness/exporter.js';
import { cgroupRoots, type Driver, FakePod, type QosClass } from './harness/kubelet.js';
import { Netns, waitFor } from './harness/netns.js';
import type { Scrape } from './harness/promtext.js';

const roots = cgroupRoots();

interface Layout {
  driver: Driver;
  qos: QosClass;
  hierarchy: string | undefined;
  what: string;
}

const LAYOUTS: Layout[] = [
  { driver: 'systemd', qos: 'burstable', hierarchy: roots.v2, what: 'systemd driver, cgroup v2' },
  {
    driver: 'cgroupfs',
    qos: 'guaranteed',
    hierarchy: roots.v2,
    what: 'cgroupfs driver, guaranteed, cgroup v2',
  },
  { driver: 'cgroupfs', qos: 'besteffort', hierarchy: roots.v1, what: 'cgroupfs driver, cgroup v1' },
  {
    driver: 'systemd',
    qos: 'guaranteed',
    hierarchy: roots.v1,
    what: 'systemd driver, guaranteed, cgroup v1',
  },
];

/** The address of the n-th pod: 10.250.<test pid>.<n>, on the pod namespace's loopback. */
const addressOf = (n: number): string => `10.250.${process.pid % 250}.${n + 1}`;

function info(s: Scrape, netns: string): Record<string, string> | undefined {
  return s.all('conntrack_netns_info', { netns })[0]?.labels;
}

describe('--netns.all names the pod behind each namespace and address', () => {
  let home: Netns;
  let exp: ExporterProcess;
  const pods: FakePod[] = [];
  /** The layouts made, in the order of `pods`. */
  const made: string[] = [];
  let docker: FakePod | undefined;

  before(async () => {
    home = Netns.create('k8s-home');
    try {
      let n = 0;
      for (const l of LAYOUTS) {
        if (l.hierarchy === undefined) continue; // no such hierarchy on this machine
        pods.push(
          await FakePod.create({
            namespace: `ctx-shop-${n}`,
            pod: `web-7d9f6c5b4-x2x9${n}`,
            container: 'web',
            driver: l.driver,
            qos: l.qos,
            hierarchy: l.hierarchy,
            address: addressOf(n++),
          }),
        );
        made.push(l.what);
      }
      if (roots.v2 !== undefined) {
        docker = await FakePod.create({
          namespace: 'unused',
          pod: 'unused',
          container: 'unused',
          driver: 'docker',
          qos: 'besteffort',
          hierarchy: roots.v2,
          address: addressOf(n++),
        });
      }
      // Flows from each pod's address before the exporter starts, so each is active from its dump.
      for (const p of [...pods, docker]) p?.netns.traffic(`udp-from=${p.spec.address}`);
      exp = await ExporterProcess.start(home, ['--netns.all', '--netns.scan-interval=1s', '--top.k=200']);
    } catch (err) {
      for (const p of [...pods, docker]) await p?.remove();
      home?.delete();
      throw err;
    }
  });

  after(async () => {
    await exp?.stop();
    for (const p of [...pods, docker]) await p?.remove();
    home?.delete();
  });

  it('has a kubelet-shaped pod for cgroup v2 and, where mounted, v1', () => {
    assert.ok(roots.v2 !== undefined, 'no cgroup v2 hierarchy mounted');
    assert.ok(pods.length >= 2, `${pods.length} pods made`);
  });

  it('names each pod on conntrack_netns_info from its cgroup and log directory', async () => {
    const s = await waitFor('every pod named', () => {
      const scrape = exp.scrape();
      return pods.every((p) => info(scrape, p.netns.name)?.['pod'] !== undefined) ? scrape : undefined;
    });
    for (const [i, p] of pods.entries()) {
      const l = info(s, p.netns.name)!;
      assert.equal(l['pod'], p.spec.pod, `${made[i]} (${p.spec.hierarchy})`);
      assert.equal(l['namespace'], p.spec.namespace);
      assert.equal(l['uid'], p.uid);
      assert.equal(l['own'], 'false');
    }
    // The exporter's own namespace is nobody's pod.
    const own = s.all('conntrack_netns_info', { own: 'true' })[0]!.labels;
    assert.equal(own['pod'], undefined);
    if (docker) {
      const l = info(s, docker.netns.name)!;
      assert.equal(l['container_id'], docker.containerId.slice(0, 12));
      assert.equal(l['pod'], undefined);
    }
  });

  it("maps a top source that is a pod's address to the pod", async (t) => {
    const p = pods[0]!;
    p.netns.traffic(`udp-from=${p.spec.address}`);
    const s = await waitFor('the pod address on conntrack_address_info', () => {
      const scrape = exp.scrape();
      return scrape.all('conntrack_address_info', { address: p.spec.address }).length > 0
        ? scrape
        : undefined;
    });
    const top = s.all('conntrack_top_source_flows', { source: p.spec.address });
    assert.equal(top.length, 1);
    assert.equal(top[0]!.labels['netns'], p.netns.name);
    assert.ok(top[0]!.value >= 1);
    assert.deepEqual(s.all('conntrack_address_info', { address: p.spec.address })[0]!.labels, {
      address: p.spec.address,
      netns: p.netns.name,
      pod: p.spec.pod,
      namespace: p.spec.namespace,
      uid: p.uid,
    });
    // What an operator sees: the pod's namespace, its address, and the source ranked in the top K.
    const excerpt = s.text
      .split('\n')
      .filter(
        (l) => l.includes(p.netns.name) && /^conntrack_(netns_info|address_info|top_source_flows)\{/.test(l),
      );
    t.diagnostic(`/metrics excerpt:\n${excerpt.join('\n')}`);
    // Only addresses in the top K have an info series: the loopback's 127.0.0.1 is in no namespace's.
    assert.equal(s.all('conntrack_address_info', { address: '127.0.0.1' }).length, 0);
  });

  it('a pod whose process is gone loses its name at the next rescan', async () => {
    const p = pods[1]!;
    p.kill();
    const s = await waitFor('the pod without its name', () => {
      // Keeps the namespace active (its unreplied UDP flows last 30 s).
      p.netns.traffic(`udp-from=${p.spec.address}`);
      const scrape = exp.scrape();
      const l = info(scrape, p.netns.name);
      return l !== undefined && l['pod'] === undefined ? scrape : undefined;
    });
    assert.equal(info(s, p.netns.name)!['uid'], undefined);
    // The others keep theirs.
    assert.equal(info(s, pods[0]!.netns.name)!['pod'], pods[0]!.spec.pod);
    // Its address still names its namespace, no longer a pod.
    const a = s.all('conntrack_address_info', { address: p.spec.address })[0]?.labels;
    if (a) assert.equal(a['pod'], undefined);
  });
});
