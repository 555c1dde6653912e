/** deploy/kubernetes/netns-all: the component grants what --netns.all needs, with flags that exist. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FLAGS } from '../../../src/config.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const DIR = `${ROOT}deploy/kubernetes/netns-all/`;
const read = (f: string) => readFileSync(`${DIR}${f}`, 'utf8');

describe('the --netns.all kustomize component', () => {
  const patch = read('daemonset-netns-all.yaml');
  const args = read('args-netns-all.yaml');

  it('adds flags the exporter knows', () => {
    const flags = [...args.matchAll(/value: --([\w.-]+)/g)].map((m) => m[1]!);
    assert.ok(flags.includes('netns.all'));
    for (const f of flags) assert.ok(f in FLAGS, `--${f} is a flag`);
  });

  it('grants the host PID namespace, the netns mount and the capabilities the kernel checks', () => {
    assert.match(patch, /hostPID: true/);
    assert.match(patch, /mountPath: \/var\/run\/netns/);
    assert.match(patch, /mountPropagation: HostToContainer/);
    assert.match(patch, /add: \[NET_ADMIN, NET_BROADCAST, SYS_ADMIN, SYS_PTRACE\]/);
  });

  it('renders on top of the base with kubectl kustomize', (t) => {
    if (spawnSync('sh', ['-c', 'command -v kubectl'], { stdio: 'ignore' }).status !== 0) {
      t.skip('kubectl not installed');
      return;
    }
    const tmp = mkdtempSync(join(tmpdir(), 'ctx-kustomize-'));
    try {
      cpSync(`${ROOT}deploy/kubernetes`, join(tmp, 'k'), { recursive: true });
      writeFileSync(join(tmp, 'kustomization.yaml'), 'resources: [k]\ncomponents: [k/netns-all]\n');
      const r = spawnSync('kubectl', ['kustomize', tmp], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const ds = r.stdout.slice(r.stdout.indexOf('kind: DaemonSet'));
      assert.match(ds, /- --netns\.all\n/);
      assert.match(ds, /hostPID: true/);
      assert.match(ds, /- NET_BROADCAST\n/);
      assert.match(ds, /- --web\.listen-address=/, "the base's args are kept");
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
