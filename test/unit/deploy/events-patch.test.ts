/**
 * The opt-in nf_conntrack_events=1 component: rendered on the base, it adds one privileged init
 * container that sets the sysctl, with the exporter's image, and nothing else; the base stays
 * without it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../../paths.js';
import { findKustomize, type K8sObject, render, schemaProblem } from './k8s.js';

const K8S = `${ROOT}deploy/kubernetes/`;
const COMPONENT = 'components/nf-conntrack-events-1';

interface Container {
  name: string;
  image: string;
  command?: string[];
  securityContext?: { privileged?: boolean };
}
interface DaemonSet extends K8sObject {
  spec: { template: { spec: { containers: Container[]; initContainers?: Container[] } } };
}

describe('nf-conntrack-events-1 component', () => {
  it('is opt-in: neither the base nor the shipped overlays use it', () => {
    for (const k of ['base/kustomization.yaml', 'overlays/kube-prometheus-stack/kustomization.yaml']) {
      assert.doesNotMatch(readFileSync(`${K8S}${k}`, 'utf8'), /nf-conntrack-events-1/, k);
    }
  });

  it('renders on the base: one privileged init container that sets the sysctl to 1', (t) => {
    const r = findKustomize();
    if (typeof r === 'string') {
      if (process.env['CI'] === 'true') assert.fail(`CI=true and ${r}`);
      t.skip(r);
      return;
    }
    // An overlay of our own, as an operator would write it (kustomize wants relative paths).
    const dir = mkdtempSync(join(tmpdir(), 'ctx-events-'));
    try {
      const rel = relative(dir, K8S);
      writeFileSync(
        join(dir, 'kustomization.yaml'),
        `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ${rel}/base\ncomponents:\n  - ${rel}/${COMPONENT}\n`,
      );
      const objects = render(r, dir);
      const base = render(r, `${K8S}base`);
      assert.deepEqual(
        objects.map((o) => `${o.obj.kind}/${o.obj.metadata.name}`).sort(),
        base.map((o) => `${o.obj.kind}/${o.obj.metadata.name}`).sort(),
        'adds no object',
      );
      const located = objects.find((o) => o.obj.kind === 'DaemonSet')!;
      assert.equal(schemaProblem(located), undefined);
      const pod = (located.obj as DaemonSet).spec.template.spec;
      assert.equal(pod.initContainers?.length, 1);
      const init = pod.initContainers[0]!;
      assert.equal(init.securityContext?.privileged, true);
      assert.equal(init.image, pod.containers[0]!.image, 'the exporter image');
      assert.match(
        init.command?.join(' ') ?? '',
        /echo 1 > \/proc\/sys\/net\/netfilter\/nf_conntrack_events/,
      );
      assert.notEqual(
        pod.containers[0]!.securityContext?.privileged,
        true,
        'the exporter stays unprivileged',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
