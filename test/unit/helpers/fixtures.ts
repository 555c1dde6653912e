/** The kernel messages captured by scripts/capture-fixtures.ts (test/fixtures/kernel-messages.json). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface CapturedMessage {
  kind: 'event' | 'dump' | 'cpu-stats' | 'global-stats';
  hex: string;
}

export interface Capture {
  captured: { kernel: string; date: string };
  /** `conntrack -L -o extended,id` in the namespace after the capture. */
  conntrackList: string[];
  /** `conntrack -S` in the namespace after the capture. */
  conntrackStats: string[];
  messages: CapturedMessage[];
}

const FILE = fileURLToPath(new URL('../../../../test/fixtures/kernel-messages.json', import.meta.url));

export const capture = JSON.parse(readFileSync(FILE, 'utf8')) as Capture;

export function bytes(m: CapturedMessage): Buffer {
  return Buffer.from(m.hex, 'hex');
}

export function ofKind(kind: CapturedMessage['kind']): Buffer[] {
  return capture.messages.filter((m) => m.kind === kind).map(bytes);
}
