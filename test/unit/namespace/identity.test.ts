/**
 * Whose a namespace is: the cgroup path parser for every layout the kubelet (both drivers, both
 * cgroup versions, every QoS class) and the plain runtimes write, the pod log directory parser,
 * and the resolver on a fake /proc and /var/log/pods tree.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { identityOfCgroup, identityOfPath } from '../../../src/namespace/cgroup-identity.js';
import { IdentityResolver } from '../../../src/namespace/identity.js';
import { MAX_POD_DIRS, parsePodLogDir, readPodLogs } from '../../../src/namespace/pod-logs.js';

const UID = '0b6a1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3';
const UID_ = UID.replaceAll('-', '_');
const ID = `${'a'.repeat(48)}0123456789abcdef`;

describe('identityOfPath', () => {
  const pod = (runtime: string | undefined) => ({ podUid: UID, containerId: ID, runtime });
  const cases: [string, string, object | undefined][] = [
    [
      'systemd, burstable, containerd',
      `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${ID}.scope`,
      pod('containerd'),
    ],
    [
      'systemd, besteffort, CRI-O',
      `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/crio-${ID}.scope`,
      pod('crio'),
    ],
    [
      'systemd, guaranteed (one level higher), cri-dockerd',
      `/kubepods.slice/kubepods-pod${UID_}.slice/docker-${ID}.scope`,
      pod('docker'),
    ],
    ['cgroupfs, burstable', `/kubepods/burstable/pod${UID}/${ID}`, pod(undefined)],
    ['cgroupfs, guaranteed', `/kubepods/pod${UID}/${ID}`, pod(undefined)],
    ['cgroupfs, CRI-O', `/kubepods/besteffort/pod${UID}/crio-${ID}`, pod('crio')],
    [
      'kind: the kubelet under its own slice',
      `/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod${UID_}.slice/cri-containerd-${ID}.scope`,
      pod('containerd'),
    ],
    [
      "seen from a container's cgroup namespace",
      `/../../kubepods-burstable-pod${UID_}.slice/cri-containerd-${ID}.scope`,
      pod('containerd'),
    ],
    [
      'the pod cgroup itself (no container)',
      `/kubepods.slice/kubepods-pod${UID_}.slice`,
      { podUid: UID, containerId: undefined, runtime: undefined },
    ],
    [
      'a static pod: 32 hex digits',
      `/kubepods/burstable/pod5f5c3d1a9b8e7f6a5b4c3d2e1f0a9b8c/${ID}`,
      { podUid: '5f5c3d1a9b8e7f6a5b4c3d2e1f0a9b8c', containerId: ID, runtime: undefined },
    ],
    [
      'a process nesting fake pods below its own: the outermost wins',
      `/kubepods/pod${UID}/${ID}/kubepods/pod11111111-2222-3333-4444-555555555555/${ID}`,
      pod(undefined),
    ],
    [
      'docker, systemd',
      `/system.slice/docker-${ID}.scope`,
      { podUid: undefined, containerId: ID, runtime: 'docker' },
    ],
    ['docker, cgroupfs', `/docker/${ID}`, { podUid: undefined, containerId: ID, runtime: 'docker' }],
    [
      'podman',
      `/machine.slice/libpod-${ID}.scope/container`,
      { podUid: undefined, containerId: ID, runtime: 'podman' },
    ],
    [
      'nerdctl',
      `/system.slice/nerdctl-${ID}.scope`,
      { podUid: undefined, containerId: ID, runtime: 'nerdctl' },
    ],
    ['pod<uid> outside kubepods is not a pod', `/foo/pod${UID}/${ID}`, undefined],
    ['a bare id outside a runtime directory', `/default/${ID}`, undefined],
    ['a host service', '/system.slice/sshd.service', undefined],
    ['the root', '/', undefined],
    ['a uid too short', '/kubepods/pod0b6a1d2e-3f40/x', undefined],
  ];
  for (const [what, path, want] of cases) {
    it(what, () => assert.deepEqual(identityOfPath(path), want));
  }
});

describe('identityOfCgroup', () => {
  it('reads the v2 line', () => {
    assert.equal(identityOfCgroup(`0::/kubepods/pod${UID}/${ID}\n`)?.podUid, UID);
  });

  it('reads v1 lines, any hierarchy, and prefers a pod over a container', () => {
    const v1 = [
      '12:pids:/system.slice/containerd.service',
      `11:memory:/system.slice/docker-${ID}.scope`,
      `4:cpu,cpuacct:/kubepods.slice/kubepods-pod${UID_}.slice/cri-containerd-${ID}.scope`,
      '1:name=systemd:/',
      '0::/',
      '',
    ].join('\n');
    assert.deepEqual(identityOfCgroup(v1), { podUid: UID, containerId: ID, runtime: 'containerd' });
  });

  it('a container when no line names a pod; nothing for a host process', () => {
    assert.equal(identityOfCgroup(`0::/system.slice/docker-${ID}.scope\n`)?.containerId, ID);
    assert.equal(identityOfCgroup('0::/init.scope\n'), undefined);
    assert.equal(identityOfCgroup(''), undefined);
  });
});

describe('parsePodLogDir', () => {
  it('splits <namespace>_<pod>_<uid>', () => {
    assert.deepEqual(parsePodLogDir(`shop_web-7d9f6c5b4-x2x9q_${UID}`), {
      namespace: 'shop',
      pod: 'web-7d9f6c5b4-x2x9q',
      uid: UID,
    });
    assert.deepEqual(
      parsePodLogDir('kube-system_kube-apiserver-node.example.com_5f5c3d1a9b8e7f6a5b4c3d2e1f0a9b8c'),
      {
        namespace: 'kube-system',
        pod: 'kube-apiserver-node.example.com',
        uid: '5f5c3d1a9b8e7f6a5b4c3d2e1f0a9b8c',
      },
    );
  });

  it('refuses what Kubernetes cannot name: _ in a name, upper case, too long, no uid', () => {
    for (const bad of [
      `shop_web_x_${UID}`,
      `Shop_web_${UID}`,
      `shop_web`,
      `shop_web_not-a-uid`,
      `${'a'.repeat(64)}_web_${UID}`,
      `shop_${'a'.repeat(254)}_${UID}`,
      `shop_-web_${UID}`,
      `_web_${UID}`,
      `shop_web_${UID}_`,
    ]) {
      assert.equal(parsePodLogDir(bad), undefined, bad);
    }
    assert.ok(
      parsePodLogDir(`${'a'.repeat(63)}_${'b'.repeat(253)}_${UID}`),
      'the longest names Kubernetes allows',
    );
  });
});

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** A fake /proc (pid -> cgroup text, namespace) and /var/log/pods. */
function tree(procs: Record<string, { cgroup: string; ns: string }>, logs: string[]) {
  const root = mkdtempSync(join(tmpdir(), 'ctx-identity-'));
  roots.push(root);
  const proc = join(root, 'proc');
  const podLogs = join(root, 'pods');
  mkdirSync(join(root, 'store'));
  mkdirSync(podLogs);
  const ns = (id: string): string => {
    const p = join(root, 'store', id);
    writeFileSync(p, 'net', { flag: 'a' });
    return p;
  };
  for (const [pid, p] of Object.entries(procs)) {
    mkdirSync(join(proc, pid, 'ns'), { recursive: true });
    writeFileSync(join(proc, pid, 'cgroup'), p.cgroup);
    symlinkSync(ns(p.ns), join(proc, pid, 'ns/net'));
  }
  for (const l of logs) mkdirSync(join(podLogs, l, 'web'), { recursive: true });
  const inode = (id: string): string => String(statSync(ns(id)).ino);
  return { resolver: new IdentityResolver({ proc, podLogs }), inode, podLogs };
}

