/**
 * A UDP NEW flood inside a test namespace: datagrams from `sockets` source sockets to ports
 * 10000-59999 of 127.0.0.1, each (source port, destination port) pair used once per round, so
 * every datagram makes a new conntrack entry until the pairs wrap (sockets × 50,000 of them).
 * Runs for `seconds`, at most `rate` datagrams a second, then prints what it sent as JSON.
 *
 *   node flood.js <seconds> <rate> [sockets] [addresses] [max]
 *
 * The namespace should drop these ports on input (FLOOD_RULESET): no ICMP port unreachable back.
 * With `addresses`, every datagram goes to port 9 of its own address from 127.1.0.0 on (as
 * bench/kernel/flood.c does; TRACKING_RULESET drops port 9): a flood of distinct destinations.
 * It stops after `max` datagrams (whatever the rate achieved), or at the end of `seconds`.
 */
import { createSocket, type Socket } from 'node:dgram';

const PORTS = 50_000;
const BATCH = 500;
/** 127.1.0.0, and how many addresses follow it before the flood wraps (up to 127.64.255.255). */
const FIRST_ADDRESS = 0x7f010000;
const ADDRESSES = 1 << 22;

function ipv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2]);
  const rate = Number(process.argv[3]);
  const nSockets = Number(process.argv[4] ?? 64);
  const addresses = process.argv[5] === 'addresses';
  const max = Number(process.argv[6] ?? Number.POSITIVE_INFINITY);
  if (!(seconds > 0 && rate > 0 && nSockets > 0))
    throw new Error('usage: flood.js <seconds> <rate> [sockets] [addresses]');
  const sockets: Socket[] = await Promise.all(
    Array.from(
      { length: nSockets },
      () =>
        new Promise<Socket>((resolve) => {
          const s = createSocket('udp4');
          s.on('error', () => {});
          s.bind(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const payload = Buffer.from('x');
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let sent = 0;
  let port = 0;
  let sock = 0;
  while (performance.now() < end && sent < max) {
    // Pace to `rate`: send a batch only when we are behind schedule.
    const due = ((performance.now() - t0) / 1000) * rate;
    if (sent >= due) {
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    let pending = 0;
    await new Promise<void>((resolve) => {
      for (let i = 0; i < BATCH; i++) {
        pending++;
        const done = () => {
          if (--pending === 0) resolve();
        };
        if (addresses) sockets[sock]!.send(payload, 9, ipv4(FIRST_ADDRESS + ((sent + i) % ADDRESSES)), done);
        else sockets[sock]!.send(payload, 10_000 + port, '127.0.0.1', done);
        sock = (sock + 1) % nSockets;
        if (sock === 0) port = (port + 1) % PORTS;
      }
    });
    sent += BATCH;
  }
  const took = (performance.now() - t0) / 1000;
  for (const s of sockets) s.close();
  process.stdout.write(`${JSON.stringify({ sent, seconds: took, rate: sent / took })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
