/**
 * Namespace discovery against real namespaces (`ip netns add`, so root): a FIFO beside a named
 * namespace in a scratch netns directory, and a /proc/PID/ns/net whose pid is reused by a process
 * in another namespace (a scratch proc root whose links are repointed). The kept descriptors are
 * what the kernel is asked about: RTM_GETNSID on them answers for the namespace first found.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  fstatSync,
  mkdirSync,
  mkdtempSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConntrackError } from '../../src/errors.js';
import { type DiscoveryRoots, type NamespaceRef, NamespaceWatcher } from '../../src/namespace/discovery.js';
import { nsfsNames } from '../../src/namespace/nsfs.js';
import { NsidClient } from '../../src/namespace/nsid.js';

const NAMES = ['a', 'b'].map((x) => `ctx-lc-${process.pid}-${x}`) as [string, string];
const named = (name: string): string => join('/var/run/netns', name);
const inodeOf = (path: string): string => String(statSync(path).ino);
const fdInode = (fd: number): string => String(fstatSync(fd).ino);

let root = '';
let roots: DiscoveryRoots;
let nsids: NsidClient;

before(() => {
  for (const n of NAMES) execFileSync('ip', ['netns', 'add', n]);
  root = realpathSync(mkdtempSync(join(tmpdir(), 'ctx-lc-')));
  roots = { proc: join(root, 'proc'), netnsDir: join(root, 'netns') };
  // Only the test process's own namespace in this /proc (as self and as pid 1).
  for (const at of ['self', '1']) {
    mkdirSync(join(roots.proc, at, 'ns'), { recursive: true });
    symlinkSync('/proc/self/ns/net', join(roots.proc, at, 'ns/net'));
  }
  mkdirSync(roots.netnsDir);
  nsids = NsidClient.open({ error() {} });
});

after(() => {
  nsids?.close();
  for (const n of NAMES) execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
  if (root) rmSync(root, { recursive: true, force: true });
});

function watcher() {
  const errors: unknown[] = [];
  const w = new NamespaceWatcher({
    roots,
    max: 10,
    intervalMs: 3_600_000,
    onChange: () => {},
    onError: (err) => errors.push(err),
  });
  const byInode = (): Map<string, NamespaceRef> => new Map([...w.set.values()].map((r) => [r.inode, r]));
  return { w, errors, byInode };
}

describe('discovery on real namespaces', () => {
  it('a FIFO beside a named namespace: the scan returns, the FIFO is refused, the namespace followed', async () => {
    const fifo = join(roots.netnsDir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    // A name that leads to the bind mount `ip netns add` made: its descriptor names a path, and
    // the kernel's name of the namespace is the mount's root in mountinfo.
    symlinkSync(named(NAMES[0]), join(roots.netnsDir, 'real'));
    const { w, errors, byInode } = watcher();
    try {
      const started = Date.now();
      await w.start();
      await w.scan();
      assert.ok(Date.now() - started < 5_000, 'not held up by the FIFO');
      const a = byInode().get(inodeOf(named(NAMES[0])));
      assert.equal(a?.label, 'real');
      assert.equal(fdInode(a.fd), inodeOf(named(NAMES[0])));
      assert.equal(readlinkSync(`/proc/self/fd/${a.fd}`), realpathSync(named(NAMES[0])));
      assert.equal(await nsfsNames()(a.fd), `net:[${a.inode}]`);
      assert.deepEqual([...w.set.values()].map((r) => r.label).sort(), [
        `inode:${inodeOf('/proc/self/ns/net')}`,
        'real',
      ]);
      assert.equal(errors.length, 1, 'reported once over two scans');
      assert.ok(errors[0] instanceof ConntrackError);
      assert.equal(errors[0].code, 'CT_ERR_NETNS_REFUSED');
      assert.match(errors[0].message, /FIFO/);
      // The kept descriptor is what namespace ids are asked and assigned for.
      const id = await nsids.ensure(a.fd);
      assert.ok(id >= 0);
      assert.equal(await nsids.get(a.fd), id);
      assert.match(
        execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }),
        new RegExp(`^${NAMES[0]} \\(id: ${id}\\)$`, 'm'),
      );
    } finally {
      await w.stop();
      rmSync(fifo);
      rmSync(join(roots.netnsDir, 'real'));
    }
  });

  it('a pid reused in another namespace: the kept descriptor still answers for the first one', async () => {
    const [nsA, nsB] = NAMES.map(named) as [string, string];
    const pid = (n: string, target: string): void => {
      rmSync(join(roots.proc, n), { recursive: true, force: true });
      mkdirSync(join(roots.proc, n, 'ns'), { recursive: true });
      symlinkSync(target, join(roots.proc, n, 'ns/net'));
    };
    pid('100', nsA);
    const { w, byInode } = watcher();
    try {
      await w.start();
      const a = byInode().get(inodeOf(nsA))!;
      assert.equal(a.foundAt, join(roots.proc, '100/ns/net'));
      const idA = await nsids.ensure(a.fd);
      // Pid 100 exits and is reused in B; A lives on in pid 101.
      pid('100', nsB);
      pid('101', nsA);
      await w.scan();
      assert.equal(byInode().get(a.inode), a, "A's ref is kept, not re-pointed");
      assert.equal(fdInode(a.fd), inodeOf(nsA));
      assert.equal(await nsids.get(a.fd), idA, 'its id is still asked for A');
      const b = byInode().get(inodeOf(nsB))!;
      assert.equal(fdInode(b.fd), inodeOf(nsB));
      const idB = await nsids.ensure(b.fd);
      assert.notEqual(idB, idA);
      // A is gone from this /proc: its descriptor is closed.
      rmSync(join(roots.proc, '101'), { recursive: true });
      await w.scan();
      assert.equal(byInode().has(a.inode), false);
      assert.ok([...w.set.values()].every((r) => r.fd !== a.fd));
      let sameFile = false;
      try {
        sameFile = fdInode(a.fd) === a.inode;
      } catch {
        // EBADF: closed and not reused
      }
      assert.equal(sameFile, false, "A's descriptor is closed");
    } finally {
      await w.stop();
      rmSync(join(roots.proc, '100'), { recursive: true, force: true });
      rmSync(join(roots.proc, '101'), { recursive: true, force: true });
    }
  });
});
