/**
 * Captures ctnetlink messages from the running kernel as annotated test fixtures:
 *
 *   sudo node dist/scripts/capture-fixtures.js [outdir]     (default test/fixtures)
 *
 * writes events.json, dump.json and stats.json: arrays of
 * `{ name, description, captured: { kernel, date }, hex, expect }`, one netlink message each (the
 * format is declared in test/unit/helpers/fixtures.ts).
 *
 * It creates a network namespace (ctfix-<pid>) with accounting and timestamps on, an nftables
 * ruleset that gives some flows a zone, a mark, labels, the ftp helper, DNAT and SNAT, and makes
 * known traffic on its loopback from a child process inside the namespace. The child records the
 * raw bytes of every event, of a table dump and of the statistics replies; `conntrack -E` runs
 * beside it and `conntrack -L`/`-S`/`-C` run right after each request. `expect` is built from what
 * conntrack-tools printed for the same entry (its text is kept in `description`), never from our
 * decoder, which is used here only to pick and pair messages. Check the output by hand before
 * committing it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventType } from '../src/ctnetlink/event.js';
import { cpuStatsRequest, dumpTableRequest, globalStatsRequest } from '../src/ctnetlink/requests.js';
import { decodeCpuStats } from '../src/ctnetlink/stats.js';
import { EventSocket } from '../src/netlink/events.js';
import { DatagramCursor, MessageCursor } from '../src/netlink/framing.js';
import { readU16h } from '../src/netlink/nlmsg.js';
import { RequestSocket } from '../src/netlink/request.js';
import {
  numericField,
  parseCpuStatsLine,
  parseToolLine,
  type ToolEntry,
} from '../test/integration/harness/conntrack-tool.js';
import { finished } from '../test/integration/harness/netns.js';
import { portOf, udpSocket } from '../test/integration/harness/traffic.js';
import { ROOT } from '../test/paths.js';
import { decodeFlow } from '../test/support/codec/flow.js';
import type { Fixture, FlowExpect, StatsExpect, TupleExpect } from '../test/unit/helpers/fixtures.js';

/** Ports with a meaning in RULESET. */
const PORT = {
  /** zone 7 (both hooks), mark 0x2a, labels 3 and 100; nothing listens: unreplied */
  tagged: 7,
  /** dropped on input: unreplied */
  dropped: 9,
  /** nothing listens, not dropped: the SYN gets a RST */
  closed: 1,
  ftp: 21,
  /** DNAT to dnatTarget */
  dnat: 8080,
  dnatTarget: 8081,
  /** SNAT from 127.0.0.1 to 127.0.0.2 */
  snat: 5353,
} as const;

/** Label bits set on the tagged flow; one above 63 shows the layout of the 128-bit bitmap. */
const LABELS = [3, 100] as const;

const RULESET = `table inet capture {
  ct helper ftp-standard {
    type "ftp" protocol tcp;
  }
  chain raw_out {
    type filter hook output priority raw; policy accept;
    udp dport ${PORT.tagged} ct zone set 7
  }
  chain raw_pre {
    type filter hook prerouting priority raw; policy accept;
    udp dport ${PORT.tagged} ct zone set 7
  }
  chain out {
    type filter hook output priority 0; policy accept;
    ct state new counter
    udp dport ${PORT.tagged} ct mark set 0x2a
    ${LABELS.map((l) => `udp dport ${PORT.tagged} ct label set ${l}`).join('\n    ')}
    tcp dport ${PORT.ftp} ct helper set "ftp-standard"
  }
  chain in {
    type filter hook input priority 0; policy accept;
    udp dport ${PORT.dropped} drop
  }
}
table ip nat {
  chain out {
    type nat hook output priority -100; policy accept;
    tcp dport ${PORT.dnat} dnat to 127.0.0.1:${PORT.dnatTarget}
  }
  chain post {
    type nat hook postrouting priority 100; policy accept;
    udp dport ${PORT.snat} snat to 127.0.0.2
  }
}
`;

