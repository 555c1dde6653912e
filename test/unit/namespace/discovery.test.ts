/**
 * Namespace discovery on fake /proc and /var/run/netns trees: files in `store/` stand in for nsfs
 * files (their content is the namespace type the fake kernel name reports), symlinks for
 * /proc/PID/ns/net and for names. Then the same checks against the real nsfs of the test process
 * (its own net and uts namespaces), which needs no root.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConntrackError } from '../../../src/errors.js';
import {
  type DiscoveryChange,
  type DiscoveryRoots,
  FollowedSet,
  type FoundNamespace,
  type NamespaceRef,
  NamespaceWatcher,
  scanNamespaces,
  type WatchOptions,
} from '../../../src/namespace/discovery.js';
import { nsfsNames, openNamespace, ownNamespace } from '../../../src/namespace/nsfs.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function scratch(): string {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'ctx-disc-')));
  dirs.push(root);
  return root;
}

const inodeOfFd = (fd: number): string => String(fstatSync(fd).ino);

/** The fake kernel name of a store file: `<its content>:[<inode>]`, as nsfs names `net:[4026531840]`. */
async function fakeName(fd: number): Promise<string> {
  const b = Buffer.alloc(8);
  const n = readSync(fd, b, 0, b.length, 0);
  return `${b.toString('utf8', 0, n)}:[${fstatSync(fd).ino}]`;
}

