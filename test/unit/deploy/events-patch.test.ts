/** The opt-in nf_conntrack_events=1 patch patches the DaemonSet that ships, and stays opt-in. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const read = (p: string) => readFileSync(`${ROOT}${p}`, 'utf8');

describe('nf-conntrack-events-1 patch', () => {
  const patch = read('deploy/kubernetes/nf-conntrack-events-1.patch.yaml');
  const ds = read('deploy/kubernetes/daemonset.yaml');

  it('targets the DaemonSet by its kind and name', () => {
    const name = (y: string) => /^metadata:\n\s+name: (\S+)$/m.exec(y)?.[1];
    assert.match(patch, /^kind: DaemonSet$/m);
    assert.equal(name(patch), name(ds));
    assert.ok(name(ds));
  });

  it('sets the sysctl to 1 from a privileged init container, with the exporter image', () => {
    assert.match(patch, /initContainers:/);
    assert.match(patch, /echo 1 > \/proc\/sys\/net\/netfilter\/nf_conntrack_events/);
    assert.match(patch, /privileged: true/);
    const image = (y: string) => [...y.matchAll(/image: (\S+)/g)].map((m) => m[1]);
    assert.deepEqual(image(patch), image(ds));
  });

  it('is opt-in: the default kustomization does not apply it', () => {
    assert.doesNotMatch(read('deploy/kubernetes/kustomization.yaml'), /nf-conntrack-events-1/);
  });
});
