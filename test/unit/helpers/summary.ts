/** What the table sees of a test flow: encoded as the kernel would send it, then summarized. */

import { FlowSummary, summarizeFlow } from '../../../src/ctnetlink/summary.js';
import type { Flow } from '../../support/codec/flow.js';
import { encodeFlow } from '../../support/codec/flow.js';

export function summary(flow: Flow): FlowSummary {
  const buf = encodeFlow(flow);
  const out = new FlowSummary();
  summarizeFlow(buf, 0, buf.length, out);
  return out;
}