describe('IdentityResolver', () => {
  const OTHER = '11111111-2222-3333-4444-555555555555';
  const inPod = (uid: string): string => `0::/kubepods/besteffort/pod${uid}/${ID}\n`;

  it('names a namespace whose processes agree on one pod, with the log directory', async () => {
    const t = tree(
      {
        '10': { cgroup: inPod(UID), ns: 'a' },
        '11': { cgroup: inPod(UID), ns: 'a' },
        '20': { cgroup: inPod(OTHER), ns: 'b' },
        '30': { cgroup: '0::/init.scope\n', ns: 'host' },
        '31': { cgroup: inPod(UID), ns: 'host' },
        '40': { cgroup: `0::/system.slice/docker-${ID}.scope\n`, ns: 'c' },
      },
      [`shop_web-1_${UID}`, 'not-a-pod-dir'],
    );
    const ids = await t.resolver.resolve(
      new Map([
        [t.inode('a'), [10, 11]],
        [t.inode('b'), [20]],
        [t.inode('host'), [30, 31]],
        [t.inode('c'), [40]],
        [t.inode('gone'), [99]],
      ]),
    );
    assert.deepEqual(ids.get(t.inode('a')), { uid: UID, pod: 'web-1', namespace: 'shop' });
    assert.deepEqual(ids.get(t.inode('b')), { uid: OTHER }, 'no log directory: the uid alone');
    assert.equal(ids.has(t.inode('host')), false, 'a host process and a hostNetwork pod: nobody');
    assert.deepEqual(ids.get(t.inode('c')), { containerId: ID.slice(0, 12) });
    assert.equal(ids.has(t.inode('gone')), false);
  });

  it('believes no process that has left the namespace (a pid reused elsewhere)', async () => {
    const t = tree({ '10': { cgroup: inPod(UID), ns: 'elsewhere' } }, [`shop_web-1_${UID}`]);
    const ids = await t.resolver.resolve(new Map([[t.inode('a'), [10]]]));
    assert.equal(ids.size, 0);
  });

  it('two pods in one namespace name neither', async () => {
    const t = tree({ '10': { cgroup: inPod(UID), ns: 'a' }, '11': { cgroup: inPod(OTHER), ns: 'a' } }, [
      `shop_web-1_${UID}`,
    ]);
    assert.equal((await t.resolver.resolve(new Map([[t.inode('a'), [10, 11]]]))).size, 0);
  });
});

describe('readPodLogs', () => {
  it('reads at most MAX_POD_DIRS entries, and nothing from a missing root', async () => {
    const t = tree(
      {},
      Array.from({ length: 5 }, (_, i) => `ns_p${i}_${UID.slice(0, -1)}${i}`),
    );
    assert.equal((await readPodLogs(t.podLogs)).size, 5);
    assert.equal((await readPodLogs(t.podLogs, 3)).size, 3);
    assert.equal((await readPodLogs(join(t.podLogs, 'missing'))).size, 0);
    assert.ok(MAX_POD_DIRS >= 1000);
  });
});
