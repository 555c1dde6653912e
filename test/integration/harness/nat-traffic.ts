/**
 * Traffic between the namespaces of the NAT test (test/integration/nat.test.ts), run inside one of
 * them. Actions:
 *   serve <tcp|udp>=<addr>:<port> ...  echo servers (TCP: echo, then close with the client; UDP:
 *                                      answer each datagram); prints "ready" and stays
 *   hold=<addr>:<port>:<n>             n TCP connections, each answered once, left open; prints
 *                                      "ready" and stays until killed
 *   udp=<addr>:<port>:<n>              n datagrams, each from its own socket (so its own source
 *                                      port), then exits after a short wait for answers
 */
import { createSocket } from 'node:dgram';
import { connect, createServer, type Socket } from 'node:net';

function endpoint(spec: string): { addr: string; port: number; n: number } {
  const [addr = '', port = '', n = '1'] = spec.split(':');
  return { addr, port: Number(port), n: Number(n) };
}

async function serve(specs: string[]): Promise<void> {
  for (const spec of specs) {
    const [proto, rest = ''] = spec.split('=');
    const { addr, port } = endpoint(rest);
    if (proto === 'tcp') {
      const srv = createServer((s) => {
        s.on('data', (d) => s.write(d));
        s.on('end', () => s.end());
        s.on('error', () => {});
      });
      await new Promise<void>((r, j) => srv.once('error', j).listen(port, addr, () => r()));
    } else {
      const sock = createSocket('udp4');
      sock.on('message', (msg, from) => sock.send(msg, from.port, from.address));
      await new Promise<void>((r) => sock.bind(port, addr, () => r()));
    }
  }
  process.stdout.write('ready\n');
}

const held: Socket[] = [];

async function hold(spec: string): Promise<void> {
  const { addr, port, n } = endpoint(spec);
  for (let i = 0; i < n; i++) {
    const sock = connect(port, addr);
    await new Promise<void>((r, j) => sock.once('connect', r).once('error', j));
    sock.write('ping');
    await new Promise<void>((r) => sock.once('data', () => r()));
    held.push(sock);
  }
  process.stdout.write('ready\n');
}

async function udp(spec: string): Promise<void> {
  const { addr, port, n } = endpoint(spec);
  const socks = [];
  for (let i = 0; i < n; i++) {
    const s = createSocket('udp4');
    s.on('message', () => {});
    s.on('error', () => {});
    await new Promise<void>((r) => s.bind(0, () => r()));
    await new Promise<void>((r) => s.send('ping', port, addr, () => r()));
    socks.push(s);
  }
  await new Promise((r) => setTimeout(r, 300));
  for (const s of socks) s.close();
  process.stdout.write(`${n}\n`);
}

const [first = '', ...rest] = process.argv.slice(2);
if (first === 'serve') await serve(rest);
else if (first.startsWith('hold=')) await hold(first.slice(5));
else if (first.startsWith('udp=')) await udp(first.slice(4));
else throw new Error(`unknown action ${first}`);
