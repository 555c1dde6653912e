import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FlowSummary } from '../../../src/ctnetlink/summary.js';
import { AF_INET6 } from '../../../src/netlink/nfnetlink.js';
import {
  type RowExtension,
  ShadowTable,
  type StateGroup,
  type TableObserver,
} from '../../../src/table/table.js';
import { destroyed, FakeClock, icmp, tcp, udp } from '../helpers/flows.js';
import { summary } from '../helpers/summary.js';

class Recorder implements TableObserver {
  transitions: string[] = [];
  left: [string, number][] = [];
  ended: [string, number][] = [];
  transition(from: StateGroup, to: StateGroup): void {
    this.transitions.push(`${from.protocol}:${from.state}->${to.state}`);
  }
  stateLeft(g: StateGroup, s: number): void {
    this.left.push([`${g.protocol}:${g.state}`, s]);
  }
  flowEnded(g: StateGroup, s: number): void {
    this.ended.push([g.protocol, s]);
  }
}

function counts(t: ShadowTable): Record<string, number> {
  const out: Record<string, number> = {};
  for (const g of t.groups()) if (g.count !== 0) out[`${g.family}/${g.protocol}/${g.state}`] = g.count;
  return out;
}

function setup() {
  const clock = new FakeClock();
  const rec = new Recorder();
  const table = new ShadowTable(rec, clock.read);
  return { clock, rec, table };
}

