import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { negotiate } from '../../../src/http/negotiate.js';

const TEXT = 'text/plain; version=0.0.4; charset=utf-8';
const OM1 = 'application/openmetrics-text; version=1.0.0; charset=utf-8';
const OM0 = 'application/openmetrics-text; version=0.0.1; charset=utf-8';
const PROTO = 'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited';

/** Prometheus 2.42's Accept headers, without and with --enable-feature=native-histograms. */
const PROMETHEUS_2_42 =
  'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
const PROMETHEUS_2_42_NATIVE =
  'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
/** A Prometheus 3 with PrometheusProto first in its scrape_protocols (q-values, escaping). */
const PROMETHEUS_3 =
  'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.4,application/openmetrics-text;version=0.0.1;q=0.3,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.2,text/plain;version=0.0.4;q=0.1,*/*;q=0.05';

describe('negotiate (expfmt NegotiateIncludingOpenMetrics)', () => {
  const cases: [string | undefined, string, string][] = [
    [undefined, 'text', `${TEXT}; escaping=underscores`],
    ['', 'text', `${TEXT}; escaping=underscores`],
    ['*/*', 'text', `${TEXT}; escaping=underscores`],
    ['text/html, application/json', 'text', `${TEXT}; escaping=underscores`],
    ['text/plain', 'text', `${TEXT}; escaping=underscores`],
    ['text/plain;version=0.0.4', 'text', `${TEXT}; escaping=underscores`],
    // A text version not served is passed over, as an unknown type is.
    ['text/plain;version=1.0.0', 'text', `${TEXT}; escaping=underscores`],
    ['application/openmetrics-text;version=1.0.0', 'openmetrics', `${OM1}; escaping=underscores`],
    ['application/openmetrics-text', 'openmetrics', `${OM0}; escaping=underscores`],
    ['application/openmetrics-text; version=0.0.1', 'openmetrics', `${OM0}; escaping=underscores`],
    ['application/openmetrics-text;version=2.0.0', 'text', `${TEXT}; escaping=underscores`],
    [PROTO, 'protobuf', `${PROTO}; escaping=underscores`],
    // Protobuf's text encodings are not served.
    [
      'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text',
      'text',
      `${TEXT}; escaping=underscores`,
    ],
    ['application/vnd.google.protobuf;encoding=delimited', 'text', `${TEXT}; escaping=underscores`],
    [PROMETHEUS_2_42, 'openmetrics', `${OM1}; escaping=underscores`],
    [PROMETHEUS_2_42_NATIVE, 'protobuf', `${PROTO}; escaping=underscores`],
    [PROMETHEUS_3, 'protobuf', `${PROTO}; escaping=underscores`],
    // q-values order the clauses, whatever order they are written in.
    [`text/plain;q=0.5, ${PROTO};q=0.9`, 'protobuf', `${PROTO}; escaping=underscores`],
    [
      `${PROTO};q=0.2, application/openmetrics-text;version=1.0.0;q=0.3`,
      'openmetrics',
      `${OM1}; escaping=underscores`,
    ],
    // Equal q: as written.
    [`text/plain, ${PROTO}`, 'text', `${TEXT}; escaping=underscores`],
    // q=0 is "not acceptable".
    [`${PROTO};q=0, text/plain;q=0.1`, 'text', `${TEXT}; escaping=underscores`],
    [`${PROTO};q=0`, 'text', `${TEXT}; escaping=underscores`],
    // The escaping asked for is echoed; an unknown one is ignored.
    [`${PROTO};escaping=allow-utf-8`, 'protobuf', `${PROTO}; escaping=allow-utf-8`],
    ['application/openmetrics-text;version=1.0.0;escaping=values', 'openmetrics', `${OM1}; escaping=values`],
    ['text/plain;escaping=nonsense', 'text', `${TEXT}; escaping=underscores`],
    // An escaping on a clause not served still counts, as in expfmt (read before the match).
    ['x/y;escaping=dots, text/plain;q=0.5', 'text', `${TEXT}; escaping=dots`],
    // Malformed clauses are skipped.
    ['garbage, ;;;, /, text/plain', 'text', `${TEXT}; escaping=underscores`],
  ];
  for (const [accept, format, contentType] of cases) {
    it(`Accept: ${accept} -> ${format}`, () => {
      assert.deepEqual(negotiate(accept), { format, contentType });
    });
  }
});
