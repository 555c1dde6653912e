/**
 * The global net.netfilter.nf_conntrack_max, for tests that lower it: the value before the test is
 * kept and written back by restore(), and also when the test process exits in between.
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

  readonly restore = (): void => {
    writeFileSync(PATH, this.original);
  };
}
