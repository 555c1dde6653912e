/** What the table sees of a test flow: encoded as the kernel would send it, then summarized. */
import { encodeFlow } from '../../../src/ctnetlink/encode.js';
import type { Flow } from '../../../src/ctnetlink/flow.js';
import { FlowSummary, summarizeFlow } from '../../../src/ctnetlink/summary.js';

export function summary(flow: Flow): FlowSummary {
  const buf = encodeFlow(flow);
  const out = new FlowSummary();
  summarizeFlow(buf, 0, buf.length, out);
  return out;
}
