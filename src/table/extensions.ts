/**
 * Two row extensions as one: the table keeps a single extension (one call per row event), and a
 * namespace may need two beside its rows (attribution, NAT tracking).
 */
import type { FlowSummary } from '../ctnetlink/summary.js';
import type { RowExtension } from './table.js';

class Both implements RowExtension {
  constructor(
    private readonly a: RowExtension,
    private readonly b: RowExtension,
  ) {}

  resize(capacity: number): void {
    this.a.resize(capacity);
    this.b.resize(capacity);
  }

  added(row: number, s: FlowSummary, created: boolean): void {
    this.a.added(row, s, created);
    this.b.added(row, s, created);
  }

  updated(row: number, s: FlowSummary): void {
    this.a.updated(row, s);
    this.b.updated(row, s);
  }

  removed(row: number): void {
    this.a.removed(row);
    this.b.removed(row);
  }

  moved(from: number, to: number): void {
    this.a.moved(from, to);
    this.b.moved(from, to);
  }
}

/** The extensions given, as one (undefined when none). */
export function joinExtensions(
  a: RowExtension | undefined,
  b: RowExtension | undefined,
): RowExtension | undefined {
  return a && b ? new Both(a, b) : (a ?? b);
}