/** A tree with namespaces `store/<id>`; `pids` and `names` point at them by symlink. */
function tree(spec: { own: string; pids: Record<string, string>; names: Record<string, string> }) {
  const root = scratch();
  const roots: DiscoveryRoots = { proc: join(root, 'proc'), netnsDir: join(root, 'netns') };
  mkdirSync(join(root, 'store'));
  mkdirSync(roots.netnsDir);
  const ns = (id: string, type = 'net'): string => {
    const p = join(root, 'store', id);
    try {
      statSync(p);
    } catch {
      writeFileSync(p, type);
    }
    return p;
  };
  const link = (target: string, at: string): void => {
    // The target first: created after the rm, it could take the inode of the file it replaces.
    const to = ns(target);
    mkdirSync(join(at, '..'), { recursive: true });
    rmSync(at, { force: true });
    symlinkSync(to, at);
  };
  const pid = (n: string, id: string): void => link(id, join(roots.proc, n, 'ns/net'));
  const name = (n: string, id: string): void => link(id, join(roots.netnsDir, n));
  link(spec.own, join(roots.proc, 'self/ns/net'));
  for (const [n, id] of Object.entries(spec.pids)) pid(n, id);
  for (const [n, id] of Object.entries(spec.names)) name(n, id);
  // Not namespaces: a file in /proc that is not a pid, a pid without ns/net (exited meanwhile).
  writeFileSync(join(roots.proc, 'uptime'), '1');
  mkdirSync(join(roots.proc, '999'));
  const inode = (id: string): string => String(statSync(ns(id)).ino);
  /** Descriptors this process holds on files of the tree. */
  const openFds = (): number[] =>
    readdirSync('/proc/self/fd')
      .filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${root}/`);
        } catch {
          return false; // readdir's own descriptor, closed by now
        }
      })
      .map(Number);
  return { root, roots, inode, ns, pid, name, openFds };
}

const labelsOf = (refs: Iterable<FoundNamespace>): string[] => [...refs].map((r) => r.label).sort();

describe('scanNamespaces', () => {
  it('finds each namespace once, by inode, named when it has a name, and marks its own', async () => {
    const t = tree({
      own: 'host',
      pids: { '1': 'host', '200': 'podA', '201': 'podA', '300': 'podB' },
      names: { 'cni-a': 'podA', tenant: 'idle' },
    });
    const { found, refused, pids } = await scanNamespaces(t.roots);
    const byLabel = new Map([...found.values()].map((r) => [r.label, r]));
    // The processes in each namespace, for whose it is (identity.ts); a name adds none.
    assert.deepEqual(pids.get(t.inode('podA')), [200, 201]);
    assert.deepEqual(pids.get(t.inode('podB')), [300]);
    assert.equal(pids.get(t.inode('idle')), undefined);
    assert.deepEqual([...byLabel.keys()].sort(), [
      'cni-a',
      `inode:${t.inode('host')}`,
      `inode:${t.inode('podB')}`,
      'tenant',
    ]);
    assert.equal(byLabel.get('cni-a')!.foundAt, join(t.roots.netnsDir, 'cni-a'), 'a name wins over a pid');
    assert.equal(byLabel.get('cni-a')!.inode, t.inode('podA'));
    assert.equal(byLabel.get(`inode:${t.inode('podB')}`)!.foundAt, join(t.roots.proc, '300/ns/net'));
    assert.deepEqual(
      [...found.values()].filter((r) => r.own).map((r) => r.inode),
      [t.inode('host')],
    );
    assert.equal(refused.size, 0);
  });

  it('finds its own namespace when /proc shows no pid of it (another pid namespace)', async () => {
    const t = tree({ own: 'mine', pids: { '5': 'other' }, names: {} });
    const { found } = await scanNamespaces(t.roots);
    const own = [...found.values()].find((r) => r.own);
    assert.equal(own?.inode, t.inode('mine'));
    assert.equal(own?.foundAt, join(t.roots.proc, 'self/ns/net'));
  });

  it('a missing /var/run/netns means no named namespaces, not an error', async () => {
    const t = tree({ own: 'host', pids: { '1': 'host' }, names: {} });
    rmSync(t.roots.netnsDir, { recursive: true });
    assert.deepEqual(labelsOf((await scanNamespaces(t.roots)).found.values()), [`inode:${t.inode('host')}`]);
  });

  it('fails with CT_ERR_NETNS_SCAN when /proc or its own namespace cannot be read', async () => {
    const t = tree({ own: 'host', pids: { '1': 'host' }, names: {} });
    const file = join(t.root, 'a-file');
    writeFileSync(file, '');
    const noPids = join(t.root, 'empty-proc');
    mkdirSync(join(noPids, 'self/ns'), { recursive: true });
    symlinkSync(t.ns('host'), join(noPids, 'self/ns/net'));
    for (const proc of ['/nonexistent/proc', file, noPids]) {
      await assert.rejects(scanNamespaces({ ...t.roots, proc }), { code: 'CT_ERR_NETNS_SCAN' }, proc);
    }
    unlinkSync(join(t.roots.proc, 'self/ns/net'));
    await assert.rejects(scanNamespaces(t.roots), { code: 'CT_ERR_NETNS_SCAN' });
  });

  it('refuses what is not a namespace file: a FIFO, a directory', async () => {
    const t = tree({ own: 'host', pids: { '1': 'host' }, names: { real: 'podA' } });
    execFileSync('mkfifo', [join(t.roots.netnsDir, 'fifo')]);
    mkdirSync(join(t.roots.netnsDir, 'dir'));
    const { found, refused } = await scanNamespaces(t.roots);
    assert.deepEqual(labelsOf(found.values()), [`inode:${t.inode('host')}`, 'real']);
    assert.deepEqual([...refused.keys()].sort(), [
      join(t.roots.netnsDir, 'dir'),
      join(t.roots.netnsDir, 'fifo'),
    ]);
    for (const r of refused.values()) {
      assert.ok(r.error instanceof ConntrackError);
      assert.equal(r.error.code, 'CT_ERR_NETNS_REFUSED');
      assert.equal(r.retry, false);
    }
  });
});

describe('openNamespace', () => {
  it('returns promptly on a FIFO put where the scan saw a namespace (O_NONBLOCK), holding nothing', {
    timeout: 5_000,
  }, async () => {
    const root = scratch();
    const fifo = join(root, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const st = statSync(fifo, { bigint: true });
    const found: FoundNamespace = { inode: String(st.ino), name: 'x', foundAt: fifo, own: false, label: 'x' };
    const before = readdirSync('/proc/self/fd').length;
    // A blocking open of a FIFO without a writer never returns: the test would time out.
    assert.equal(await openNamespace(found, st.dev, fakeName), undefined);
    assert.equal(readdirSync('/proc/self/fd').length, before);
  });

  it('keeps a non-blocking, close-on-exec descriptor of the inode the scan saw; another inode is not it', async () => {
    const t = tree({ own: 'host', pids: { '1': 'host' }, names: {} });
    const { found, nsfsDev } = await scanNamespaces(t.roots);
    const own = [...found.values()][0]!;
    const opened = await openNamespace(own, nsfsDev, fakeName);
    assert.ok(opened && 'fd' in opened);
    try {
      assert.equal(String(fstatSync(opened.fd).ino), t.inode('host'));
      const flags = Number.parseInt(
        /^flags:\s*(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${opened.fd}`, 'utf8'))![1]!,
        8,
      );
      assert.ok(flags & 0o4000, 'O_NONBLOCK');
      assert.ok(flags & 0o2000000, 'O_CLOEXEC');
    } finally {
      closeSync(opened.fd);
    }
    t.pid('1', 'other');
    // The same path now leads elsewhere (a reused pid): not opened as what the scan saw.
    const moved = { ...own, foundAt: join(t.roots.proc, '1/ns/net') };
    assert.equal(await openNamespace(moved, nsfsDev, fakeName), undefined);
  });
});

