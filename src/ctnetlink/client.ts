/**
 * ctnetlink requests over a request socket (a RequestSocket, or one that reopens itself): the
 * table dump (retried when the kernel marks it interrupted) and the statistics. Dump entries go to
 * the sink undecoded, as message bounds in the reply buffer: the sink decodes what it needs (and
 * counts and skips what it cannot).
 */
import { ConntrackError } from '../errors.js';
import type { ReplyHandler, Requester } from '../netlink/request.js';
import {
  cpuStatsRequest,
  dumpExpectationsRequest,
  dumpTableRequest,
  expectationCpuStatsRequest,
  globalStatsRequest,
  type Request,
} from './requests.js';
import {
  type CpuStats,
  decodeCpuStats,
  decodeExpectationCpuStats,
  decodeGlobalStats,
  type GlobalStats,
} from './stats.js';

export interface DumpSink {
  /** Called before every attempt: discard what an interrupted attempt delivered. */
  begin(attempt: number): void;
  /** One flow message at buf[start, end); valid only during the call. */
  entry(buf: Buffer, start: number, end: number): void;
}

export interface DumpResult {
  flows: number;
  attempts: number;
}

export class CtnetlinkClient {
  constructor(
    private readonly socket: Requester,
    private readonly maxDumpAttempts = 5,
  ) {}

  async dumpTable(sink: DumpSink): Promise<DumpResult> {
    for (let attempt = 1; attempt <= this.maxDumpAttempts; attempt++) {
      sink.begin(attempt);
      const res = await this.send(dumpTableRequest(), (buf, _type, _flags, start, end) =>
        sink.entry(buf, start, end),
      );
      if (!res.interrupted) return { flows: res.messages, attempts: attempt };
    }
    throw new ConntrackError(
      'CT_ERR_DUMP_INTERRUPTED',
      `table dump interrupted by concurrent changes ${this.maxDumpAttempts} times in a row`,
    );
  }

  async cpuStats(): Promise<CpuStats[]> {
    const out: CpuStats[] = [];
    await this.send(cpuStatsRequest(), (buf, _type, _flags, start, end) =>
      out.push(decodeCpuStats(buf, start, end)),
    );
    return out;
  }

  async expectationCpuStats(): Promise<CpuStats[]> {
    const out: CpuStats[] = [];
    await this.send(expectationCpuStatsRequest(), (buf, _type, _flags, start, end) =>
      out.push(decodeExpectationCpuStats(buf, start, end)),
    );
    return out;
  }

  /**
   * The namespace's expectations, counted by dumping them: the kernel keeps the count
   * (nf_conntrack_net.expect_count) but no request reports it. The dump is bounded by
   * nf_conntrack_expect_max (4096 by default) and is empty on most nodes; nothing is decoded.
   */
  async countExpectations(): Promise<number> {
    const res = await this.send(dumpExpectationsRequest(), () => undefined);
    return res.messages;
  }

  async globalStats(): Promise<GlobalStats> {
    let out: GlobalStats | undefined;
    await this.send(globalStatsRequest(), (buf, _type, _flags, start, end) => {
      out = decodeGlobalStats(buf, start, end);
    });
    if (!out) throw new ConntrackError('CT_ERR_MISSING_ATTR', 'CT_GET_STATS reply carried no message');
    return out;
  }

  private send(req: Request, onMessage: ReplyHandler) {
    return this.socket.request(req.type, req.flags, req.payload, onMessage);
  }
}
