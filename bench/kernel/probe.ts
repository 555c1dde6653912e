/**
 * The bench's HTTP client, run inside the bench namespace (`ip netns exec NS node probe.js ...`),
 * where the exporter listens:
 *   ready URL        polls URL every 20 ms until it answers 200, then prints the CLOCK_MONOTONIC
 *                    time of that answer in nanoseconds (comparable with process.hrtime in the
 *                    orchestrator, which noted when it spawned the exporter)
 *   get URL COUNT    COUNT sequential GETs, prints their latencies in milliseconds as JSON
 */
import { setTimeout as sleep } from 'node:timers/promises';

async function status(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0; // not listening yet
  }
}

async function ready(url: string): Promise<void> {
  const deadline = Date.now() + 600_000;
  while ((await status(url)) !== 200) {
    if (Date.now() > deadline) throw new Error(`${url} not ready after 600 s`);
    await sleep(20);
  }
  process.stdout.write(`${process.hrtime.bigint()}\n`);
}

async function get(url: string, count: number): Promise<void> {
  const ms: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint();
    const code = await status(url);
    if (code !== 200) throw new Error(`GET ${url} answered ${code}`);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  process.stdout.write(`${JSON.stringify(ms)}\n`);
}

const [cmd, url, count] = process.argv.slice(2);
if (cmd === 'ready' && url !== undefined) await ready(url);
else if (cmd === 'get' && url !== undefined && Number(count) > 0) await get(url, Number(count));
else throw new Error('usage: probe.js ready URL | probe.js get URL COUNT');
