/**
 * The parser of conntrack-tools output that the kernel tests and scripts/capture-fixtures.ts take
 * as the reference. Every line below is what conntrack v1.4.7 printed on kernel 6.18, in a network
 * namespace with loopback TCP/UDP/ICMP traffic and an nftables ruleset that set `ct zone 7` and
 * `ct mark 0x2a` on UDP port 7 and `ct mark 0x10` on TCP port 5000 (nf_conntrack_acct=1,
 * nf_conntrack_timestamp=1, TZ=UTC); the labels line and the `-S` line come from the capture
 * behind test/fixtures.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  numericField,
  parseCpuStatsLine,
  parseListLine,
  parseToolLine,
  type ToolEntry,
} from '../../integration/harness/conntrack-tool.js';

/** `conntrack -L -o extended,id` */
const LIST = {
  tcp4Assured:
    'ipv4     2 tcp      6 119 TIME_WAIT src=127.0.0.1 dst=127.0.0.1 sport=52166 dport=5000 packets=5 bytes=270 src=127.0.0.1 dst=127.0.0.1 sport=5000 dport=52166 packets=5 bytes=270 [ASSURED] mark=16 delta-time=0 use=1 id=4042505163',
  udp4Zoned:
    'ipv4     2 udp      17 29 src=127.0.0.1 dst=127.0.0.1 sport=58170 dport=7 packets=1 bytes=29 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=7 dport=58170 packets=0 bytes=0 mark=42 zone=7 delta-time=0 use=1 id=2510529242',
  udp6Replied:
    'ipv6     10 udp      17 29 src=::1 dst=::1 sport=53084 dport=5353 packets=1 bytes=49 src=::1 dst=::1 sport=5353 dport=53084 packets=1 bytes=49 mark=0 delta-time=0 use=1 id=1220193021',
  icmp4:
    'ipv4     2 icmp     1 29 src=127.0.0.1 dst=127.0.0.1 type=8 code=0 id=14192 packets=1 bytes=84 src=127.0.0.1 dst=127.0.0.1 type=0 code=0 id=14192 packets=1 bytes=84 mark=0 delta-time=0 use=1 id=4241523827',
  icmp6:
    'ipv6     10 icmpv6   58 29 src=::1 dst=::1 type=128 code=0 id=14193 packets=1 bytes=104 src=::1 dst=::1 type=129 code=0 id=14193 packets=1 bytes=104 mark=0 delta-time=0 use=1 id=4024412548',
};

/** `conntrack -L -o extended,id,ktimestamp,labels` */
const LIST_KTIMESTAMP_LABELS =
  'ipv4     2 udp      17 29 src=127.0.0.1 dst=127.0.0.1 sport=56925 dport=7 packets=1 bytes=29 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=7 dport=56925 packets=0 bytes=0 mark=42 zone=7 delta-time=1 [start=Wed Nov 25 03:09:24 2026] use=1 id=3272368812 labels=bit3,bit100';

/** `conntrack -E -o extended,id,timestamp,ktimestamp` */
const EVENTS = {
  tcp4New:
    '[1795636877.101696]\t    [NEW] ipv4     2 tcp      6 120 SYN_SENT src=127.0.0.1 dst=127.0.0.1 sport=52166 dport=5000 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=5000 dport=52166 mark=16 id=4042505163',
  tcp6Update:
    '[1795636877.102497]\t [UPDATE] ipv6     10 tcp      6 432000 ESTABLISHED src=::1 dst=::1 sport=50290 dport=5001 src=::1 dst=::1 sport=5001 dport=50290 [ASSURED] id=3957351923',
  refusedDestroy:
    '[1795636877.103327]\t[DESTROY] ipv4     2 tcp      6 120 CLOSE src=127.0.0.1 dst=127.0.0.1 sport=59680 dport=1 packets=1 bytes=60 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=1 dport=59680 packets=1 bytes=40 delta-time=0 [start=Wed Nov 25 20:01:17 2026] [stop=Wed Nov 25 20:01:17 2026] id=759833673',
  /** No mark= between the reply tuple's echo id= and the conntrack id=. */
  icmp4Update:
    '[1795636877.120014]\t [UPDATE] ipv4     2 icmp     1 30 src=127.0.0.1 dst=127.0.0.1 type=8 code=0 id=14192 src=127.0.0.1 dst=127.0.0.1 type=0 code=0 id=14192 id=4241523827',
};

