/** The Dockerfile and Kubernetes manifests agree with the code they ship. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DEFAULT_PORT } from '../../../src/config.js';
import { ADDON_PATH } from '../../../src/netlink/addon.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const read = (p: string) => readFileSync(`${ROOT}${p}`, 'utf8');

describe('deployment files', () => {
  const dockerfile = read('Dockerfile');
  const ds = read('deploy/kubernetes/daemonset.yaml');
  const server = read('src/http/server.ts');

  it('the image runs the built entry point and exposes the default port', () => {
    const entry = /ENTRYPOINT \["node", "([^"]+)"\]/.exec(dockerfile);
    assert.ok(entry, 'ENTRYPOINT');
    assert.ok(existsSync(`${ROOT}${entry[1]}`), `${entry[1]} is built`);
    assert.match(dockerfile, new RegExp(`^EXPOSE ${DEFAULT_PORT}$`, 'm'));
    // the addon is copied to where src/netlink/addon.ts loads it from (relative to dist/src/netlink/)
    const addon = fileURLToPath(new URL(ADDON_PATH, new URL('dist/src/netlink/', `file://${ROOT}`)));
    const inImage = `./${addon.slice(ROOT.length)}`;
    assert.ok(dockerfile.includes(` ${inImage}\n`), `the image has ${inImage}`);
  });

  it('the DaemonSet runs in the host network with NET_ADMIN only, on the default port', () => {
    assert.match(ds, /hostNetwork: true/);
    assert.match(ds, /drop: \[ALL\]/);
    assert.match(ds, /add: \[NET_ADMIN\]/);
    assert.match(ds, new RegExp(`containerPort: ${DEFAULT_PORT}`));
    assert.match(ds, new RegExp(`--web.listen-address=:${DEFAULT_PORT}`));
  });

  it('the probes ask for endpoints the server has', () => {
    for (const path of ['/healthz', '/readyz']) {
      assert.match(ds, new RegExp(`path: ${path}`));
      assert.ok(server.includes(`'${path}'`), `server route ${path}`);
    }
  });

  it('kustomization lists files that exist', () => {
    const k = read('deploy/kubernetes/kustomization.yaml');
    const files = [...k.matchAll(/^\s+- (\S+\.yaml)$/gm)].map((m) => m[1]!);
    assert.ok(files.length >= 4);
    for (const f of files) assert.ok(existsSync(`${ROOT}deploy/kubernetes/${f}`), f);
  });
});