describe('ShadowTable events', () => {
  it('follows a TCP flow through its states and observes each state once', () => {
    const { clock, rec, table } = setup();
    table.apply('new', summary(tcp(1, 'SYN_SENT')));
    clock.advance(0.002);
    table.apply('update', summary(tcp(1, 'SYN_RECV')));
    clock.advance(0.001);
    table.apply('update', summary(tcp(1, 'ESTABLISHED')));
    table.apply('update', summary(tcp(1, 'ESTABLISHED'))); // no state change: nothing observed
    assert.deepEqual(counts(table), { 'ipv4/tcp/ESTABLISHED': 1 });
    clock.advance(10);
    table.apply('update', summary(tcp(1, 'TIME_WAIT')));
    clock.advance(120);
    table.apply('destroy', summary(destroyed(tcp(1, 'TIME_WAIT'))));

    assert.deepEqual(rec.transitions, [
      'tcp:SYN_SENT->SYN_RECV',
      'tcp:SYN_RECV->ESTABLISHED',
      'tcp:ESTABLISHED->TIME_WAIT',
    ]);
    assert.deepEqual(
      rec.left.map(([k, s]) => [k, Math.round(s * 1000) / 1000]),
      [
        ['tcp:SYN_SENT', 0.002],
        ['tcp:SYN_RECV', 0.001],
        ['tcp:ESTABLISHED', 10],
        ['tcp:TIME_WAIT', 120],
      ],
    );
    assert.equal(rec.ended.length, 1);
    assert.equal(rec.ended[0]?.[0], 'tcp');
    assert.ok(Math.abs((rec.ended[0]?.[1] ?? 0) - 130.003) < 1e-6);
    assert.equal(table.size, 0);
    assert.deepEqual(counts(table), {});
  });

  it('derives UNREPLIED/REPLIED/ASSURED from status for protocols without states', () => {
    const { table } = setup();
    table.apply('new', summary(udp(1, 'UNREPLIED')));
    table.apply('new', summary(udp(2, 'UNREPLIED', AF_INET6)));
    table.apply('new', summary(icmp(3, 'UNREPLIED')));
    table.apply('update', summary(udp(1, 'REPLIED')));
    table.apply('update', summary(icmp(3, 'REPLIED')));
    table.apply('update', summary(udp(1, 'ASSURED')));
    assert.deepEqual(counts(table), {
      'ipv4/udp/ASSURED': 1,
      'ipv6/udp/UNREPLIED': 1,
      'ipv4/icmp/REPLIED': 1,
    });
  });

  it('uses the kernel timestamps for lifetime when the DESTROY carries them', () => {
    const { clock, rec, table } = setup();
    table.apply('new', summary(udp(1, 'UNREPLIED')));
    clock.advance(5);
    table.apply('destroy', summary(destroyed(udp(1, 'UNREPLIED'), 1_000_000_000n, 31_500_000_000n)));
    assert.deepEqual(rec.ended, [['udp', 30.5]]);
  });

  it('times events by the kernel stamp when they carry one, not by when their batch was read', () => {
    const { clock, rec, table } = setup();
    const at = (f: ReturnType<typeof tcp>, t: number) => {
      f.timestampEvent = BigInt(Math.round(t * 1e6)) * 1000n;
      return f;
    };
    table.apply('new', summary(at(tcp(1, 'SYN_SENT'), 1000)));
    table.apply('update', summary(at(tcp(1, 'ESTABLISHED'), 1000.25)));
    clock.advance(7); // the batch is read later: no effect on the durations
    table.apply('destroy', summary(at(destroyed(tcp(1, 'ESTABLISHED')), 1002)));
    assert.deepEqual(rec.left, [
      ['tcp:SYN_SENT', 0.25],
      ['tcp:ESTABLISHED', 1.75],
    ]);
    assert.deepEqual(rec.ended, [['tcp', 2]]);
  });

  it('ignores a DESTROY for an unknown flow', () => {
    const { rec, table } = setup();
    table.apply('destroy', summary(destroyed(tcp(9, 'CLOSE'))));
    assert.equal(table.size, 0);
    assert.deepEqual(rec.ended, []);
  });

  it('keeps the known state when an UPDATE carries no protoinfo', () => {
    const { table } = setup();
    table.apply('new', summary(tcp(1, 'ESTABLISHED')));
    table.apply('update', summary({ ...tcp(1, 'ESTABLISHED'), tcp: undefined }));
    assert.deepEqual(counts(table), { 'ipv4/tcp/ESTABLISHED': 1 });
  });

  it('adds a flow first seen by UPDATE without observing an unknown start', () => {
    const { clock, rec, table } = setup();
    table.apply('update', summary(tcp(1, 'ESTABLISHED')));
    clock.advance(3);
    table.apply('update', summary(tcp(1, 'FIN_WAIT')));
    table.apply('destroy', summary(destroyed(tcp(1, 'FIN_WAIT'))));
    assert.deepEqual(rec.transitions, ['tcp:ESTABLISHED->FIN_WAIT']);
    assert.deepEqual(rec.left, [['tcp:FIN_WAIT', 0]]); // ESTABLISHED's start was not seen
    assert.deepEqual(rec.ended, []);
  });

  it('exports every TCP state for both families, and UDP/ICMP states, before any flow', () => {
    const { table } = setup();
    const names = new Set(table.groups().map((g) => `${g.family}/${g.protocol}/${g.state}`));
    for (const family of ['ipv4', 'ipv6']) {
      for (const s of [
        'SYN_SENT',
        'SYN_RECV',
        'ESTABLISHED',
        'FIN_WAIT',
        'CLOSE_WAIT',
        'LAST_ACK',
        'TIME_WAIT',
        'CLOSE',
        'SYN_SENT2',
      ]) {
        assert.ok(names.has(`${family}/tcp/${s}`), `${family}/tcp/${s}`);
      }
      for (const s of ['UNREPLIED', 'REPLIED', 'ASSURED']) assert.ok(names.has(`${family}/udp/${s}`));
    }
    assert.ok(names.has('ipv4/icmp/UNREPLIED'));
    assert.ok(names.has('ipv6/icmpv6/REPLIED'));
  });
});

