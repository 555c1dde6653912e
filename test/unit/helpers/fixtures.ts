/**
 * The kernel messages captured by scripts/capture-fixtures.ts: test/fixtures/{events,dump,stats}.json,
 * each an array of annotated messages. `expect` holds what conntrack-tools printed for the same
 * entry at capture time (its text is in `description`), not what our decoder made of the bytes.
 */
import { readFileSync } from 'node:fs';
import type { ToolTuple } from '../../integration/harness/conntrack-tool.js';
import { ROOT } from '../../paths.js';

/** A tuple as conntrack-tools printed it. */
export type TupleExpect = ToolTuple;

/** A key that is absent means the kernel did not send the attribute. */
export interface FlowExpect {
  event?: 'new' | 'update' | 'destroy';
  family: 'ipv4' | 'ipv6';
  id: number;
  orig: TupleExpect;
  reply: TupleExpect;
  master?: TupleExpect;
  /** IPS_* names in bit order, spelled as Status.names (test/support/codec/status.ts) spells them. */
  status: string[];
  tcpState?: string;
  timeout?: number;
  mark?: number;
  zone?: number;
  use?: number;
  /** Decimal strings: JSON has no 64-bit integers. */
  countersOrig?: { packets: string; bytes: string };
  countersReply?: { packets: string; bytes: string };
  /** Whole seconds since the epoch, as `conntrack -o ktimestamp` printed them (TZ=UTC). */
  timestampStartSec?: number;
  timestampStopSec?: number;
  /**
   * Events: seconds.microseconds at which `conntrack -E -o timestamp` received the event. The
   * kernel's own stamp (CTA_TIMESTAMP_EVENT, which the tool does not print) comes just before.
   */
  eventReceivedAt?: string;
  helper?: string;
  /** Label bit numbers. */
  labels?: number[];
}

export interface StatsExpect {
  cpu?: number;
  values?: Record<string, number>;
  entries?: number;
  maxEntries?: number;
}

export interface Fixture<E> {
  name: string;
  description: string;
  captured: { kernel: string; date: string };
  /** One netlink message: header (host byte order) and payload. */
  hex: string;
  expect: E;
}

function load<E>(file: string): Fixture<E>[] {
  return JSON.parse(readFileSync(`${ROOT}test/fixtures/${file}`, 'utf8')) as Fixture<E>[];
}

export const eventFixtures = load<FlowExpect>('events.json');
export const dumpFixtures = load<FlowExpect>('dump.json');
export const statsFixtures = load<StatsExpect>('stats.json');
export const flowFixtures = [...eventFixtures, ...dumpFixtures];
export const allFixtures: Fixture<unknown>[] = [...flowFixtures, ...statsFixtures];

export function bytes(f: Fixture<unknown>): Buffer {
  return Buffer.from(f.hex, 'hex');
}

/** mulberry32: a small seedable PRNG, so that generated inputs are the same on every run. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
