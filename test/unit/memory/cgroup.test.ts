/**
 * The memory cgroup's limit and usage, read from fake /proc and /sys trees laid out as the kernel
 * shows them: cgroup v2 (host and container views), v1, and a hybrid host where memory is v1's
 * while an empty v2 hierarchy is mounted beside it (this project's VM).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cgroupMemory } from '../../../src/memory/cgroup.js';

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** A fake root holding `files` (path -> content, paths absolute as on the machine). */
function fakeRoot(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'ctx-cgroup-'));
  roots.push(root);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

// mountinfo lines as a systemd host and a hybrid host show them.
const V2_MOUNT =
  '35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot';
const ROOT_MOUNT = '24 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw';
const UNIFIED_MOUNT =
  '40 30 0:35 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw';
const v1Mount = (root: string, point: string) =>
  `38 30 0:33 ${root} ${point} rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory`;
const V1_UNLIMITED = '9223372036854771712\n';
const MiB = 1024 ** 2;

describe('cgroupMemory', () => {
  it('v2: the tightest memory.max from the own cgroup up, and that cgroup usage', () => {
    const pod = '/sys/fs/cgroup/kubepods.slice/pod1';
    const root = fakeRoot({
      '/proc/self/cgroup': '0::/kubepods.slice/pod1/ctr\n',
      '/proc/self/mountinfo': `${ROOT_MOUNT}\n${V2_MOUNT}\n`,
      '/sys/fs/cgroup/kubepods.slice/memory.max': `${1024 * MiB}\n`,
      '/sys/fs/cgroup/kubepods.slice/memory.current': `${600 * MiB}\n`,
      [`${pod}/memory.max`]: `${256 * MiB}\n`,
      [`${pod}/memory.current`]: `${100 * MiB}\n`,
      [`${pod}/memory.stat`]: `anon 90000000\nfile 9000000\nactive_file 1000\ninactive_file 4194304\n`,
      [`${pod}/ctr/memory.max`]: 'max\n',
      [`${pod}/ctr/memory.current`]: `${99 * MiB}\n`,
    });
    const cg = cgroupMemory(root);
    assert.ok(cg);
    assert.equal(cg.version, 2);
    assert.equal(cg.dir, pod);
    assert.equal(cg.limit, 256 * MiB);
    assert.equal(cg.usage(), 100 * MiB, "the pod's usage, whose limit applies");
    assert.equal(cg.inactiveFile(), 4 * MiB, 'inactive_file, not active_file');
  });

  it('v2 inside a cgroup namespace: the mount point is the own cgroup', () => {
    const root = fakeRoot({
      '/proc/self/cgroup': '0::/\n',
      '/proc/self/mountinfo': `${V2_MOUNT}\n`,
      '/sys/fs/cgroup/memory.max': `${128 * MiB}\n`,
      '/sys/fs/cgroup/memory.current': `${50 * MiB}\n`,
    });
    const cg = cgroupMemory(root);
    assert.equal(cg?.dir, '/sys/fs/cgroup');
    assert.equal(cg?.limit, 128 * MiB);
    assert.equal(cg?.usage(), 50 * MiB);
  });

  it('v2 with "max" all the way up is no limit', () => {
    const root = fakeRoot({
      '/proc/self/cgroup': '0::/system.slice/x.service\n',
      '/proc/self/mountinfo': `${V2_MOUNT}\n`,
      '/sys/fs/cgroup/system.slice/memory.max': 'max\n',
      '/sys/fs/cgroup/system.slice/x.service/memory.max': 'max\n',
      '/sys/fs/cgroup/system.slice/x.service/memory.current': '1000\n',
    });
    assert.equal(cgroupMemory(root), undefined);
  });

  it('hybrid host: v1 memory beside an empty v2 hierarchy; v1 "unlimited" is no limit, the parent limits', () => {
    const own = '/sys/fs/cgroup/memory/process_api/abc';
    const root = fakeRoot({
      '/proc/self/cgroup': '9:name=systemd:/\n4:memory:/process_api/abc\n3:cpuset:/\n1:cpu:/\n0::/\n',
      '/proc/self/mountinfo': `${ROOT_MOUNT}\n${v1Mount('/', '/sys/fs/cgroup/memory')}\n${UNIFIED_MOUNT}\n`,
      '/sys/fs/cgroup/unified/cgroup.procs': '1\n',
      '/sys/fs/cgroup/memory/memory.limit_in_bytes': V1_UNLIMITED,
      '/sys/fs/cgroup/memory/process_api/memory.limit_in_bytes': `${200 * MiB}\n`,
      '/sys/fs/cgroup/memory/process_api/memory.usage_in_bytes': `${150 * MiB}\n`,
      '/sys/fs/cgroup/memory/process_api/memory.stat': `cache 100\ninactive_file 1\ntotal_inactive_file ${2 * MiB}\n`,
      [`${own}/memory.limit_in_bytes`]: V1_UNLIMITED,
      [`${own}/memory.usage_in_bytes`]: `${120 * MiB}\n`,
    });
    const cg = cgroupMemory(root);
    assert.ok(cg);
    assert.equal(cg.version, 1);
    assert.equal(cg.dir, '/sys/fs/cgroup/memory/process_api');
    assert.equal(cg.limit, 200 * MiB);
    assert.equal(cg.usage(), 150 * MiB);
    assert.equal(cg.inactiveFile(), 2 * MiB, "v1's hierarchical total_inactive_file");
  });

  it('v1 in a container without a cgroup namespace: the mount shows only its own subtree', () => {
    const root = fakeRoot({
      '/proc/self/cgroup': '5:cpu,memory:/docker/0123abcd\n',
      '/proc/self/mountinfo': `${v1Mount('/docker/0123abcd', '/sys/fs/cgroup/memory')}\n`,
      '/sys/fs/cgroup/memory/memory.limit_in_bytes': `${64 * MiB}\n`,
      '/sys/fs/cgroup/memory/memory.usage_in_bytes': `${30 * MiB}\n`,
    });
    const cg = cgroupMemory(root);
    assert.equal(cg?.dir, '/sys/fs/cgroup/memory');
    assert.equal(cg?.limit, 64 * MiB);
  });

  it('reads mount points with escaped characters', () => {
    const root = fakeRoot({
      '/proc/self/cgroup': '0::/a\n',
      '/proc/self/mountinfo': '35 24 0:30 / /cg\\040root rw - cgroup2 cgroup2 rw\n',
      '/cg root/a/memory.max': `${32 * MiB}\n`,
      '/cg root/a/memory.current': '1\n',
    });
    assert.equal(cgroupMemory(root)?.dir, '/cg root/a');
  });

  it('a cgroup outside what is mounted, or no cgroup files at all, is no limit', () => {
    const outside = fakeRoot({
      '/proc/self/cgroup': '4:memory:/elsewhere\n',
      '/proc/self/mountinfo': `${v1Mount('/docker/x', '/sys/fs/cgroup/memory')}\n`,
      '/sys/fs/cgroup/memory/memory.limit_in_bytes': `${64 * MiB}\n`,
      '/sys/fs/cgroup/memory/memory.usage_in_bytes': '1\n',
    });
    assert.equal(cgroupMemory(outside), undefined);
    assert.equal(cgroupMemory(fakeRoot({})), undefined);
  });
});
