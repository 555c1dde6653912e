/**
 * The memory budget against a fake meter: the marks (80% to degrade, below 70% to recover), one
 * log line per change, headroom for attribution's growth counted until the next reading, and
 * which limit applies (the flag over the cgroup's, 0 for none).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import {
  MemoryBudget,
  type MemoryMeter,
  memoryBudget,
  ROW_BYTES,
  tableReserve,
} from '../../../src/memory/budget.js';

const MiB = 1024 ** 2;

/** A logger whose lines the test reads. */
function capture() {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as { level: number; msg: string });
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

class FakeMeter implements MemoryMeter {
  readonly source = 'test';
  used = 0;
  reads = 0;
  constructor(readonly limit: number) {}
  read(): number {
    this.reads++;
    return this.used;
  }
}

/** Lets pino's stream deliver the lines written so far. */
const flush = () => new Promise((r) => setImmediate(r));

describe('MemoryBudget', () => {
  it('degrades at 80% of the limit, recovers only below 70%, one log line each', async () => {
    const meter = new FakeMeter(100 * MiB);
    const { log, lines } = capture();
    meter.used = 50 * MiB;
    const budget = new MemoryBudget(meter, log);
    assert.equal(budget.degraded, false);
    assert.equal(budget.headroom(), 30 * MiB, 'up to the 80% mark');

    meter.used = 80 * MiB;
    budget.sample();
    assert.equal(budget.degraded, true);
    assert.equal(budget.headroom(), 0, 'no growth while degraded');
    // Between the marks nothing changes: 75% neither recovers nor logs again.
    for (const used of [90, 75, 71]) {
      meter.used = used * MiB;
      budget.sample();
      assert.equal(budget.degraded, true, `at ${used}%`);
    }
    meter.used = 69 * MiB;
    budget.sample();
    assert.equal(budget.degraded, false);
    // Back between the marks from below: still fine.
    meter.used = 79 * MiB;
    budget.sample();
    assert.equal(budget.degraded, false);
    await flush();
    assert.deepEqual(
      lines.map((l) => l.level),
      [40, 30],
      'one warning when it degrades, one info line when it recovers',
    );
  });

  it('counts what attribution was granted until the next reading', () => {
    const meter = new FakeMeter(100 * MiB);
    meter.used = 40 * MiB;
    const budget = new MemoryBudget(meter, capture().log);
    budget.spent(25 * MiB);
    assert.equal(budget.headroom(), 15 * MiB);
    budget.spent(20 * MiB);
    assert.equal(budget.headroom(), 0, 'never negative');
    // The next reading includes what was allocated: the grant is not counted twice.
    meter.used = 45 * MiB;
    budget.sample();
    assert.equal(budget.headroom(), 35 * MiB);
  });

  it('a growth that does not fit degrades at once, until memory is back under the low mark', () => {
    const meter = new FakeMeter(100 * MiB);
    meter.used = 72 * MiB;
    const budget = new MemoryBudget(meter, capture().log);
    budget.exhausted();
    assert.equal(budget.degraded, true);
    budget.sample();
    assert.equal(budget.degraded, true, '72% is above the low mark');
    meter.used = 60 * MiB;
    budget.sample();
    assert.equal(budget.degraded, false);
  });

  it("keeps the table's growth free: the reserve counts as used, for the marks and the headroom", () => {
    const meter = new FakeMeter(100 * MiB);
    meter.used = 40 * MiB;
    const budget = new MemoryBudget(meter, capture().log);
    let reserved = 30 * MiB;
    budget.reserve = () => reserved;
    assert.equal(budget.headroom(), 10 * MiB, '80 - 40 used - 30 reserved');
    reserved = 45 * MiB;
    budget.sample();
    assert.equal(budget.degraded, true, '40 + 45 is past the 80% mark');
    // The table filled: its memory moved from the reserve into the reading, still above 70%.
    meter.used = 75 * MiB;
    reserved = 0;
    budget.sample();
    assert.equal(budget.degraded, true);
    meter.used = 60 * MiB;
    reserved = 5 * MiB;
    budget.sample();
    assert.equal(budget.degraded, false, '65% committed');
    assert.equal(budget.headroom(), 15 * MiB);
  });

  it('reserves ROW_BYTES for each flow the table can still take', () => {
    assert.equal(tableReserve(262_144, 62_144), ROW_BYTES * 200_000);
    assert.equal(tableReserve(1000, 1500), 0, 'a table over the limit (a resync in flight) reserves nothing');
    assert.equal(tableReserve(undefined, 0), 0, 'nf_conntrack_max unknown');
  });

  it('keeps its last reading when the meter fails', () => {
    const meter = new FakeMeter(100 * MiB);
    meter.used = 85 * MiB;
    const budget = new MemoryBudget(meter, capture().log);
    meter.read = () => {
      throw new Error('ENOENT');
    };
    budget.sample();
    assert.equal(budget.degraded, true);
  });

  it('samples on an unref timer until stopped', async () => {
    const meter = new FakeMeter(100 * MiB);
    const budget = new MemoryBudget(meter, capture().log);
    const before = meter.reads;
    budget.start(5);
    await new Promise((r) => setTimeout(r, 60));
    budget.stop();
    const after = meter.reads;
    assert.ok(after > before, 'read on the timer');
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(meter.reads, after, 'no reading after stop');
  });
});

describe('memoryBudget', () => {
  const roots: string[] = [];
  after(() => {
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  });
  /** A cgroup v2 of 64 MiB using 10 MiB, in a fake root. */
  function cgroupRoot(): string {
    const root = mkdtempSync(join(tmpdir(), 'ctx-budget-'));
    roots.push(root);
    const files: Record<string, string> = {
      '/proc/self/cgroup': '0::/\n',
      '/proc/self/mountinfo': '35 24 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n',
      '/sys/fs/cgroup/memory.max': `${64 * MiB}\n`,
      '/sys/fs/cgroup/memory.current': `${10 * MiB}\n`,
    };
    for (const [p, c] of Object.entries(files)) {
      mkdirSync(dirname(join(root, p)), { recursive: true });
      writeFileSync(join(root, p), c);
    }
    return root;
  }

  it("takes the cgroup's limit by default, the flag's over it, none with 0", () => {
    const { log } = capture();
    const root = cgroupRoot();
    assert.equal(memoryBudget(undefined, log, root)?.limitBytes, 64 * MiB);
    assert.equal(memoryBudget(512 * MiB, log, root)?.limitBytes, 512 * MiB, 'the flag wins');
    assert.equal(memoryBudget(0, log, root), undefined, '0 turns it off');
    assert.equal(memoryBudget(undefined, log, join(root, 'none')), undefined, 'no cgroup, no flag');
  });

  it("under the flag it compares the process's RSS", () => {
    const rss = process.memoryUsage.rss();
    // A limit whose 80% mark lies below the RSS now: degraded from the first reading.
    const low = memoryBudget(Math.max(16 * MiB, Math.floor(rss / 2)), capture().log);
    assert.equal(low?.degraded, true);
    const high = memoryBudget(rss * 4, capture().log);
    assert.equal(high?.degraded, false);
  });
});
