/**
 * The three exposition formats and their Content-Types (as prometheus/common's expfmt spells
 * them): the model (model.ts) goes in, the body a scraper asked for comes out.
 */
import type { FamilyData } from './model.js';
import { openMetrics } from './openmetrics.js';
import { protobufDelimited } from './protobuf.js';
import { textFormat } from './text.js';

export type ExpositionFormat = 'text' | 'openmetrics' | 'protobuf';

export const TEXT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
export const PROTOBUF_CONTENT_TYPE =
  'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited';
/** OpenMetrics' versions 1.0.0 and 0.0.1 have one body; only the Content-Type says which was asked. */
export const openMetricsContentType = (version: '1.0.0' | '0.0.1'): string =>
  `application/openmetrics-text; version=${version}; charset=utf-8`;

/** One scrape's body in `format`: text for the two text formats, bytes for protobuf. */
export function encode(format: ExpositionFormat, families: readonly FamilyData[]): string | Uint8Array {
  switch (format) {
    case 'text':
      return textFormat(families);
    case 'openmetrics':
      return openMetrics(families);
    case 'protobuf':
      return protobufDelimited(families);
  }
}
