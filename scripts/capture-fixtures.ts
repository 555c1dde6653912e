/**
 * Captures ctnetlink messages from the running kernel as annotated test fixtures:
 *
 *   sudo node dist/scripts/capture-fixtures.js [out.json]   (default test/fixtures/kernel-messages.json)
 *
 * It creates a network namespace with accounting, timestamps, a conntrack mark and a zone turned
 * on, makes known traffic on its loopback, and records the raw bytes of the events, of a table
 * dump and of the statistics replies, each next to what conntrack-tools printed for the same
 * entry: the decoder tests compare our decoding with that, not with our own earlier output.
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { cpuStatsRequest, dumpTableRequest, globalStatsRequest } from '../src/ctnetlink/requests.js';
import { forEachMessage } from '../src/netlink/nlmsg.js';
import { EventSocket, RequestSocket } from '../src/netlink/socket.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Port 7 gets zone 7 and mark 0x2a; port 9 is dropped on input (no answer). */
const RULESET = `table inet capture {
  chain raw_out {
    type filter hook output priority raw; policy accept;
    udp dport 7 ct zone set 7
  }
  chain raw_pre {
    type filter hook prerouting priority raw; policy accept;
    udp dport 7 ct zone set 7
  }
  chain out {
    type filter hook output priority 0; policy accept;
    ct state new counter
    udp dport 7 ct mark set 0x2a
  }
  chain in {
    type filter hook input priority 0; policy accept;
    tcp dport 9 drop
    udp dport 9 drop
  }
}
`;

interface Raw {
  kind: 'event' | 'dump' | 'cpu-stats' | 'global-stats';
  hex: string;
}

function run(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Inside the namespace: subscribe, make traffic, dump, read stats; print the raw messages. */
async function child(): Promise<void> {
  const raws: Raw[] = [];
  const events = new EventSocket(
    {
      onDatagram: (buf) =>
        forEachMessage(buf, (_t, _f, _s, start, end) =>
          raws.push({ kind: 'event', hex: buf.subarray(start, end).toString('hex') }),
        ),
      onOverrun: () => {
        throw new Error('events lost while capturing');
      },
      onError: (err) => {
        throw err;
      },
    },
    { rcvbuf: 4 << 20 },
  );
  const traffic = `${ROOT}dist/test/integration/harness/traffic.js`;
  run(process.execPath, [traffic, 'tcp=127.0.0.1', 'tcp=::1', 'syn=127.0.0.1', 'udp-reply=127.0.0.1', 'udp-noreply=::1']);
  run('ping', ['-c', '1', '-W', '1', '127.0.0.1']);
  run('ping', ['-6', '-c', '1', '-W', '1', '::1']);
  // zone 7 and mark 0x2a (see RULESET)
  run('bash', ['-c', 'echo x > /dev/udp/127.0.0.1/7']);
  await new Promise((r) => setTimeout(r, 300));
  const req = new RequestSocket();
  for (const [kind, r] of [
    ['dump', dumpTableRequest()],
    ['cpu-stats', cpuStatsRequest()],
    ['global-stats', globalStatsRequest()],
  ] as const) {
    await req.request(r.type, r.flags, r.payload, (m) =>
      raws.push({ kind, hex: m.buf.subarray(m.start, m.end).toString('hex') }),
    );
  }
  // a DESTROY of a flow with counters and both timestamps
  run('conntrack', ['-D', '-p', 'udp', '--orig-port-dst', '9']);
  await new Promise((r) => setTimeout(r, 300));
  req.close();
  events.close();
  process.stdout.write(JSON.stringify(raws));
}

async function parent(out: string): Promise<void> {
  const ns = `ctfix-${process.pid}`;
  run('ip', ['netns', 'add', ns]);
  try {
    const inNs = (cmd: string, args: string[], input?: string) => run('ip', ['netns', 'exec', ns, cmd, ...args], input);
    inNs('ip', ['link', 'set', 'lo', 'up']);
    inNs('sysctl', ['-qw', 'net.netfilter.nf_conntrack_acct=1', 'net.netfilter.nf_conntrack_timestamp=1']);
    inNs('nft', ['-f', '-'], RULESET);
    const raws = await new Promise<Raw[]>((resolve, reject) => {
      const c = spawn('ip', ['netns', 'exec', ns, process.execPath, fileURLToPath(import.meta.url), '--child']);
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      c.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(stdout) as Raw[]) : reject(new Error(stderr))));
    });
    // What conntrack-tools says about the same entries, after the UDP port-9 flow was deleted.
    const listing = inNs('conntrack', ['-L', '-o', 'extended,id']).trim().split('\n');
    const stats = inNs('conntrack', ['-S']).trim().split('\n');
    const doc = {
      description:
        'ctnetlink messages captured from a real kernel by scripts/capture-fixtures.ts, in a namespace with nf_conntrack_acct=1 and nf_conntrack_timestamp=1. Each message is the raw netlink message (header included, host byte order headers, big-endian attributes) as hex.',
      captured: { kernel: release(), date: new Date().toISOString().slice(0, 10) },
      conntrackList: listing,
      conntrackStats: stats,
      messages: raws,
    };
    writeFileSync(out, `${JSON.stringify(doc, null, 2)}\n`);
    process.stdout.write(`wrote ${raws.length} messages to ${out}\n`);
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

if (process.argv[2] === '--child') await child();
else await parent(process.argv[2] ?? `${ROOT}test/fixtures/kernel-messages.json`);