function parsed(line: string): ToolEntry {
  const e = parseToolLine(line);
  assert.ok(e, `a flow line: ${line}`);
  return e;
}

describe('conntrack-tools output', () => {
  it('conntrack -L: an assured TCP flow, every part of the line', () => {
    assert.deepEqual(parsed(LIST.tcp4Assured), {
      line: LIST.tcp4Assured,
      event: undefined,
      receivedAt: undefined,
      family: 'ipv4',
      protocol: 'tcp',
      proto: 6,
      timeout: 119,
      state: 'TIME_WAIT',
      orig: { src: '127.0.0.1', dst: '127.0.0.1', proto: 6, srcPort: 52166, dstPort: 5000 },
      reply: { src: '127.0.0.1', dst: '127.0.0.1', proto: 6, srcPort: 5000, dstPort: 52166 },
      countersOrig: { packets: '5', bytes: '270' },
      countersReply: { packets: '5', bytes: '270' },
      flags: new Set(['ASSURED']),
      fields: new Map([
        ['mark', '16'],
        ['delta-time', '0'],
        ['use', '1'],
        ['id', '4042505163'],
      ]),
      start: undefined,
      stop: undefined,
      id: 4042505163,
    });
  });

  it('conntrack -L: [UNREPLIED] between the tuples, mark= and zone= after them', () => {
    const e = parsed(LIST.udp4Zoned);
    assert.equal(e.state, undefined);
    assert.equal(e.timeout, 29);
    assert.deepEqual(e.flags, new Set(['UNREPLIED']));
    assert.deepEqual(e.reply, { src: '127.0.0.1', dst: '127.0.0.1', proto: 17, srcPort: 7, dstPort: 58170 });
    assert.deepEqual(e.countersReply, { packets: '0', bytes: '0' });
    assert.equal(numericField(e, 'mark'), 42);
    assert.equal(numericField(e, 'zone'), 7);
    assert.equal(numericField(e, 'helper'), undefined);
    assert.equal(e.id, 2510529242);
  });

  it('conntrack -L: ICMP and ICMPv6 tuples keep type, code and echo id apart from the conntrack id', () => {
    const v4 = parsed(LIST.icmp4);
    assert.deepEqual(v4.orig, {
      src: '127.0.0.1',
      dst: '127.0.0.1',
      proto: 1,
      icmpType: 8,
      icmpCode: 0,
      icmpId: 14192,
    });
    assert.deepEqual(v4.reply, {
      src: '127.0.0.1',
      dst: '127.0.0.1',
      proto: 1,
      icmpType: 0,
      icmpCode: 0,
      icmpId: 14192,
    });
    assert.equal(v4.id, 4241523827);
    const v6 = parsed(LIST.icmp6);
    assert.equal(v6.family, 'ipv6');
    assert.equal(v6.protocol, 'icmpv6');
    assert.deepEqual(v6.orig, {
      src: '::1',
      dst: '::1',
      proto: 58,
      icmpType: 128,
      icmpCode: 0,
      icmpId: 14193,
    });
    assert.deepEqual(v6.reply, {
      src: '::1',
      dst: '::1',
      proto: 58,
      icmpType: 129,
      icmpCode: 0,
      icmpId: 14193,
    });
    assert.deepEqual(v6.countersOrig, { packets: '1', bytes: '104' });
    assert.equal(v6.id, 4024412548);
  });

  it('conntrack -L -o ktimestamp,labels: the start time (UTC) and the label names', () => {
    const e = parsed(LIST_KTIMESTAMP_LABELS);
    assert.equal(e.start, Date.UTC(2026, 10, 25, 3, 9, 24) / 1000);
    assert.equal(e.stop, undefined);
    assert.equal(e.fields.get('labels'), 'bit3,bit100');
    assert.equal(e.fields.get('use'), '1');
    assert.equal(e.id, 3272368812);
  });

  it('conntrack -E: the receive time, the event, and start/stop on a DESTROY', () => {
    const created = parsed(EVENTS.tcp4New);
    assert.equal(created.receivedAt, '1795636877.101696');
    assert.equal(created.event, 'new');
    assert.equal(created.state, 'SYN_SENT');
    assert.equal(created.countersOrig, undefined);
    assert.deepEqual(created.flags, new Set(['UNREPLIED']));
    assert.equal(created.id, 4042505163);

    const updated = parsed(EVENTS.tcp6Update);
    assert.equal(updated.event, 'update');
    assert.equal(updated.family, 'ipv6');
    assert.equal(updated.timeout, 432000);
    assert.equal(updated.state, 'ESTABLISHED');
    assert.deepEqual(updated.orig, { src: '::1', dst: '::1', proto: 6, srcPort: 50290, dstPort: 5001 });
    assert.deepEqual(updated.flags, new Set(['ASSURED']));
    assert.equal(numericField(updated, 'mark'), undefined);
    assert.equal(updated.id, 3957351923);

    const destroyed = parsed(EVENTS.refusedDestroy);
    assert.equal(destroyed.event, 'destroy');
    assert.equal(destroyed.state, 'CLOSE');
    assert.deepEqual(destroyed.countersOrig, { packets: '1', bytes: '60' });
    assert.deepEqual(destroyed.countersReply, { packets: '1', bytes: '40' });
    const at = Date.UTC(2026, 10, 25, 20, 1, 17) / 1000;
    assert.deepEqual([destroyed.start, destroyed.stop], [at, at]);
    assert.equal(destroyed.id, 759833673);
  });

  it('conntrack -E: an ICMP reply tuple followed directly by the conntrack id', () => {
    const e = parsed(EVENTS.icmp4Update);
    assert.equal(e.reply.icmpId, 14192);
    assert.equal(e.id, 4241523827);
  });

  it('parseListLine: the flow the kernel tests count, with a state for every protocol', () => {
    assert.deepEqual(parseListLine(LIST.tcp4Assured), {
      id: 4042505163,
      family: 'ipv4',
      protocol: 'tcp',
      state: 'TIME_WAIT',
      src: '127.0.0.1',
      dst: '127.0.0.1',
      sport: 52166,
      dport: 5000,
      icmpType: undefined,
      mark: 16,
      zone: undefined,
    });
    const states = Object.values(LIST).map((l) => parseListLine(l)?.state);
    assert.deepEqual(states, ['TIME_WAIT', 'UNREPLIED', 'REPLIED', 'REPLIED', 'REPLIED']);
    assert.equal(parseListLine(LIST.udp4Zoned)?.zone, 7);
    assert.equal(parseListLine(LIST.icmp6)?.icmpType, 128);
    assert.equal(parseListLine(LIST.icmp6)?.sport, undefined);
  });

  it('lines that are not flows are skipped; a flow printed without -o id is refused', () => {
    assert.equal(
      parseToolLine('conntrack v1.4.7 (conntrack-tools): 7 flow entries have been shown.'),
      undefined,
    );
    assert.equal(parseToolLine(''), undefined);
    // `conntrack -L -o extended`: the echo ids are not the conntrack id
    const noId =
      'ipv4     2 icmp     1 29 src=127.0.0.1 dst=127.0.0.1 type=8 code=0 id=15729 src=127.0.0.1 dst=127.0.0.1 type=0 code=0 id=15729 mark=0 use=1';
    assert.throws(() => parseToolLine(noId), /no id=/);
  });

  it('conntrack -S: the CPU and its counters by the names printed', () => {
    const line =
      'cpu=1   \tfound=0 invalid=0 insert=0 insert_failed=0 drop=0 early_drop=0 error=2 search_restart=0 clash_resolve=0 chaintoolong=0 ';
    const c = parseCpuStatsLine(line);
    assert.equal(c?.cpu, 1);
    assert.equal(c?.stats.get('error'), 2);
    assert.equal(c?.stats.get('chaintoolong'), 0);
    assert.equal(c?.stats.size, 10);
    assert.equal(
      parseCpuStatsLine('conntrack v1.4.7 (conntrack-tools): 0 flow entries have been shown.'),
      undefined,
    );
  });
});
