/**
 * The exporter's conntrack_flows against `conntrack -L`, per (family, protocol, state): waits
 * until they are equal and says how long it took.
 */

import * as tool from './conntrack-tool.js';
import type { ExporterProcess } from './exporter.js';
import { type Netns, sleep } from './netns.js';
import type { Scrape } from './promtext.js';

/** conntrack_flows as family/protocol/state -> value, zero series left out. */
export function flowsSeries(s: Scrape): Map<string, number> {
  const out = new Map<string, number>();
  for (const x of s.all('conntrack_flows')) {
    if (x.value !== 0) out.set(`${x.labels['family']}/${x.labels['protocol']}/${x.labels['state']}`, x.value);
  }
  return out;
}

const sorted = (m: Map<string, number>) => JSON.stringify([...m].sort());

export interface Converged {
  scrape: Scrape;
  /** From `since` to the first scrape that matched. */
  ms: number;
}

/**
 * Polls /metrics and `conntrack -L` until every series matches; fails after `timeoutMs` from
 * `since` with both sides and the exporter's resync log lines.
 */
export async function convergeWithin(
  exp: ExporterProcess,
  ns: Netns,
  since: number,
  timeoutMs = 15_000,
): Promise<Converged> {
  let ours = new Map<string, number>();
  let theirs = new Map<string, number>();
  for (;;) {
    const scrape = exp.scrape();
    ours = flowsSeries(scrape);
    theirs = tool.countByState(tool.listFlows(ns));
    const ms = Date.now() - since;
    if (sorted(ours) === sorted(theirs)) {
      // conntrack -L ran after the scrape: check that the kernel did not move under us.
      if (sorted(tool.countByState(tool.listFlows(ns))) === sorted(theirs)) return { scrape, ms };
    }
    if (ms > timeoutMs) {
      throw new Error(
        `not equal to conntrack -L within ${timeoutMs} ms\nexporter:     ${sorted(ours)}\nconntrack -L: ${sorted(theirs)}\nexporter log:\n${exp.stdout
          .split('\n')
          .filter((l) => l.includes('synchronised') || l.includes('"level":40') || l.includes('"level":50'))
          .slice(-20)
          .join('\n')}`,
      );
    }
    await sleep(200);
  }
}

/** Resync log lines the exporter printed after byte offset `from` of its stdout. */
export function resyncLines(exp: ExporterProcess, from = 0): { reason: string; flows: number }[] {
  return exp.stdout
    .slice(from)
    .split('\n')
    .filter((l) => l.includes('conntrack table synchronised'))
    .map((l) => JSON.parse(l) as { reason: string; flows: number });
}

/**
 * Runs `make` with net.netfilter.nf_conntrack_events=0 in the namespace, then restores the default
 * 2: the flows it creates get no event cache, as flows created while no process listens. Needed
 * because with mode 2 the kernel asks whether anyone listens *anywhere on the host* (listeners
 * are tracked globally, not per namespace): on a machine where another exporter or `conntrack -E`
 * runs, flows made "before start" would otherwise send events after all.
 */
export async function silently<T>(ns: Netns, make: () => T | Promise<T>): Promise<T> {
  ns.run('sysctl', ['-qw', 'net.netfilter.nf_conntrack_events=0']);
  try {
    return await make();
  } finally {
    ns.run('sysctl', ['-qw', 'net.netfilter.nf_conntrack_events=2']);
  }
}