describe('ShadowTable resync', () => {
  it('seeds from a dump without observing states or lifetimes it did not see begin', () => {
    const { rec, table } = setup();
    table.beginSync();
    table.stage(summary(tcp(1, 'ESTABLISHED')));
    table.stage(summary(udp(2, 'ASSURED')));
    assert.deepEqual(table.commitSync(), { added: 2, updated: 0, removed: 0 });
    assert.deepEqual(counts(table), { 'ipv4/tcp/ESTABLISHED': 1, 'ipv4/udp/ASSURED': 1 });
    table.apply('update', summary(tcp(1, 'FIN_WAIT')));
    table.apply('destroy', summary(destroyed(udp(2, 'ASSURED'))));
    assert.deepEqual(rec.left, []);
    assert.deepEqual(rec.ended, []);
    assert.deepEqual(rec.transitions, ['tcp:ESTABLISHED->FIN_WAIT']);
  });

  it('does not resurrect a flow destroyed while the dump ran', () => {
    const { table } = setup();
    table.apply('new', summary(tcp(1, 'ESTABLISHED')));
    table.beginSync();
    table.apply('destroy', summary(destroyed(tcp(1, 'ESTABLISHED'))));
    table.stage(summary(tcp(1, 'ESTABLISHED'))); // the dump read it before it died
    table.commitSync();
    assert.equal(table.size, 0);
    assert.deepEqual(counts(table), {});
  });

  it('keeps an event from the dump window over the dump entry', () => {
    const { table } = setup();
    table.beginSync();
    table.apply('new', summary(tcp(1, 'SYN_SENT')));
    table.apply('update', summary(tcp(1, 'ESTABLISHED')));
    table.stage(summary(tcp(1, 'SYN_SENT'))); // read before the update
    table.apply('new', summary(udp(2, 'UNREPLIED'))); // created after the dump passed its bucket
    assert.deepEqual(table.commitSync(), { added: 0, updated: 0, removed: 0 });
    assert.deepEqual(counts(table), { 'ipv4/tcp/ESTABLISHED': 1, 'ipv4/udp/UNREPLIED': 1 });
  });

  it('reconciles after lost events: adds, updates and removes without observing', () => {
    const { rec, table } = setup();
    table.apply('new', summary(tcp(1, 'ESTABLISHED')));
    table.apply('new', summary(tcp(2, 'ESTABLISHED')));
    table.apply('new', summary(udp(3, 'UNREPLIED')));
    rec.transitions = [];
    // Events lost: 1 moved to TIME_WAIT, 2 died, 4 was born.
    table.beginSync();
    table.stage(summary(tcp(1, 'TIME_WAIT')));
    table.stage(summary(udp(3, 'UNREPLIED')));
    table.stage(summary(udp(4, 'REPLIED')));
    assert.deepEqual(table.commitSync(), { added: 1, updated: 1, removed: 1 });
    assert.deepEqual(counts(table), {
      'ipv4/tcp/TIME_WAIT': 1,
      'ipv4/udp/UNREPLIED': 1,
      'ipv4/udp/REPLIED': 1,
    });
    assert.deepEqual(rec.transitions, []);
    assert.deepEqual(rec.ended, []);
    // The state entered during the gap has no known start: leaving it observes nothing.
    table.apply('destroy', summary(destroyed(tcp(1, 'TIME_WAIT'))));
    assert.deepEqual(rec.left, []);
  });

  it('observes a flow the commit removed when its DESTROY is read after (two sockets race)', () => {
    const { clock, rec, table } = setup();
    table.apply('new', summary(udp(1, 'UNREPLIED')));
    table.apply('new', summary(udp(2, 'UNREPLIED')));
    clock.advance(4);
    // Both die; the dump lacks them and is committed before their DESTROYs are read.
    table.beginSync();
    assert.deepEqual(table.commitSync(), { added: 0, updated: 0, removed: 2 });
    assert.equal(table.size, 0);
    clock.advance(1);
    table.apply('destroy', summary(destroyed(udp(1, 'UNREPLIED'))));
    assert.deepEqual(rec.ended, [['udp', 5]]);
    assert.deepEqual(rec.left, [['udp:UNREPLIED', 5]]);
    // Once only, and not after the time-to-live; the counts were settled at the commit.
    table.apply('destroy', summary(destroyed(udp(1, 'UNREPLIED'))));
    clock.advance(10);
    table.apply('destroy', summary(destroyed(udp(2, 'UNREPLIED'))));
    assert.deepEqual(rec.ended, [['udp', 5]]);
    assert.deepEqual(counts(table), {});
  });

  it('a late DESTROY in another state observes the transition, as an on-time one does', () => {
    const { clock, rec, table } = setup();
    table.apply('new', summary(tcp(1, 'ESTABLISHED')));
    rec.transitions = [];
    clock.advance(2);
    table.beginSync();
    table.commitSync();
    table.apply('destroy', summary(tcp(1, 'CLOSE')));
    assert.deepEqual(rec.transitions, ['tcp:ESTABLISHED->CLOSE']);
    assert.deepEqual(rec.left, [
      ['tcp:ESTABLISHED', 2],
      ['tcp:CLOSE', 0],
    ]);
    assert.deepEqual(rec.ended, [['tcp', 2]]);
  });

  it('a NEW read after the dump that added its flow gives the flow its start', () => {
    const { clock, rec, table } = setup();
    table.beginSync();
    table.stage(summary(udp(1, 'UNREPLIED'))); // the dump, read first
    table.commitSync();
    table.apply('new', summary(udp(1, 'UNREPLIED'))); // its NEW, sent before the dump
    clock.advance(3);
    table.apply('destroy', summary(destroyed(udp(1, 'UNREPLIED'))));
    assert.deepEqual(rec.ended, [['udp', 3]]);
    assert.deepEqual(rec.left, [['udp:UNREPLIED', 3]]);
  });

  it('restartSync forgets a dump attempt the kernel interrupted', () => {
    const { table } = setup();
    table.beginSync();
    table.stage(summary(tcp(1, 'ESTABLISHED')));
    table.restartSync();
    table.stage(summary(tcp(2, 'ESTABLISHED')));
    table.commitSync();
    assert.equal(table.size, 1);
  });

  it('abortSync keeps what events and the partial dump saw, and removes nothing', () => {
    const { table } = setup();
    table.apply('new', summary(tcp(1, 'ESTABLISHED')));
    table.apply('new', summary(udp(3, 'UNREPLIED')));
    table.beginSync();
    table.stage(summary(tcp(2, 'ESTABLISHED'))); // merged as it arrives: the kernel has it
    table.apply('destroy', summary(destroyed(udp(3, 'UNREPLIED'))));
    table.abortSync();
    assert.equal(table.syncing, false);
    // flow 3's dead row is gone with the sync; flow 1 was not seen by the dump but stays
    assert.deepEqual(counts(table), { 'ipv4/tcp/ESTABLISHED': 2 });
    assert.equal(table.size, 2);
    // and the next resync starts clean: nothing is left marked as seen or touched
    table.beginSync();
    table.stage(summary(tcp(2, 'ESTABLISHED')));
    assert.deepEqual(table.commitSync(), { added: 0, updated: 0, removed: 1 });
    assert.deepEqual(counts(table), { 'ipv4/tcp/ESTABLISHED': 1 });
  });

  it('counts flows a start-up dump adds as silent until an event or a re-dump accounts for them', () => {
    const { table } = setup();
    table.beginSync(true);
    for (const f of [tcp(1, 'ESTABLISHED'), tcp(2, 'ESTABLISHED'), udp(3, 'ASSURED')])
      table.stage(summary(f));
    table.commitSync();
    assert.equal(table.silentFlows, 3);
    // An event proves the kernel reports on flow 1 after all.
    table.apply('update', summary(tcp(1, 'FIN_WAIT')));
    assert.equal(table.silentFlows, 2);
    // A later (not silent) dump: 2 is gone, 3 stays silent, new flow 4 is not silent.
    table.beginSync();
    for (const f of [tcp(1, 'FIN_WAIT'), udp(3, 'ASSURED'), udp(4, 'UNREPLIED')]) table.stage(summary(f));
    table.commitSync();
    assert.equal(table.silentFlows, 1);
    assert.equal(table.size, 3);
    table.apply('destroy', summary(destroyed(udp(3, 'ASSURED'))));
    assert.equal(table.silentFlows, 0);
  });

  it('keeps two flows whose CTA_IDs collide apart by their tuples', () => {
    const { table } = setup();
    const a = udp(7, 'UNREPLIED');
    const b = udp(7, 'UNREPLIED');
    b.orig = { ...b.orig!, srcPort: 50000 };
    table.apply('new', summary(a));
    table.apply('new', summary(b));
    assert.equal(table.size, 2);
    table.apply('destroy', summary(destroyed(a)));
    assert.equal(table.size, 1);
    // and a dump that has both does not merge them either
    table.beginSync();
    table.stage(summary(a));
    table.stage(summary(b));
    table.commitSync();
    assert.equal(table.size, 2);
  });
});

