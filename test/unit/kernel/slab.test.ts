/**
 * The table's slab cache: /proc/slabinfo's line and SLUB's sysfs files, and absent (not an
 * error) where the cache is merged with another or not there.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseSlabinfo, parseSlabNumber, SlabReader } from '../../../src/kernel/slab.js';

const HEADER = [
  'slabinfo - version: 2.1',
  '# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>',
];
// As this 6.18 kernel prints it: 80 entries in use of 144 in 9 one-page slabs of 16 x 256 bytes.
const CONNTRACK =
  'nf_conntrack          80    144    256   16    1 : tunables    0    0    0 : slabdata      9      9      0';
const OTHERS = [
  'nf_conntrack_expect      0      0    208   19    1 : tunables    0    0    0 : slabdata      0      0      0',
  'kmalloc-256         2400   2400    256   16    1 : tunables    0    0    0 : slabdata    150    150      0',
];
const slabinfo = (...lines: string[]) => `${[...HEADER, ...lines].join('\n')}\n`;

describe('parseSlabinfo', () => {
  it("reads the nf_conntrack line's objects and object size, not a cache whose name starts the same", () => {
    assert.deepEqual(parseSlabinfo(slabinfo(OTHERS[0]!, CONNTRACK, OTHERS[1]!)), {
      objects: 144,
      objectSize: 256,
    });
  });

  it('a cache merged into another has no line of its own: no data', () => {
    assert.equal(parseSlabinfo(slabinfo(...OTHERS)), undefined);
  });

  it('an unknown format or a bad line is an error, not a value', () => {
    assert.throws(() => parseSlabinfo('slabinfo - version: 1.1\n'));
    assert.throws(() => parseSlabinfo(slabinfo('nf_conntrack 80 many 256')));
  });
});

describe('parseSlabNumber', () => {
  it('takes the total before the per-node counts', () => {
    assert.equal(parseSlabNumber('144 N0=144\n'), 144);
    assert.equal(parseSlabNumber('300 N0=100 N1=200\n'), 300);
    assert.equal(parseSlabNumber('256\n'), 256);
    assert.throws(() => parseSlabNumber('\n'));
  });
});

describe('SlabReader', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'ctx-slab-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  function fake(name: string, sys: ((dir: string) => void) | undefined, info: string | undefined) {
    const base = join(root, name);
    mkdirSync(base);
    const sysSlab = join(base, 'slab');
    if (sys) {
      mkdirSync(sysSlab);
      sys(sysSlab);
    }
    const proc = join(base, 'slabinfo');
    if (info !== undefined) writeFileSync(proc, info);
    return new SlabReader(sysSlab, proc);
  }
  const cacheDir =
    (objects: string, aliases = '0') =>
    (sys: string) => {
      const d = join(sys, 'nf_conntrack');
      mkdirSync(d);
      writeFileSync(join(d, 'total_objects'), `${objects}\n`);
      writeFileSync(join(d, 'aliases'), `${aliases}\n`);
      writeFileSync(join(d, 'slab_size'), '256\n');
    };

  it("SLUB's sysfs directory: total_objects x slab_size (slabinfo is not read)", () => {
    const r = fake('sysfs', cacheDir('144 N0=144'), 'garbage');
    assert.deepEqual(r.read(), { objects: 144, objectSize: 256 });
  });

  it('a symlink in sysfs is a merged cache: absent', () => {
    const r = fake(
      'merged',
      (sys) => {
        mkdirSync(join(sys, ':0000256'));
        symlinkSync(':0000256', join(sys, 'nf_conntrack'));
      },
      slabinfo(CONNTRACK),
    );
    assert.equal(r.read(), undefined);
  });

  it('other caches merged into it: absent', () => {
    assert.equal(fake('aliased', cacheDir('144', '2'), undefined).read(), undefined);
  });

  it('no SLUB sysfs: /proc/slabinfo, and absent when it has no line or no file', () => {
    assert.deepEqual(fake('procfs', undefined, slabinfo(CONNTRACK)).read(), {
      objects: 144,
      objectSize: 256,
    });
    assert.equal(fake('procfs-merged', undefined, slabinfo(...OTHERS)).read(), undefined);
    assert.equal(fake('nothing', undefined, undefined).read(), undefined);
  });

  it('a file that cannot be parsed is an error (counted by the caller)', () => {
    assert.throws(() => fake('bad', cacheDir('lots'), undefined).read());
  });
});
