/**
 * The bench's kernel side: the C programs built at bench time and the namespace the load runs in.
 * (The global conntrack limit is raised with the harness's ConntrackMax and always put back.)
 */
import { finished, mustRun, Netns, ROOT, sleep, waitFor } from '../../test/integration/harness/netns.js';

/** Compiles bench/kernel/NAME.c into `outDir`; returns the binary's path. */
export function buildC(name: string, outDir: string): string {
  const bin = `${outDir}/${name}`;
  mustRun('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', bin, `${ROOT}bench/kernel/${name}.c`]);
  return bin;
}

/**
 * The namespace of the whole bench: the harness's tracking ruleset (conntrack on, the exporter's
 * ports 9466/9090 untracked, datagrams to port 9 dropped on input so they raise no ICMP errors),
 * UDP flows that outlive the bench, and a TIME_WAIT of 1 s so TCP flows end soon after closing.
 */
export class BenchNamespace {
  private constructor(readonly ns: Netns) {}

  static create(): BenchNamespace {
    const bench = new BenchNamespace(Netns.create('bench'));
    try {
      bench.sysctl('net.netfilter.nf_conntrack_udp_timeout', 3600);
      bench.sysctl('net.netfilter.nf_conntrack_tcp_timeout_time_wait', 1);
    } catch (err) {
      bench.ns.delete();
      throw err;
    }
    return bench;
  }

  sysctl(key: string, value: number): void {
    this.ns.run('sysctl', ['-q', '-w', `${key}=${value}`]);
  }

  /** Flows in this namespace's table (the kernel's count, expired ones not yet collected included). */
  count(): number {
    return Number(this.ns.run('sysctl', ['-n', 'net.netfilter.nf_conntrack_count']));
  }

  /** Empties the table (between runs, while no consumer listens). */
  async flush(): Promise<void> {
    this.ns.run('conntrack', ['-F']);
    await waitFor('the conntrack table to empty', () => (this.count() === 0 ? true : undefined), 30_000);
  }

  /**
   * Stands in for the kernel's garbage collector until the returned function is called: a dump
   * every `ms` ends every expired flow it passes, with its DESTROY event. The collector itself
   * paces on the timeouts in the whole host's table (every namespace's) and may wait up to a
   * minute; on a table of 1 s TIME_WAIT flows alone it would run every second, its shortest
   * interval, so DESTROYs follow the churn in batches instead of one burst at the end.
   */
  collectEvery(ms: number): () => Promise<void> {
    let stopped = false;
    const loop = (async () => {
      while (!stopped) {
        await sleep(ms);
        if (!stopped) await finished(this.ns.spawn('sh', ['-c', 'exec conntrack -L >/dev/null 2>&1']));
      }
    })();
    return async () => {
      stopped = true;
      await loop;
    };
  }

  /** Ends the remaining expired flows now (see collectEvery), until the table is empty. */
  async collectExpired(): Promise<void> {
    await waitFor(
      'expired flows to be collected',
      () => {
        if (this.count() === 0) return true;
        this.ns.run('conntrack', ['-L']);
        return undefined;
      },
      30_000,
    );
  }

  /**
   * The namespace's one socket subscribed to ctnetlink event groups (the consumer under test):
   * its receive buffer as the kernel sizes it, and how many events the kernel dropped at it.
   */
  eventSocket(): EventSocket {
    // ss may list a socket twice (netlink_diag walks the bound and the multicast sockets)
    const lines = new Set(this.ns.run('ss', ['-H', '-f', 'netlink', '-m', '-e']).split('\n'));
    const subscribed = [...lines].filter((l) => / nft:/.test(l) && !/groups=0x0+\b/.test(l));
    const mem = subscribed.length === 1 ? /skmem:\(.*\brb(\d+),.*\bd(\d+)\)/.exec(subscribed[0]!) : null;
    if (!mem)
      throw new Error(`want one ctnetlink event socket in the namespace, found:\n${subscribed.join('\n')}`);
    return { rcvbuf: Number(mem[1]), drops: Number(mem[2]) };
  }

  /** Runs the C flood generator to the end; returns its report. */
  async flood(bin: string, args: string[]): Promise<FloodReport> {
    const res = await finished(this.ns.spawn(bin, args));
    if (res.code !== 0) throw new Error(`flood ${args.join(' ')} exited ${res.code}: ${res.stderr.trim()}`);
    return JSON.parse(res.stdout) as FloodReport;
  }

  delete(): void {
    this.ns.delete();
  }
}

export interface EventSocket {
  /** sk_rcvbuf: twice what the consumer asked for with SO_RCVBUF(FORCE). */
  rcvbuf: number;
  drops: number;
}

export interface FloodReport {
  kind: 'udp' | 'tcp';
  done: number;
  errors: number;
  seconds: number;
  /** The generator's own CPU time, which includes the kernel's work for its packets. */
  cpuSeconds: number;
}
