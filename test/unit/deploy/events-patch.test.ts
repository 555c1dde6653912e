/**
 * The opt-in nf_conntrack_events=1 component: rendered on the base, it adds one privileged init
 * container that sets the sysctl, with the exporter's image, and nothing else; the base stays
 * without it.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { K8S, type K8sObject, render, renderComposed, rendererFor, schemaProblem } from './k8s.js';

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
  it('is opt-in: neither the base nor any shipped overlay uses it', () => {
    const overlays = readdirSync(`${K8S}overlays`).map((o) => `overlays/${o}/kustomization.yaml`);
    assert.ok(overlays.length > 0);
    for (const k of ['base/kustomization.yaml', ...overlays]) {
      assert.doesNotMatch(readFileSync(`${K8S}${k}`, 'utf8'), /nf-conntrack-events-1/, k);
    }
  });

  it('renders on the base: one privileged init container that sets the sysctl to 1', (t) => {
    const r = rendererFor(t);
    if (!r) return;
    const objects = renderComposed(r, ['base'], [COMPONENT]);
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
    assert.match(init.command?.join(' ') ?? '', /echo 1 > \/proc\/sys\/net\/netfilter\/nf_conntrack_events/);
    assert.notEqual(pod.containers[0]!.securityContext?.privileged, true, 'the exporter stays unprivileged');
  });
});