describe('ShadowTable row extension', () => {
  /** Follows rows as an attribution extension would, and checks each call against its own view. */
  class IdsByRow implements RowExtension {
    ids = new Float64Array(0);
    live = new Set<number>();
    resize(capacity: number): void {
      const next = new Float64Array(capacity);
      next.set(this.ids.subarray(0, Math.min(capacity, this.ids.length)));
      this.ids = next;
    }
    added(row: number, s: FlowSummary): void {
      assert.ok(!this.live.has(s.id), `flow ${s.id} added twice`);
      this.ids[row] = s.id;
      this.live.add(s.id);
    }
    updated(row: number, s: FlowSummary): void {
      assert.equal(this.ids[row], s.id, `row ${row} updated for flow ${s.id} holds ${this.ids[row]}`);
    }
    removed(row: number): void {
      assert.ok(this.live.delete(this.ids[row]!), `row ${row} (flow ${this.ids[row]}) removed twice`);
    }
    moved(from: number, to: number): void {
      this.ids[to] = this.ids[from]!;
    }
  }

  it('keeps per-row data with its flow through inserts, destroys, swaps, growth and resyncs', () => {
    const ext = new IdsByRow();
    const clock = new FakeClock();
    const table = new ShadowTable({ transition() {}, stateLeft() {}, flowEnded() {} }, clock.read, ext);
    const kernel = new Set<number>();
    let seed = 12345;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const event = (id: number) => {
      if (kernel.has(id) && rand(3) === 0) {
        kernel.delete(id);
        table.apply('destroy', summary(destroyed(udp(id, 'REPLIED'))));
      } else if (kernel.has(id)) table.apply('update', summary(udp(id, 'REPLIED')));
      else {
        kernel.add(id);
        table.apply('new', summary(udp(id, 'UNREPLIED')));
      }
    };
    /** Lost events: the kernel changes without telling. */
    const loseEvents = (n: number) => {
      for (let i = 0; i < n; i++) {
        const id = 1 + rand(5000);
        if (kernel.has(id)) kernel.delete(id);
        else kernel.add(id);
      }
    };
    /** A resync, with events while the dump runs. */
    const resync = () => {
      table.beginSync();
      const dump = [...kernel];
      for (const [i, id] of dump.entries()) {
        if (i % 500 === 0) event(1 + rand(5000));
        if (kernel.has(id)) table.stage(summary(udp(id, 'REPLIED')));
      }
      table.commitSync();
    };
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 3000; i++) event(1 + rand(5000));
      loseEvents(200);
      resync();
      assert.equal(table.size, kernel.size, `round ${round}: table size`);
      assert.deepEqual([...ext.live].sort(), [...kernel].sort(), `round ${round}: extension's flows`);
    }
  });

  it('folds state numbers it does not know into one UNKNOWN per protocol, however many there are', () => {
    const { table, rec } = setup();
    const groupsBefore = table.groups().length;
    for (let n = 10; n < 256; n++) {
      const s = summary(tcp(n, 'ESTABLISHED'));
      s.protoState = n; // beyond TCP_STATES: a forged message, or a state a newer kernel adds
      table.apply('new', s);
    }
    const s = summary(tcp(10, 'ESTABLISHED'));
    table.apply('update', s);
    assert.equal(counts(table)['ipv4/tcp/UNKNOWN'], 245);
    assert.equal(counts(table)['ipv4/tcp/ESTABLISHED'], 1);
    assert.equal(table.groups().length, groupsBefore + 1, 'one group for every unknown number');
    assert.deepEqual(rec.transitions, ['tcp:UNKNOWN->ESTABLISHED']);
  });
});