// ---------------------------------------------------------------------------------------------
// Helpers

function run(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, env: { ...process.env, TZ: 'UTC' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * conntrack-tools prints labels only by name, from /etc/xtables/connlabel.conf. The map is laid
 * over /etc in a private mount namespace so that nothing on the host changes.
 */
function withLabelMap(dir: string, argv: string[]): string[] {
  const upper = join(dir, 'upper');
  mkdirSync(join(upper, 'xtables'), { recursive: true });
  mkdirSync(join(dir, 'work'), { recursive: true });
  writeFileSync(join(upper, 'xtables', 'connlabel.conf'), LABELS.map((l) => `${l} bit${l}\n`).join(''));
  const quoted = argv.map((a) => `'${a}'`).join(' ');
  return [
    'unshare',
    '-m',
    '--propagation',
    'private',
    'sh',
    '-c',
    `mount -t overlay overlay -o lowerdir=/etc,upperdir=${upper},workdir=${join(dir, 'work')} /etc && exec ${quoted}`,
  ];
}

function conntrackTool(dir: string, args: string[]): string {
  const [cmd, ...rest] = withLabelMap(dir, ['conntrack', ...args]);
  return run(cmd!, rest);
}

// ---------------------------------------------------------------------------------------------
// Traffic, made by the child inside the namespace

function listenTcp(addr: string, port: number, onConn: (s: Socket) => void): Promise<Server> {
  return new Promise((resolve, reject) => {
    const srv = createServer((s) => {
      s.on('error', () => {});
      onConn(s);
    });
    srv.once('error', reject);
    srv.listen(port, addr, () => resolve(srv));
  });
}

/** Connects, sends `ping`, waits for the echo, closes from the client side, waits for close. */
async function tcpExchange(addr: string, port: number): Promise<void> {
  const sock = connect(port, addr);
  await once(sock, 'connect');
  sock.write('ping');
  await once(sock, 'data');
  sock.end();
  await once(sock, 'close');
}

function echo(s: Socket): void {
  s.on('data', (d) => s.write(d));
  s.on('end', () => s.end());
}

async function tcpComplete(addr: string): Promise<void> {
  const srv = await listenTcp(addr, 0, echo);
  await tcpExchange(addr, portOf(srv));
  srv.close();
}

/** A SYN to a port nobody listens on: the stack answers RST, conntrack goes SYN_SENT -> CLOSE. */
async function tcpRefused(addr: string, port: number): Promise<void> {
  const sock = connect(port, addr);
  const [err] = (await once(sock, 'error').catch((e: unknown) => [e])) as [NodeJS.ErrnoException];
  if (err.code !== 'ECONNREFUSED') throw err;
}

async function tcpDnat(): Promise<void> {
  const srv = await listenTcp('127.0.0.1', PORT.dnatTarget, echo);
  await tcpExchange('127.0.0.1', PORT.dnat);
  srv.close();
}

/** Control connection with the ftp helper, PASV, and the data connection it expects. */
async function ftp(): Promise<void> {
  let dataSrv: Server | undefined;
  const srv = await listenTcp('127.0.0.1', PORT.ftp, (s) => {
    s.write('220 capture-fixtures\r\n');
    s.on('data', async (d) => {
      const cmd = d.toString().trim();
      if (cmd === 'PASV') {
        dataSrv = await listenTcp('127.0.0.1', 0, (ds) => ds.end('hello\r\n'));
        const p = portOf(dataSrv);
        s.write(`227 Entering Passive Mode (127,0,0,1,${p >> 8},${p & 0xff}).\r\n`);
      } else if (cmd === 'QUIT') {
        s.end('221 bye\r\n');
      }
    });
  });
  const ctl = connect(PORT.ftp, '127.0.0.1');
  const lines: string[] = [];
  let waiting: ((line: string) => void) | undefined;
  ctl.on('data', (d) => {
    for (const line of d.toString().split('\r\n').filter(Boolean)) {
      if (waiting) {
        const w = waiting;
        waiting = undefined;
        w(line);
      } else lines.push(line);
    }
  });
  const nextLine = () =>
    new Promise<string>((r) => {
      const l = lines.shift();
      if (l !== undefined) r(l);
      else waiting = r;
    });
  await nextLine(); // 220
  ctl.write('PASV\r\n');
  const pasv = /\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(await nextLine());
  if (!pasv) throw new Error('no PASV reply');
  const dataPort = Number(pasv[5]) * 256 + Number(pasv[6]);
  const data = connect(dataPort, '127.0.0.1');
  data.resume();
  await once(data, 'close');
  ctl.write('QUIT\r\n');
  await nextLine(); // 221
  ctl.end();
  await once(ctl, 'close');
  dataSrv?.close();
  srv.close();
}

/** One datagram to `port`, or (port undefined) to an echo server, whose answer is awaited. */
async function udp(addr: string, port?: number): Promise<void> {
  const client = await udpSocket(addr);
  let server: UdpSocket | undefined;
  if (port === undefined) {
    const srv = await udpSocket(addr);
    srv.on('message', (msg, rinfo) => srv.send(msg, rinfo.port, rinfo.address));
    server = srv;
  }
  const answered = once(client, 'message');
  await new Promise<void>((r) => client.send('x', port ?? server!.address().port, addr, () => r()));
  if (server) await answered;
  else await sleep(50);
  client.close();
  server?.close();
}

/** The echo server listens on PORT.snat; the client's datagram leaves as 127.0.0.2. */
async function udpSnat(): Promise<void> {
  const srv = createSocket('udp4');
  await new Promise<void>((r) => srv.bind(PORT.snat, '127.0.0.1', () => r()));
  srv.on('message', (msg, rinfo) => srv.send(msg, rinfo.port, rinfo.address));
  const client = await udpSocket('127.0.0.1');
  const answered = once(client, 'message');
  client.send('x', PORT.snat, '127.0.0.1');
  await answered;
  client.close();
  srv.close();
}

// ---------------------------------------------------------------------------------------------
// The child: inside the namespace

interface Raw {
  kind: 'event' | 'dump' | 'cpu-stats' | 'global-stats';
  hex: string;
}

interface ChildReport {
  raws: Raw[];
  /** conntrack -L right after the dump. */
  listing: string[];
  /** conntrack -L -u <status> for the statuses it can filter by: the ids it listed. */
  byStatus: Record<string, number[]>;
  /** conntrack -S right after the per-CPU statistics. */
  cpuStats: string[];
  /** conntrack -C and the nf_conntrack_max sysctl right after the global statistics. */
  count: number;
  max: number;
}

const FILTERABLE_STATUS = ['EXPECTED', 'SEEN_REPLY', 'ASSURED'] as const;

async function child(tmp: string): Promise<void> {
  const raws: Raw[] = [];
  const events = new EventSocket(
    {
      onBatch: (batch) => {
        const d = new DatagramCursor().reset(batch);
        const m = new MessageCursor();
        while (d.next()) {
          m.reset(d.buf, d.start, d.end);
          while (m.next()) raws.push({ kind: 'event', hex: d.buf.subarray(m.start, m.end).toString('hex') });
        }
        if (d.truncated > 0) throw d.truncation('event');
      },
      onOverrun: () => {
        throw new Error('events lost while capturing');
      },
      onError: (err) => {
        throw err;
      },
    },
    { rcvbuf: 4 << 20 },
  );
  await tcpComplete('127.0.0.1');
  await tcpComplete('::1');
  await tcpRefused('127.0.0.1', PORT.closed);
  await udp('127.0.0.1');
  await udp('::1', PORT.dropped);
  await udp('127.0.0.1', PORT.tagged);
  await tcpDnat();
  await udpSnat();
  await ftp();
  run('ping', ['-c', '1', '-W', '1', '127.0.0.1']);
  run('ping', ['-6', '-c', '1', '-W', '1', '::1']);
  await sleep(300);

  const req = RequestSocket.open();
  const capture = async (kind: Raw['kind'], r: ReturnType<typeof dumpTableRequest>) => {
    await req.request(r.type, r.flags, r.payload, (buf, _type, _flags, start, end) =>
      raws.push({ kind, hex: buf.subarray(start, end).toString('hex') }),
    );
  };
  await capture('dump', dumpTableRequest());
  // At once: timeouts count down in seconds between the two.
  const listing = conntrackTool(tmp, ['-L', '-o', 'extended,id,ktimestamp,labels']);
  const byStatus: Record<string, number[]> = {};
  for (const s of FILTERABLE_STATUS) {
    byStatus[s] = conntrackTool(tmp, ['-L', '-o', 'id', '-u', s])
      .split('\n')
      .flatMap((l) => {
        const m = / id=(\d+)\s*$/.exec(l);
        return m ? [Number(m[1])] : [];
      });
  }
  await capture('cpu-stats', cpuStatsRequest());
  const cpuStats = conntrackTool(tmp, ['-S']);
  await capture('global-stats', globalStatsRequest());
  const count = Number(conntrackTool(tmp, ['-C']).trim());
  const max = Number(run('sysctl', ['-n', 'net.netfilter.nf_conntrack_max']).trim());

  // DESTROY events with counters, timestamps, mark, zone, labels; and of a NATed flow.
  conntrackTool(tmp, ['-D', '-w', '7', '-p', 'udp', '--orig-port-dst', String(PORT.tagged)]);
  conntrackTool(tmp, ['-D', '-p', 'tcp', '--orig-port-dst', String(PORT.dnat)]);
  conntrackTool(tmp, ['-D', '-f', 'ipv6', '-p', 'tcp']);
  await sleep(300);
  req.close();
  events.close();
  const report: ChildReport = {
    raws,
    listing: listing.split('\n').filter((l) => l.trim() !== ''),
    byStatus,
    cpuStats: cpuStats.split('\n').filter((l) => l.trim() !== ''),
    count,
    max,
  };
  process.stdout.write(JSON.stringify(report));
}

/**
 * The expected flow: everything the tool printed, plus the IPS_* bits it does not print, each from
 * a rule about this capture that a reader can check:
 * - CONFIRMED: every entry that is in the table or sends an event has been confirmed;
 * - SEEN_REPLY: absent exactly when the tool prints [UNREPLIED]; ASSURED as printed;
 * - EXPECTED: `conntrack -L -u EXPECTED` listed it (dump), or it is the ftp data flow (events);
 * - SRC_NAT/DST_NAT: the reply tuple is not the inverse of the original on that side;
 * - SRC_NAT_DONE/DST_NAT_DONE: every IPv4 flow went through the ip nat hooks (table ip nat), which
 *   bind even flows that no rule matches (a null binding); IPv6 has no nat table here;
 * - HELPER: the helper was assigned by an nftables `ct helper set` rule, which sets the bit;
 * - DYING: a DESTROY event.
 */
function expectedStatus(e: ToolEntry, expected: boolean): string[] {
  const s = new Set<string>(['CONFIRMED']);
  if (expected) s.add('EXPECTED');
  if (!e.flags.has('UNREPLIED')) s.add('SEEN_REPLY');
  if (e.flags.has('ASSURED')) s.add('ASSURED');
  if (e.reply.dst !== e.orig.src || e.reply.dstPort !== e.orig.srcPort) s.add('SRC_NAT');
  if (e.reply.src !== e.orig.dst || e.reply.srcPort !== e.orig.dstPort) s.add('DST_NAT');
  if (e.family === 'ipv4') {
    s.add('SRC_NAT_DONE');
    s.add('DST_NAT_DONE');
  }
  if (e.event === 'destroy') s.add('DYING');
  if (e.fields.has('helper')) s.add('HELPER');
  const order = [
    'EXPECTED',
    'SEEN_REPLY',
    'ASSURED',
    'CONFIRMED',
    'SRC_NAT',
    'DST_NAT',
    'SEQ_ADJUST',
    'SRC_NAT_DONE',
    'DST_NAT_DONE',
    'DYING',
    'FIXED_TIMEOUT',
    'TEMPLATE',
    'UNTRACKED',
    'HELPER',
  ];
  return order.filter((n) => s.has(n));
}

function flowExpect(e: ToolEntry, extra: { expected: boolean; master: TupleExpect | undefined }): FlowExpect {
  const x: FlowExpect = {
    family: e.family,
    id: e.id,
    orig: e.orig,
    reply: e.reply,
    status: expectedStatus(e, extra.expected),
  };
  if (e.event) x.event = e.event;
  if (extra.master) x.master = extra.master;
  if (e.state !== undefined) x.tcpState = e.state;
  if (e.timeout !== undefined) x.timeout = e.timeout;
  const mark = numericField(e, 'mark');
  const zone = numericField(e, 'zone');
  const use = numericField(e, 'use');
  if (mark !== undefined) x.mark = mark;
  if (zone !== undefined) x.zone = zone;
  if (use !== undefined) x.use = use;
  if (e.countersOrig) x.countersOrig = e.countersOrig;
  if (e.countersReply) x.countersReply = e.countersReply;
  if (e.start !== undefined) x.timestampStartSec = e.start;
  if (e.stop !== undefined) x.timestampStopSec = e.stop;
  if (e.receivedAt !== undefined) x.eventReceivedAt = e.receivedAt;
  const helper = e.fields.get('helper');
  if (helper !== undefined) x.helper = helper;
  const labels = e.fields.get('labels');
  if (labels !== undefined) x.labels = labels.split(',').map((l) => Number(l.replace(/^bit/, '')));
  return x;
}

/** What each flow of the capture is for; names the fixtures. */
const ROLES = {
  tcp4: 'TCP over 127.0.0.1: handshake, data both ways, close by the client',
  tcp6: 'TCP over ::1: handshake, data both ways, close by the client; deleted with conntrack -D',
  refused: `TCP SYN to 127.0.0.1 port ${PORT.closed}, where nothing listens: answered with RST`,
  'udp4-replied': 'UDP over 127.0.0.1 to an echo server: one datagram each way',
  'udp6-unreplied': `UDP over ::1 to port ${PORT.dropped}, dropped on input: no answer`,
  tagged: `UDP over 127.0.0.1 to port ${PORT.tagged}: nftables sets ct zone 7, ct mark 0x2a, ct labels ${LABELS.join(' and ')}; nothing answers; deleted with conntrack -D`,
  dnat: `TCP to 127.0.0.1 port ${PORT.dnat}, DNATed to port ${PORT.dnatTarget} (nat output hook); deleted with conntrack -D`,
  snat: `UDP to 127.0.0.1 port ${PORT.snat}, SNATed from 127.0.0.1 to 127.0.0.2 (nat postrouting hook), answered`,
  'ftp-control': `FTP control connection to port ${PORT.ftp}, ftp helper assigned by nftables (ct helper set), PASV`,
  'ftp-data': 'FTP passive data connection, created from the expectation of the ftp helper',
  icmp: 'ping -c1 127.0.0.1: echo request and reply',
  icmpv6: 'ping -6 -c1 ::1: echo request and reply',
} as const;

type Role = keyof typeof ROLES;

function role(e: ToolEntry, expectedIds: ReadonlySet<number>): Role {
  const dport = e.orig.dstPort;
  if (e.proto === 1) return 'icmp';
  if (e.proto === 58) return 'icmpv6';
  if (e.proto === 6) return tcpRole(e, expectedIds);
  if (dport === PORT.tagged) return 'tagged';
  if (dport === PORT.snat) return 'snat';
  return e.family === 'ipv6' ? 'udp6-unreplied' : 'udp4-replied';
}

function tcpRole(e: ToolEntry, expectedIds: ReadonlySet<number>): Role {
  const dport = e.orig.dstPort;
  if (dport === PORT.ftp) return 'ftp-control';
  if (dport === PORT.dnat) return 'dnat';
  if (dport === PORT.closed) return 'refused';
  if (expectedIds.has(e.id)) return 'ftp-data';
  return e.family === 'ipv6' ? 'tcp6' : 'tcp4';
}

/** A representative subset: the whole TCP walk once, and one message for every other feature. */
const KEEP_EVENTS = new Set([
  'tcp4/*',
  'tcp6/destroy',
  'refused/destroy',
  'udp4-replied/update',
  'udp6-unreplied/new',
  'tagged/new',
  'tagged/destroy',
  'dnat/new',
  'snat/update',
  'ftp-control/new',
  'ftp-data/new',
  'icmp/new',
  'icmpv6/update',
]);

const KEEP_DUMP = new Set<Role>([
  'tcp4',
  'tcp6',
  'tagged',
  'dnat',
  'snat',
  'ftp-control',
  'ftp-data',
  'icmp',
  'icmpv6',
]);

// ---------------------------------------------------------------------------------------------
// The parent: namespace, tool, child, fixtures

/** The child's output, once it exits with 0 or was stopped with SIGINT (as the tool is). */
async function childProcessDone(c: ChildProcess, what: string): Promise<string> {
  const { code, signal, stdout, stderr } = await finished(c);
  if (code === 0 || signal === 'SIGINT') return stdout;
  throw new Error(`${what} exited ${code ?? signal}: ${stderr}`);
}

const headerType = (buf: Buffer) => readU16h(buf, 4);
const headerFlags = (buf: Buffer) => readU16h(buf, 6);

/** The capture's flows as conntrack -L saw them, and what each fixture says about them. */
interface FlowContext {
  captured: Fixture<unknown>['captured'];
  listed: Map<number, ToolEntry>;
  expectedIds: Set<number>;
  /** The ftp control connection's tuple for a flow created from its expectation. */
  masterOf(id: number): TupleExpect | undefined;
  /** Which of the filterable statuses conntrack -L -u listed the flow under. */
  statusEvidence(id: number): string;
}

function flowContext(report: ChildReport): FlowContext {
  const listed = new Map(report.listing.flatMap((l) => parseToolLine(l) ?? []).map((e) => [e.id, e]));
  const expectedIds = new Set(report.byStatus['EXPECTED'] ?? []);
  const ftpControl = [...listed.values()].find((e) => e.fields.get('helper') === 'ftp');
  return {
    captured: { kernel: release(), date: new Date().toISOString().slice(0, 10) },
    listed,
    expectedIds,
    masterOf: (id) => (expectedIds.has(id) ? ftpControl?.orig : undefined),
    statusEvidence: (id) =>
      FILTERABLE_STATUS.map(
        (s) => `${s}: ${report.byStatus[s]?.includes(id) ? 'listed' : 'not listed'}`,
      ).join(', '),
  };
}

function dumpFixtures(report: ChildReport, ctx: FlowContext): Fixture<FlowExpect>[] {
  const dump: Fixture<FlowExpect>[] = [];
  for (const raw of report.raws.filter((r) => r.kind === 'dump')) {
    const buf = Buffer.from(raw.hex, 'hex');
    const id = decodeFlow(buf, 0, buf.length).id;
    const e = id === undefined ? undefined : ctx.listed.get(id);
    if (!e) throw new Error(`dump entry ${id} is not in conntrack -L`);
    const r = role(e, ctx.expectedIds);
    if (!KEEP_DUMP.has(r)) continue;
    dump.push({
      name: `dump: ${r}${e.state ? ` ${e.state}` : ''}`,
      description:
        `${ROLES[r]}. CT_NEW with NLM_F_MULTI, from CT_GET|NLM_F_DUMP (AF_UNSPEC). ` +
        `conntrack -L -o extended,id,ktimestamp,labels: ${e.line} | conntrack -L -o id -u <status>: ${ctx.statusEvidence(e.id)}`,
      captured: ctx.captured,
      hex: raw.hex,
      // ctnetlink_fill_info dumps the master tuple of every related flow.
      expect: flowExpect(e, { expected: ctx.expectedIds.has(e.id), master: ctx.masterOf(e.id) }),
    });
  }
  return dump;
}

const EVENT_MESSAGES = {
  new: 'IPCTNL_MSG_CT_NEW with NLM_F_CREATE|NLM_F_EXCL',
  update: 'IPCTNL_MSG_CT_NEW without NLM_F_CREATE|NLM_F_EXCL',
  destroy: 'IPCTNL_MSG_CT_DELETE',
} as const;

/** Pairs the k-th event (id, type) we received with the k-th the tool printed. */
function eventFixtures(
  report: ChildReport,
  toolEvents: ToolEntry[],
  ctx: FlowContext,
): Fixture<FlowExpect>[] {
  const seen = new Map<string, number>();
  const events: Fixture<FlowExpect>[] = [];
  for (const raw of report.raws.filter((r) => r.kind === 'event')) {
    const buf = Buffer.from(raw.hex, 'hex');
    const type = eventType(headerType(buf), headerFlags(buf));
    const id = decodeFlow(buf, 0, buf.length).id;
    const key = `${id}/${type}`;
    const k = seen.get(key) ?? 0;
    seen.set(key, k + 1);
    const e = toolEvents.filter((t) => t.id === id && t.event === type)[k];
    if (!e || type === undefined) throw new Error(`event ${key} #${k} was not printed by conntrack -E`);
    const r = role(e, ctx.expectedIds);
    if (!KEEP_EVENTS.has(`${r}/${type}`) && !KEEP_EVENTS.has(`${r}/*`)) continue;
    // The kernel sends CTA_TUPLE_MASTER in an event only with IPCT_RELATED: the NEW event of a
    // flow created from an expectation (ctnetlink_conntrack_event). The tool does not print it.
    const master = type === 'new' ? ctx.masterOf(e.id) : undefined;
    events.push({
      name: `${type}: ${r}${e.state ? ` ${e.state}` : ''}`,
      description:
        `${ROLES[r]}. ${EVENT_MESSAGES[type]} on the NEW/UPDATE/DESTROY groups. ` +
        `conntrack -E -o extended,id,timestamp,ktimestamp,labels: ${e.line.replace(/\t/g, ' ')}`,
      captured: ctx.captured,
      hex: raw.hex,
      expect: flowExpect(e, { expected: ctx.expectedIds.has(e.id), master }),
    });
  }
  return events;
}

function statsFixtures(report: ChildReport, captured: FlowContext['captured']): Fixture<StatsExpect>[] {
  const stats: Fixture<StatsExpect>[] = [];
  const toolCpu = new Map(
    report.cpuStats.flatMap((l) => {
      const c = parseCpuStatsLine(l);
      if (!c) return [];
      // the tool prints `chaintoolong`; stats.ts names CTA_STATS_CHAIN_TOOLONG `chain_toolong`
      const values = Object.fromEntries(
        [...c.stats].map(([k, v]) => [k === 'chaintoolong' ? 'chain_toolong' : k, v]),
      );
      return [[c.cpu, { line: l.trim(), values }] as const];
    }),
  );
  for (const raw of report.raws.filter((r) => r.kind === 'cpu-stats')) {
    const buf = Buffer.from(raw.hex, 'hex');
    const cpu = decodeCpuStats(buf, 0, buf.length).cpu;
    const t = toolCpu.get(cpu);
    if (!t) throw new Error(`cpu ${cpu} is not in conntrack -S`);
    stats.push({
      name: `per-CPU statistics, cpu ${cpu}`,
      description: `IPCTNL_MSG_CT_GET_STATS_CPU reply (nfgenmsg.res_id = cpu). conntrack -S: ${t.line}`,
      captured,
      hex: raw.hex,
      expect: { cpu, values: t.values },
    });
  }
  for (const raw of report.raws.filter((r) => r.kind === 'global-stats')) {
    stats.push({
      name: 'global statistics',
      description: `IPCTNL_MSG_CT_GET_STATS reply. conntrack -C: ${report.count}; sysctl net.netfilter.nf_conntrack_max: ${report.max}`,
      captured,
      hex: raw.hex,
      expect: { entries: report.count, maxEntries: report.max },
    });
  }
  return stats;
}

/**
 * Runs the capture child in namespace `ns` under `conntrack -E`: the child's report and the
 * events the tool printed. Started processes go into `started`, for the caller to end.
 */
async function capture(
  ns: string,
  tmp: string,
  started: ChildProcess[],
): Promise<{ report: ChildReport; toolEvents: ToolEntry[] }> {
  const inNs = (cmd: string, args: string[], input?: string) =>
    run('ip', ['netns', 'exec', ns, cmd, ...args], input);
  inNs('ip', ['link', 'set', 'lo', 'up']);
  inNs('sysctl', ['-qw', 'net.netfilter.nf_conntrack_acct=1', 'net.netfilter.nf_conntrack_timestamp=1']);
  inNs('nft', ['-f', '-'], RULESET);

  const tool = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      ...withLabelMap(tmp, ['conntrack', '-E', '-o', 'extended,id,timestamp,ktimestamp,labels']),
    ],
    { env: { ...process.env, TZ: 'UTC' } },
  );
  started.push(tool);
  const toolDone = childProcessDone(tool, 'conntrack -E');
  await sleep(500); // subscribed before the first packet

  const worker = spawn(
    'ip',
    ['netns', 'exec', ns, process.execPath, fileURLToPath(import.meta.url), '--child', tmp],
    {
      env: { ...process.env, TZ: 'UTC' },
    },
  );
  started.push(worker);
  const report = JSON.parse(await childProcessDone(worker, 'capture child')) as ChildReport;
  await sleep(300);
  tool.kill('SIGINT');
  const toolEvents = (await toolDone).split('\n').flatMap((l) => parseToolLine(l) ?? []);
  return { report, toolEvents };
}

async function parent(outDir: string): Promise<void> {
  const ns = `ctfix-${process.pid}`;
  const tmp = mkdtempSync(join(tmpdir(), 'ctfix-'));
  const started: ChildProcess[] = [];
  run('ip', ['netns', 'add', ns]);
  try {
    const { report, toolEvents } = await capture(ns, tmp, started);
    const ctx = flowContext(report);
    const dump = dumpFixtures(report, ctx);
    const events = eventFixtures(report, toolEvents, ctx);
    const stats = statsFixtures(report, ctx.captured);

    mkdirSync(outDir, { recursive: true });
    const write = (file: string, data: unknown) =>
      writeFileSync(join(outDir, file), `${JSON.stringify(data, null, 2)}\n`);
    write('events.json', events);
    write('dump.json', dump);
    write('stats.json', stats);
    process.stdout.write(
      `wrote ${events.length} events, ${dump.length} dump entries, ${stats.length} statistics replies to ${outDir}\n` +
        `conntrack -E printed ${toolEvents.length} events\n`,
    );
  } finally {
    for (const p of started)
      if (p.pid !== undefined && p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') await child(process.argv[3] ?? '');
else await parent(process.argv[2] ?? `${ROOT}test/fixtures`);
