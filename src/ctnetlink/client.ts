/**
 * ctnetlink requests over a RequestSocket: the table dump (retried when the kernel marks it
 * interrupted) and the statistics. Decoding errors of single dump entries are reported to the
 * sink and skipped, so one bad entry never costs the whole dump.
 */
import { ConntrackError } from '../errors.js';
import type { ReplyMessage, RequestSocket } from '../netlink/socket.js';
import { decodeFlow, type Flow } from './flow.js';
import { cpuStatsRequest, dumpTableRequest, globalStatsRequest, type Request } from './requests.js';
import { type CpuStats, decodeCpuStats, decodeGlobalStats, type GlobalStats } from './stats.js';

export interface DumpSink {
  /** Called before every attempt: discard what an interrupted attempt delivered. */
  begin(attempt: number): void;
  flow(flow: Flow): void;
  decodeError(err: ConntrackError): void;
}

export interface DumpResult {
  flows: number;
  attempts: number;
}

export class CtnetlinkClient {
  constructor(
    private readonly socket: RequestSocket,
    private readonly maxDumpAttempts = 5,
  ) {}

  async dumpTable(sink: DumpSink): Promise<DumpResult> {
    for (let attempt = 1; attempt <= this.maxDumpAttempts; attempt++) {
      sink.begin(attempt);
      let flows = 0;
      const res = await this.send(dumpTableRequest(), (m) => {
        try {
          sink.flow(decodeFlow(m.buf, m.start, m.end));
          flows++;
        } catch (err) {
          if (err instanceof ConntrackError) sink.decodeError(err);
          else throw err;
        }
      });
      if (!res.interrupted) return { flows, attempts: attempt };
    }
    throw new ConntrackError(
      'CT_ERR_DUMP_INTERRUPTED',
      `table dump interrupted by concurrent changes ${this.maxDumpAttempts} times in a row`,
    );
  }

  async cpuStats(): Promise<CpuStats[]> {
    const out: CpuStats[] = [];
    await this.send(cpuStatsRequest(), (m) => out.push(decodeCpuStats(m.buf, m.start, m.end)));
    return out;
  }

  async globalStats(): Promise<GlobalStats> {
    let out: GlobalStats | undefined;
    await this.send(globalStatsRequest(), (m) => {
      out = decodeGlobalStats(m.buf, m.start, m.end);
    });
    if (!out) throw new ConntrackError('CT_ERR_TRUNCATED', 'CT_GET_STATS reply carried no message');
    return out;
  }

  private send(req: Request, onMessage: (m: ReplyMessage) => void) {
    return this.socket.request(req.type, req.flags, req.payload, onMessage);
  }
}
