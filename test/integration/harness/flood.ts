/**
 * A UDP NEW flood inside a test namespace: datagrams from `sockets` source sockets to ports
 * 10000-59999 of 127.0.0.1, each (source port, destination port) pair used once per round, so
 * every datagram makes a new conntrack entry until the pairs wrap (sockets × 50,000 of them).
 * Runs for `seconds`, at most `rate` datagrams a second, then prints what it sent as JSON.
 *
 *   node flood.js <seconds> <rate> [sockets]
 *
 * The namespace should drop these ports on input (FLOOD_RULESET): no ICMP port unreachable back.
 */
import { createSocket, type Socket } from 'node:dgram';

const PORTS = 50_000;
const BATCH = 500;

async function main(): Promise<void> {
  const seconds = Number(process.argv[2]);
  const rate = Number(process.argv[3]);
  const nSockets = Number(process.argv[4] ?? 64);
  if (!(seconds > 0 && rate > 0 && nSockets > 0))
    throw new Error('usage: flood.js <seconds> <rate> [sockets]');
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
  while (performance.now() < end) {
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
        sockets[sock]!.send(payload, 10_000 + port, '127.0.0.1', () => {
          if (--pending === 0) resolve();
        });
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