describe('ownNamespace', () => {
  it("opens the exporter's own namespace (default mode) and names it by inode", () => {
    const own = ownNamespace();
    try {
      const inode = String(statSync('/proc/self/ns/net').ino);
      assert.equal(inodeOfFd(own.fd), inode);
      assert.deepEqual(
        { ...own, fd: 0 },
        {
          inode,
          name: undefined,
          foundAt: '/proc/self/ns/net',
          own: true,
          label: `inode:${inode}`,
          fd: 0,
        },
      );
    } finally {
      closeSync(own.fd);
    }
  });
});

function found(inode: string, name?: string, own = false): FoundNamespace {
  return { inode, name, own, foundAt: `/x/${inode}`, label: name ?? `inode:${inode}` };
}

function seen(...refs: FoundNamespace[]): Map<string, FoundNamespace> {
  return new Map(refs.map((r) => [r.inode, r]));
}

/** Opens everything but `refuse`, handing out descriptors 100, 101, ... */
function fakeOpen(refuse = new Set<string>()) {
  let next = 100;
  const tried: string[] = [];
  const open = async (ns: FoundNamespace): Promise<NamespaceRef | undefined> => {
    tried.push(ns.label);
    return refuse.has(ns.inode) ? undefined : { ...ns, fd: next++ };
  };
  return { open, tried };
}

const labels = (c: DiscoveryChange): { added: string[]; removed: string[]; skipped: number } => ({
  added: c.added.map((r) => r.label),
  removed: c.removed.map((r) => r.label),
  skipped: c.skipped,
});

describe('FollowedSet', () => {
  it('reports appearing and disappearing namespaces', async () => {
    const s = new FollowedSet(10);
    const { open } = fakeOpen();
    assert.deepEqual(labels(await s.update(seen(found('1', undefined, true), found('2', 'a')), open)), {
      added: ['inode:1', 'a'],
      removed: [],
      skipped: 0,
    });
    assert.deepEqual(labels(await s.update(seen(found('1', undefined, true), found('2', 'a')), open)), {
      added: [],
      removed: [],
      skipped: 0,
    });
    assert.deepEqual(labels(await s.update(seen(found('1', undefined, true), found('3')), open)), {
      added: ['inode:3'],
      removed: ['a'],
      skipped: 0,
    });
  });

  it('caps the followed set: own first, then named, then by inode; only those are opened', async () => {
    const s = new FollowedSet(3);
    const { open, tried } = fakeOpen();
    const all = seen(
      found('30'),
      found('100'),
      found('20', 'b'),
      found('9', undefined, true),
      found('40', 'a'),
    );
    assert.deepEqual(labels(await s.update(all, open)), {
      added: ['inode:9', 'b', 'a'],
      removed: [],
      skipped: 2,
    });
    assert.deepEqual(tried, ['inode:9', 'b', 'a'], 'no descriptor for a skipped namespace');
    assert.equal(s.size, 3);
    assert.equal(s.skipped, 2);
  });

  it('gives the place of one that does not open to the next in line', async () => {
    const s = new FollowedSet(2);
    const { open } = fakeOpen(new Set(['20']));
    assert.deepEqual(
      labels(await s.update(seen(found('9', undefined, true), found('20', 'b'), found('30')), open)),
      {
        added: ['inode:9', 'inode:30'],
        removed: [],
        skipped: 0,
      },
    );
  });

  it('keeps followed namespaces in place and gives a freed place to a skipped one', async () => {
    const s = new FollowedSet(2);
    const { open } = fakeOpen();
    await s.update(seen(found('1'), found('2')), open);
    // A named newcomer does not displace what is followed.
    assert.deepEqual(labels(await s.update(seen(found('1'), found('2'), found('3', 'new')), open)), {
      added: [],
      removed: [],
      skipped: 1,
    });
    assert.deepEqual(labels(await s.update(seen(found('2'), found('3', 'new')), open)), {
      added: ['new'],
      removed: ['inode:1'],
      skipped: 0,
    });
  });

  it('keeps the first ref (label, descriptor) when a namespace is found at another path', async () => {
    const s = new FollowedSet(5);
    const { open } = fakeOpen();
    await s.update(seen(found('7')), open);
    const [first] = [...s.values()];
    await s.update(seen({ ...found('7'), foundAt: '/proc/99/ns/net' }), open);
    const [only] = [...s.values()];
    assert.equal(only, first);
    assert.equal(only?.foundAt, '/x/7');
  });
});

