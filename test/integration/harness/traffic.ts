/**
 * Runs inside a test namespace and makes flows on its loopback, then prints what it made as JSON
 * (client ports, so the test can find the exact tuples). Actions, in order:
 *   tcp=<addr>        a complete connection: handshake, data both ways, close by the client
 *   syn=<addr>        a connect to port 9, whose SYN the namespace drops: a half-open flow
 *   udp-reply=<addr>  a datagram to a listening socket that answers
 *   udp-noreply=<addr> a datagram to port 9, dropped: unreplied
 *   udp-burst=<n>     n datagrams to n ports of 127.0.0.1 (port 9 rule does not apply): n flows
 *   udp-from=<addr>   a datagram from <addr> (bound) to port 9 of 127.0.0.1 or ::1, dropped: an
 *                     unreplied flow whose source is <addr> (any 127.x.y.z, or an address on lo)
 *   hold=<addr>       an established connection left open until the process gets SIGTERM
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';

interface Made {
  action: string;
  addr: string;
  sport: number | undefined;
  dport: number | undefined;
}

const held: Socket[] = [];

function listen(addr: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const srv = createServer((s) => {
      s.on('data', (d) => s.write(d));
      s.on('end', () => s.end());
      s.on('error', () => {});
    });
    srv.once('error', reject);
    srv.listen(0, addr, () => resolve(srv));
  });
}

export function portOf(srv: Server): number {
  const a = srv.address();
  if (a === null || typeof a === 'string') throw new Error('server has no port');
  return a.port;
}

async function tcp(addr: string, keep: boolean): Promise<Made> {
  const srv = await listen(addr);
  const dport = portOf(srv);
  const sock = connect(dport, addr);
  await new Promise<void>((r, j) => sock.once('connect', r).once('error', j));
  const sport = sock.localPort;
  sock.write('ping');
  await new Promise<void>((r) => sock.once('data', () => r()));
  if (keep) {
    held.push(sock);
  } else {
    await new Promise<void>((r) => {
      sock.once('close', () => r());
      sock.end();
    });
    srv.close();
  }
  return { action: keep ? 'hold' : 'tcp', addr, sport, dport };
}

async function syn(addr: string): Promise<Made> {
  const sock = connect(9, addr);
  sock.on('error', () => {});
  // The SYN (and its retransmissions) go unanswered; the local port is bound once it is sent.
  await new Promise((r) => setTimeout(r, 150));
  const sport = sock.localPort;
  sock.destroy(); // no packet: the kernel never saw an answer, so it sends nothing on close
  return { action: 'syn', addr, sport, dport: 9 };
}

/** A UDP socket bound to `addr` on a free port. */
export function udpSocket(addr: string): Promise<UdpSocket> {
  return new Promise((resolve) => {
    const s = createSocket(addr.includes(':') ? 'udp6' : 'udp4');
    s.bind(0, addr, () => resolve(s));
  });
}

async function udp(addr: string, reply: boolean): Promise<Made> {
  const client = await udpSocket(addr);
  let server: UdpSocket | undefined;
  let dport = 9;
  if (reply) {
    server = await udpSocket(addr);
    const srv = server;
    srv.on('message', (msg, rinfo) => srv.send(msg, rinfo.port, rinfo.address));
    dport = srv.address().port;
  }
  const sport = client.address().port;
  const answered = new Promise<void>((r) => client.once('message', () => r()));
  await new Promise<void>((r) => client.send('x', dport, addr, () => r()));
  if (reply) await answered;
  else await new Promise((r) => setTimeout(r, 50));
  client.close();
  server?.close();
  return { action: reply ? 'udp-reply' : 'udp-noreply', addr, sport, dport };
}

async function udpFrom(src: string): Promise<Made> {
  const s = await udpSocket(src);
  const dst = src.includes(':') ? '::1' : '127.0.0.1';
  await new Promise<void>((r) => s.send('x', 9, dst, () => r()));
  const sport = s.address().port;
  s.close();
  return { action: 'udp-from', addr: src, sport, dport: 9 };
}

async function udpBurst(n: number): Promise<Made> {
  const s = await udpSocket('127.0.0.1');
  const payload = Buffer.from('x');
  for (let i = 0; i < n; i++) {
    const port = 10000 + (i % 50000);
    await new Promise<void>((r) => s.send(payload, port, '127.0.0.1', () => r()));
  }
  const sport = s.address().port;
  s.close();
  return { action: 'udp-burst', addr: '127.0.0.1', sport, dport: undefined };
}

async function main(): Promise<void> {
  const made: Made[] = [];
  for (const arg of process.argv.slice(2)) {
    const eq = arg.indexOf('=');
    const action = arg.slice(0, eq);
    const value = arg.slice(eq + 1);
    switch (action) {
      case 'tcp':
        made.push(await tcp(value, false));
        break;
      case 'hold':
        made.push(await tcp(value, true));
        break;
      case 'syn':
        made.push(await syn(value));
        break;
      case 'udp-reply':
        made.push(await udp(value, true));
        break;
      case 'udp-noreply':
        made.push(await udp(value, false));
        break;
      case 'udp-from':
        made.push(await udpFrom(value));
        break;
      case 'udp-burst':
        made.push(await udpBurst(Number(value)));
        break;
      default:
        throw new Error(`unknown action ${arg}`);
    }
  }
  process.stdout.write(`${JSON.stringify(made)}\n`);
  if (held.length > 0) {
    process.on('SIGTERM', () => process.exit(0));
    setInterval(() => {}, 1 << 30);
  }
}

// Run as a program (`node traffic.js tcp=...`), not when scripts/capture-fixtures.ts imports its helpers.
if (import.meta.main) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
