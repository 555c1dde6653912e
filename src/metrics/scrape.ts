/**
 * Metrics whose values live elsewhere and are read at scrape time: a gauge that is absent while its
 * value is unknown, and counters that mirror numbers kept as plain fields (the collector's) or by
 * the kernel, the way prom-client's processCpuTotal mirrors CPU time.
 */
import { Counter, Gauge, type Registry } from '@prometheus-io/client';

/**
 * A gauge without labels, read at scrape time, and absent from the scrape (no sample) when its
 * value is unknown: the client's own gauges always render a value, 0 or the last one set.
 */
export class ScrapeGauge extends Gauge {
  constructor(
    registry: Registry,
    name: string,
    help: string,
    private readonly read: () => number | undefined,
  ) {
    super({ name, help, registers: [registry] });
  }

  override async get(): Promise<Awaited<ReturnType<Gauge['get']>>> {
    const v = this.read();
    if (v === undefined) return { ...(await super.get()), values: [] };
    this.set(v);
    return super.get();
  }
}

/**
 * What a number that only grows gained since it was `last` seen. A number that went down (its
 * owner was replaced) is taken as the new base, so the counter never goes backwards.
 */
function gained(last: number, value: number): number {
  return value > last ? value - last : 0;
}

/** A counter without labels that follows `read()` at every scrape; nothing is added while it is undefined. */
export function mirroredCounter(
  registry: Registry,
  name: string,
  help: string,
  read: () => number | undefined,
): Counter {
  let last = 0;
  return new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const v = read();
      if (v === undefined) return;
      this.inc(gained(last, v));
      last = v;
    },
  });
}

/**
 * A counter with one label whose values are known up front (each is exported from the start, at
 * 0), each following its number in `read()` at every scrape.
 */
export function mirroredCounterBy<V extends string>(
  registry: Registry,
  name: string,
  help: string,
  label: string,
  values: readonly V[],
  read: () => Readonly<Record<V, number>> | undefined,
): Counter<string> {
  const last = new Map<V, number>(values.map((v) => [v, 0]));
  const counter = new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      const now = read();
      if (!now) return;
      for (const [v, seen] of last) {
        this.inc({ [label]: v }, gained(seen, now[v]));
        last.set(v, now[v]);
      }
    },
  });
  for (const v of values) counter.inc({ [label]: v }, 0);
  return counter;
}