/** A watcher on `roots` that records its changes and errors; the fake kernel name by default. */
function watcher(roots: DiscoveryRoots, max = 10, extra: Partial<WatchOptions> = {}) {
  const changes: DiscoveryChange[] = [];
  const errors: unknown[] = [];
  const w = new NamespaceWatcher({
    roots,
    max,
    intervalMs: 3_600_000,
    onChange: (c) => {
      changes.push(c);
    },
    onError: (err) => errors.push(err),
    nsName: fakeName,
    ...extra,
  });
  const followed = (): string[] => labelsOf(w.set.values());
  const codes = (): string[] => errors.map((e) => (e instanceof ConntrackError ? e.code : String(e)));
  return { w, changes, errors, followed, codes };
}

describe('NamespaceWatcher', () => {
  it('reports a namespace created and deleted between scans, and closes its descriptor after', async () => {
    const t = tree({ own: 'host', pids: {}, names: {} });
    const { w, changes, codes } = watcher(t.roots);
    try {
      await w.start();
      assert.equal(t.openFds().length, 1, "the exporter's own");
      t.name('late', 'late');
      await w.scan();
      assert.equal(t.openFds().length, 2);
      unlinkSync(join(t.roots.netnsDir, 'late'));
      await w.scan();
      assert.equal(t.openFds().length, 1);
    } finally {
      await w.stop();
    }
    assert.equal(t.openFds().length, 0, 'stop() closes every descriptor');
    assert.deepEqual(codes(), []);
    const nonEmpty = changes.map(labels).filter((c) => c.added.length + c.removed.length > 0);
    assert.deepEqual(nonEmpty, [
      { added: [`inode:${t.inode('host')}`], removed: [], skipped: 0 },
      { added: ['late'], removed: [], skipped: 0 },
      { added: [], removed: ['late'], skipped: 0 },
    ]);
  });

  it('a pid reused in another namespace: the kept descriptor stays on the first, the second is new', async () => {
    const t = tree({ own: 'host', pids: { '100': 'A' }, names: {} });
    const { w, changes } = watcher(t.roots);
    try {
      await w.start();
      const a = [...w.set.values()].find((r) => r.inode === t.inode('A'))!;
      assert.equal(inodeOfFd(a.fd), t.inode('A'));
      // Pid 100 exits and is reused by a process in B; A lives on in pid 101.
      t.pid('100', 'B');
      t.pid('101', 'A');
      await w.scan();
      const refs = new Map([...w.set.values()].map((r) => [r.inode, r]));
      assert.equal(refs.get(t.inode('A')), a, "A's ref is not re-pointed");
      assert.equal(inodeOfFd(a.fd), t.inode('A'), 'its descriptor still refers to A');
      const b = refs.get(t.inode('B'))!;
      assert.notEqual(b.fd, a.fd);
      assert.equal(inodeOfFd(b.fd), t.inode('B'));
      assert.deepEqual(labels(changes.at(-1)!), {
        added: [`inode:${t.inode('B')}`],
        removed: [],
        skipped: 0,
      });
      // A goes: its descriptor is closed once the change is handled.
      rmSync(join(t.roots.proc, '101'), { recursive: true });
      await w.scan();
      assert.deepEqual(labels(changes.at(-1)!), {
        added: [],
        removed: [`inode:${t.inode('A')}`],
        skipped: 0,
      });
      assert.deepEqual(
        t.openFds().map(inodeOfFd).sort(),
        [t.inode('host'), t.inode('B')].sort(),
        "A's descriptor is closed",
      );
    } finally {
      await w.stop();
    }
  });

  it("a removed namespace's descriptor is still open while onChange runs (its sockets close first)", async () => {
    const t = tree({ own: 'host', pids: { '100': 'A' }, names: {} });
    const during: string[] = [];
    const { w } = watcher(t.roots, 10, {
      onChange: async (c) => {
        await new Promise((r) => setTimeout(r, 10));
        for (const ref of c.removed) during.push(inodeOfFd(ref.fd));
      },
    });
    try {
      await w.start();
      rmSync(join(t.roots.proc, '100'), { recursive: true });
      await w.scan();
      assert.deepEqual(during, [t.inode('A')]);
      assert.deepEqual(t.openFds().map(inodeOfFd), [t.inode('host')]);
    } finally {
      await w.stop();
    }
  });

  it('holds descriptors only for followed namespaces; a freed place opens the next one', async () => {
    const t = tree({
      own: 'host',
      pids: { '1': 'host', '10': 'a', '11': 'b', '12': 'c', '13': 'd' },
      names: {},
    });
    const { w, changes } = watcher(t.roots, 2);
    try {
      await w.start();
      assert.equal(changes.at(-1)!.skipped, 3);
      assert.deepEqual(t.openFds().map(inodeOfFd).sort(), [t.inode('host'), t.inode('a')].sort());
      rmSync(join(t.roots.proc, '10'), { recursive: true });
      await w.scan();
      assert.deepEqual(labels(changes.at(-1)!), {
        added: [`inode:${t.inode('b')}`],
        removed: [`inode:${t.inode('a')}`],
        skipped: 2,
      });
      assert.deepEqual(t.openFds().map(inodeOfFd).sort(), [t.inode('host'), t.inode('b')].sort());
    } finally {
      await w.stop();
    }
    assert.deepEqual(t.openFds(), []);
  });

  it('skips a scan that cannot read /proc or its own namespace: reported, nothing removed', async () => {
    const t = tree({ own: 'host', pids: { '1': 'host', '10': 'a' }, names: { tenant: 't' } });
    const { w, changes, followed, codes } = watcher(t.roots);
    try {
      await w.start();
      const before = followed();
      const fds = t.openFds();
      assert.equal(before.length, 3);
      const moved = join(t.root, 'proc-away');
      const unreadable: [string, () => void, () => void][] = [
        ['missing', () => renameSync(t.roots.proc, moved), () => renameSync(moved, t.roots.proc)],
        [
          'not a directory',
          () => {
            renameSync(t.roots.proc, moved);
            writeFileSync(t.roots.proc, '');
          },
          () => {
            unlinkSync(t.roots.proc);
            renameSync(moved, t.roots.proc);
          },
        ],
        [
          'own namespace missing',
          () => unlinkSync(join(t.roots.proc, 'self/ns/net')),
          () => symlinkSync(t.ns('host'), join(t.roots.proc, 'self/ns/net')),
        ],
      ];
      for (const [what, breakIt, repair] of unreadable) {
        const nChanges = changes.length;
        const nErrors = codes().length;
        breakIt();
        await w.scan();
        repair();
        assert.equal(changes.length, nChanges, `${what}: no change applied`);
        assert.deepEqual(codes().slice(nErrors), ['CT_ERR_NETNS_SCAN'], what);
        assert.deepEqual(followed(), before, what);
        assert.deepEqual(t.openFds(), fds, what);
      }
      await w.scan();
      assert.deepEqual(
        labels(changes.at(-1)!),
        { added: [], removed: [], skipped: 0 },
        'and nothing to redo',
      );
    } finally {
      await w.stop();
    }
  });

  it('reports a path that is not a network namespace once, and does not open it again', async () => {
    const t = tree({ own: 'host', pids: { '1': 'host' }, names: { real: 'podA' } });
    execFileSync('mkfifo', [join(t.roots.netnsDir, 'fifo')]);
    symlinkSync(t.ns('uts1', 'uts'), join(t.roots.netnsDir, 'uts'));
    let named = 0;
    const { w, errors, followed } = watcher(t.roots, 10, {
      nsName: (fd) => {
        named++;
        return fakeName(fd);
      },
    });
    try {
      await w.start();
      assert.deepEqual(followed(), [`inode:${t.inode('host')}`, 'real']);
      const opened = named;
      await w.scan();
      await w.scan();
      assert.equal(named, opened, 'nothing opened again');
      assert.equal(w.refused, 2);
      const refused = errors.map((e) => {
        assert.ok(e instanceof ConntrackError);
        assert.equal(e.code, 'CT_ERR_NETNS_REFUSED');
        return e.message.includes('uts namespace') ? 'uts' : e.message.includes('FIFO') ? 'fifo' : e.message;
      });
      assert.deepEqual(refused.sort(), ['fifo', 'uts']);
      // A refused name that becomes a namespace is looked at afresh.
      t.name('fifo', 'podB');
      await w.scan();
      assert.deepEqual(followed(), ['fifo', `inode:${t.inode('host')}`, 'real']);
      assert.equal(w.refused, 1);
      assert.equal(errors.length, 2);
    } finally {
      await w.stop();
    }
  });
});

