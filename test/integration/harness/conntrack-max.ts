/**
 * The global net.netfilter.nf_conntrack_max, for tests that lower it and the kernel bench that
 * raises it: the value before is kept and written back by restore(), and also when the process
 * exits in between (guard()).
 */
import { readFileSync, writeFileSync } from 'node:fs';

const PATH = '/proc/sys/net/netfilter/nf_conntrack_max';

export class ConntrackMax {
  readonly original = ConntrackMax.read();

  static read(): string {
    return readFileSync(PATH, 'utf8').trim();
  }

  /** From now on, restore() also runs if the process exits before the test does. */
  guard(): void {
    process.once('exit', this.restore);
  }

  set(limit: number): void {
    writeFileSync(PATH, String(limit));
  }

  /** Raises the limit to at least `n`, never lowers it; returns the value in force. */
  atLeast(n: number): number {
    const current = Number(ConntrackMax.read());
    if (current >= n) return current;
    this.set(n);
    return n;
  }

  readonly restore = (): void => {
    writeFileSync(PATH, this.original);
  };
}
