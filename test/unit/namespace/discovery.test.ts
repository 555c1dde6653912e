/**
 * Namespace discovery on fake /proc and /var/run/netns trees: files stand in for nsfs inodes, hard
 * links for one namespace seen under several paths.
 */
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, mkdtempSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  type DiscoveryChange,
  type DiscoveryRoots,
  FollowedSet,
  type NamespaceRef,
  NamespaceWatcher,
  scanNamespaces,
} from '../../../src/namespace/discovery.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A tree with namespaces `store/<id>`; `pids` and `names` map to them by hard link. */
function tree(spec: { own: string; pids: Record<string, string>; names: Record<string, string> }) {
  const root = mkdtempSync(join(tmpdir(), 'ctx-disc-'));
  dirs.push(root);
  const roots: DiscoveryRoots = { proc: join(root, 'proc'), netnsDir: join(root, 'netns') };
  mkdirSync(join(root, 'store'));
  mkdirSync(roots.netnsDir);
  const ns = (id: string): string => {
    const p = join(root, 'store', id);
    try {
      statSync(p);
    } catch {
      writeFileSync(p, id);
    }
    return p;
  };
  const link = (target: string, at: string): void => {
    mkdirSync(join(at, '..'), { recursive: true });
    linkSync(ns(target), at);
  };
  link(spec.own, join(roots.proc, 'self/ns/net'));
  for (const [pid, id] of Object.entries(spec.pids)) link(id, join(roots.proc, pid, 'ns/net'));
  for (const [name, id] of Object.entries(spec.names)) link(id, join(roots.netnsDir, name));
  // Not namespaces: a file in /proc that is not a pid, a pid without ns/net (exited meanwhile).
  writeFileSync(join(roots.proc, 'uptime'), '1');
  mkdirSync(join(roots.proc, '999'));
  const inode = (id: string): string => String(statSync(ns(id)).ino);
  return { root, roots, inode, ns };
}

describe('scanNamespaces', () => {
  it('finds each namespace once, by inode, named when it has a name, and marks its own', async () => {
    const t = tree({
      own: 'host',
      pids: { '1': 'host', '200': 'podA', '201': 'podA', '300': 'podB' },
      names: { 'cni-a': 'podA', tenant: 'idle' },
    });
    const found = await scanNamespaces(t.roots);
    const byLabel = new Map([...found.values()].map((r) => [r.label, r]));
    assert.deepEqual([...byLabel.keys()].sort(), [
      'cni-a',
      `inode:${t.inode('host')}`,
      `inode:${t.inode('podB')}`,
      'tenant',
    ]);
    assert.equal(byLabel.get('cni-a')!.path, join(t.roots.netnsDir, 'cni-a'), 'a name wins over a pid');
    assert.equal(byLabel.get('cni-a')!.inode, t.inode('podA'));
    assert.equal(byLabel.get(`inode:${t.inode('podB')}`)!.path, join(t.roots.proc, '300/ns/net'));
    assert.deepEqual(
      [...found.values()].filter((r) => r.own).map((r) => r.inode),
      [t.inode('host')],
    );
  });

  it('finds its own namespace when /proc shows no pid of it (another pid namespace)', async () => {
    const t = tree({ own: 'mine', pids: { '5': 'other' }, names: {} });
    const found = await scanNamespaces(t.roots);
    const own = [...found.values()].find((r) => r.own);
    assert.equal(own?.inode, t.inode('mine'));
    assert.equal(own?.path, join(t.roots.proc, 'self/ns/net'));
  });

  it('missing directories mean no namespaces there, not an error', async () => {
    const found = await scanNamespaces({ proc: '/nonexistent/proc', netnsDir: '/nonexistent/netns' });
    assert.equal(found.size, 0);
  });
});

function ref(inode: string, name?: string, own = false): NamespaceRef {
  return { inode, name, own, path: `/x/${inode}`, label: name ?? `inode:${inode}` };
}

function seen(...refs: NamespaceRef[]): Map<string, NamespaceRef> {
  return new Map(refs.map((r) => [r.inode, r]));
}

const labels = (c: DiscoveryChange): { added: string[]; removed: string[]; skipped: number } => ({
  added: c.added.map((r) => r.label),
  removed: c.removed.map((r) => r.label),
  skipped: c.skipped,
});

describe('FollowedSet', () => {
  it('reports appearing and disappearing namespaces', () => {
    const s = new FollowedSet(10);
    assert.deepEqual(labels(s.update(seen(ref('1', undefined, true), ref('2', 'a')))), {
      added: ['inode:1', 'a'],
      removed: [],
      skipped: 0,
    });
    assert.deepEqual(labels(s.update(seen(ref('1', undefined, true), ref('2', 'a')))), {
      added: [],
      removed: [],
      skipped: 0,
    });
    assert.deepEqual(labels(s.update(seen(ref('1', undefined, true), ref('3')))), {
      added: ['inode:3'],
      removed: ['a'],
      skipped: 0,
    });
  });

  it('caps the followed set: own first, then named, then by inode; the excess is counted', () => {
    const s = new FollowedSet(3);
    const all = seen(ref('30'), ref('100'), ref('20', 'b'), ref('9', undefined, true), ref('40', 'a'));
    assert.deepEqual(labels(s.update(all)), { added: ['inode:9', 'b', 'a'], removed: [], skipped: 2 });
    assert.equal(s.size, 3);
    assert.equal(s.skipped, 2);
  });

  it('keeps followed namespaces in place and gives a freed place to a skipped one', () => {
    const s = new FollowedSet(2);
    s.update(seen(ref('1'), ref('2')));
    // A named newcomer does not displace what is followed.
    assert.deepEqual(labels(s.update(seen(ref('1'), ref('2'), ref('3', 'new')))), {
      added: [],
      removed: [],
      skipped: 1,
    });
    assert.deepEqual(labels(s.update(seen(ref('2'), ref('3', 'new')))), {
      added: ['new'],
      removed: ['inode:1'],
      skipped: 0,
    });
  });

  it('keeps the first label when a namespace changes its path, and follows the new path', () => {
    const s = new FollowedSet(5);
    s.update(seen(ref('7')));
    s.update(seen({ ...ref('7'), path: '/proc/99/ns/net' }));
    const [only] = [...s.values()];
    assert.equal(only?.label, 'inode:7');
    assert.equal(only?.path, '/proc/99/ns/net');
  });
});

describe('NamespaceWatcher', () => {
  it('reports a namespace created and deleted between scans', async () => {
    const t = tree({ own: 'host', pids: {}, names: {} });
    const changes: DiscoveryChange[] = [];
    const w = new NamespaceWatcher({
      roots: t.roots,
      max: 10,
      intervalMs: 3_600_000,
      onChange: (c) => {
        changes.push(c);
      },
      onError: (err) => assert.fail(String(err)),
    });
    try {
      await w.start();
      linkSync(t.ns('late'), join(t.roots.netnsDir, 'late'));
      await w.scan();
      unlinkSync(join(t.roots.netnsDir, 'late'));
      await w.scan();
    } finally {
      w.stop();
    }
    const nonEmpty = changes.map(labels).filter((c) => c.added.length + c.removed.length > 0);
    assert.deepEqual(nonEmpty, [
      { added: [`inode:${t.inode('host')}`], removed: [], skipped: 0 },
      { added: ['late'], removed: [], skipped: 0 },
      { added: [], removed: ['late'], skipped: 0 },
    ]);
  });
});