describe('discovery on the real nsfs (no root needed)', () => {
  /** /proc with only the test process's own namespace (self and pid 1) and a scratch netns dir. */
  function realTree() {
    const root = scratch();
    const roots: DiscoveryRoots = { proc: join(root, 'proc'), netnsDir: join(root, 'netns') };
    for (const at of ['self', '1']) {
      mkdirSync(join(roots.proc, at, 'ns'), { recursive: true });
      symlinkSync('/proc/self/ns/net', join(roots.proc, at, 'ns/net'));
    }
    mkdirSync(roots.netnsDir);
    return { root, roots };
  }

  it('a FIFO, files, a directory and a uts namespace in the netns dir: refused, the scan not held up', async () => {
    const { roots } = realTree();
    const at = (n: string) => join(roots.netnsDir, n);
    execFileSync('mkfifo', [at('fifo')]);
    writeFileSync(at('file'), 'not a namespace');
    writeFileSync(at('pending'), ''); // what `ip netns add` creates before it mounts the namespace
    mkdirSync(at('dir'));
    symlinkSync('/proc/self/ns/uts', at('uts'));
    symlinkSync('/proc/self/ns/net', at('mine'));
    const { w, errors, followed, codes } = watcher(roots, 10, { nsName: nsfsNames() });
    const own = String(statSync('/proc/self/ns/net').ino);
    try {
      const started = Date.now();
      await w.start();
      assert.ok(Date.now() - started < 5_000);
      assert.deepEqual(followed(), ['mine']);
      const [ref] = [...w.set.values()];
      assert.equal(ref?.own, true);
      assert.equal(inodeOfFd(ref!.fd), own);
      assert.equal(readlinkSync(`/proc/self/fd/${ref!.fd}`), `net:[${own}]`);
      await w.scan();
      assert.deepEqual(codes(), Array(4).fill('CT_ERR_NETNS_REFUSED'));
      assert.equal(w.refused, 4);
      const messages = errors.map((e) => (e as Error).message).join('\n');
      for (const n of ['fifo', 'file', 'dir', 'uts']) assert.ok(messages.includes(at(n)), n);
      assert.ok(!messages.includes(at('pending')));
      assert.match(messages, /uts namespace/);
    } finally {
      await w.stop();
    }
  });
});
