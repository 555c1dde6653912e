/**
 * deploy/kubernetes/components/netns-all (applied by overlays/netns-all): the DaemonSet it renders
 * has --netns.all with flags that exist, and grants what the mode needs, valid against the schema.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FLAGS } from '../../../src/config.js';
import { ROOT } from '../../paths.js';
import { findKustomize, type Located, render, schemaProblem } from './k8s.js';

interface Container {
  args?: string[];
  securityContext?: { capabilities?: { add?: string[] }; appArmorProfile?: { type?: string } };
  volumeMounts?: { name: string; mountPath: string; mountPropagation?: string; readOnly?: boolean }[];
}
interface PodSpec {
  hostPID?: boolean;
  containers: Container[];
  volumes?: { name: string; hostPath?: { path: string } }[];
}

describe('the --netns.all overlay', () => {
  const r = findKustomize();
  const objects: Located[] =
    typeof r === 'string' ? [] : render(r, `${ROOT}deploy/kubernetes/overlays/netns-all`);
  const ds = objects.find((o) => o.obj.kind === 'DaemonSet');
  const spec = (ds?.obj as { spec?: { template?: { spec?: PodSpec } } } | undefined)?.spec?.template?.spec;

  it('renders a valid DaemonSet', (t) => {
    if (typeof r === 'string') return t.skip(r);
    assert.ok(ds && spec, 'a DaemonSet');
    assert.equal(schemaProblem(ds), undefined);
  });

  it('adds --netns.all and keeps the base flags; every flag exists', (t) => {
    if (typeof r === 'string') return t.skip(r);
    const args = spec!.containers[0]!.args ?? [];
    assert.ok(args.includes('--netns.all'));
    assert.ok(
      args.some((a) => a.startsWith('--web.listen-address=')),
      "the base's args are kept",
    );
    for (const a of args) assert.ok(/^--([\w.-]+)/.exec(a)![1]! in FLAGS, `${a} is a flag`);
  });

  it('grants the host PID namespace, the netns mount and the capabilities the kernel checks', (t) => {
    if (typeof r === 'string') return t.skip(r);
    const c = spec!.containers[0]!;
    assert.equal(spec!.hostPID, true);
    assert.deepEqual([...(c.securityContext?.capabilities?.add ?? [])].sort(), [
      'NET_ADMIN',
      'NET_BROADCAST',
      'SYS_ADMIN',
      'SYS_PTRACE',
    ]);
    assert.equal(c.securityContext?.appArmorProfile?.type, 'Unconfined');
    const mount = c.volumeMounts?.find((m) => m.mountPath === '/var/run/netns');
    assert.equal(mount?.mountPropagation, 'HostToContainer');
    assert.equal(spec!.volumes?.find((v) => v.name === mount?.name)?.hostPath?.path, '/var/run/netns');
  });

  it('mounts /var/log/pods read-only, and keeps the pod labels the exporter names (honorLabels)', (t) => {
    if (typeof r === 'string') return t.skip(r);
    const mount = spec!.containers[0]!.volumeMounts?.find((m) => m.mountPath === '/var/log/pods');
    assert.equal(mount?.readOnly, true);
    assert.equal(spec!.volumes?.find((v) => v.name === mount?.name)?.hostPath?.path, '/var/log/pods');
    const sm = objects.find((o) => o.obj.kind === 'ServiceMonitor')?.obj as
      | { spec?: { endpoints?: { honorLabels?: boolean }[] } }
      | undefined;
    assert.equal(sm?.spec?.endpoints?.[0]?.honorLabels, true);
  });
});
