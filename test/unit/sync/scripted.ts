/** What the synchronisation tests feed the collector: a scripted kernel table and a log to read. */
import assert from 'node:assert/strict';
import type { DumpSink } from '../../../src/ctnetlink/client.js';
import type { ConntrackError } from '../../../src/errors.js';
import type { Dumper, Log } from '../../../src/sync/collector.js';
import { ShadowTable, type TableObserver } from '../../../src/table/table.js';
import type { Flow } from '../../support/codec/flow.js';
import { encodeFlow } from '../../support/codec/flow.js';
import { FakeClock } from '../helpers/flows.js';

/** A dumper that serves a scripted table, optionally running `during` in the middle of the dump. */
export class ScriptedDumper implements Dumper {
  calls = 0;
  constructor(
    public flows: Flow[],
    public during?: () => void,
    public fail?: ConntrackError,
  ) {}
  async dumpTable(sink: DumpSink) {
    this.calls++;
    await Promise.resolve();
    if (this.fail) throw this.fail;
    sink.begin(1);
    const half = Math.ceil(this.flows.length / 2);
    const entry = (f: Flow) => {
      const buf = encodeFlow(f);
      sink.entry(buf, 0, buf.length);
    };
    this.flows.slice(0, half).forEach(entry);
    this.during?.();
    this.flows.slice(half).forEach(entry);
    return { flows: this.flows.length, attempts: 1 };
  }
}

/** A log that keeps what it was told, by level. */
export class RecordingLog implements Log {
  readonly lines: { level: 'debug' | 'info' | 'warn' | 'error'; obj: object; msg: string }[] = [];
  debug(obj: object, msg: string): void {
    this.lines.push({ level: 'debug', obj, msg });
  }
  info(obj: object, msg: string): void {
    this.lines.push({ level: 'info', obj, msg });
  }
  warn(obj: object, msg: string): void {
    this.lines.push({ level: 'warn', obj, msg });
  }
  error(obj: object, msg: string): void {
    this.lines.push({ level: 'error', obj, msg });
  }
  count(level: 'debug' | 'info' | 'warn' | 'error'): number {
    return this.lines.filter((l) => l.level === level).length;
  }
  /** The fields of the last line at `level`. */
  last(level: 'debug' | 'info' | 'warn' | 'error'): Record<string, unknown> {
    const line = this.lines.findLast((l) => l.level === level);
    assert.ok(line, `nothing logged at ${level}`);
    return line.obj as Record<string, unknown>;
  }
}

const noObserver: TableObserver = { transition() {}, stateLeft() {}, flowEnded() {} };

export function emptyTable(): ShadowTable {
  return new ShadowTable(noObserver, new FakeClock().read);
}
