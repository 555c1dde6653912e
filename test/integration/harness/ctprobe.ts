/**
 * Runs inside a test namespace (`ip netns exec NS node ctprobe.js <mode>`) and prints what our
 * protocol layer reads from that namespace's kernel, one JSON object per line:
 * - `events [rcvbuf]`: `{"ready":true,"rcvbuf":<effective>}` once subscribed, then one line per event until SIGTERM;
 * - `dump`: one line per flow of a full table dump, then `{"done":<n>}`;
 * - `stats`: `{"cpu":[...],"global":{...}}`.
 */
import { CtnetlinkClient } from '../../../src/ctnetlink/client.js';
import { ConntrackError } from '../../../src/errors.js';
import { EventSocket } from '../../../src/netlink/events.js';
import { DatagramCursor, MessageCursor } from '../../../src/netlink/framing.js';
import { RequestSocket } from '../../../src/netlink/request.js';
import { decodeEvent } from '../../support/codec/event.js';
import { decodeFlow } from '../../support/codec/flow.js';
import { summarize } from './summary.js';

const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

/** One line per event message of a datagram; a message that does not decode ends it with its error. */
function printEvents(m: MessageCursor): void {
  try {
    while (m.next()) {
      const ev = decodeEvent(m.buf, m.type, m.flags, m.start, m.end);
      out({ event: ev.type, flags: m.flags, ...summarize(ev.flow) });
    }
  } catch (err) {
    if (!(err instanceof ConntrackError)) throw err;
    out({ error: err.code, message: err.message });
  }
}

async function main(mode: string | undefined): Promise<void> {
  switch (mode) {
    case 'events': {
      const datagrams = new DatagramCursor();
      const messages = new MessageCursor();
      const rcvbuf = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
      const sock = new EventSocket(
        {
          onBatch(batch) {
            const d = datagrams.reset(batch);
            while (d.next()) printEvents(messages.reset(d.buf, d.start, d.end));
            if (d.truncated > 0) out({ error: 'CT_ERR_TRUNCATED', message: d.truncation('event').message });
          },
          onOverrun(lost) {
            out({ overrun: lost });
          },
          onError(err) {
            out({ error: err.code, message: err.message });
          },
        },
        { rcvbuf },
      );
      process.on('SIGTERM', () => {
        sock.close();
        process.exit(0);
      });
      out({ ready: true, rcvbuf: sock.receiveBufferSize });
      return;
    }
    case 'dump': {
      const sock = RequestSocket.open();
      const client = new CtnetlinkClient(sock);
      const res = await client.dumpTable({
        begin() {},
        entry: (buf, start, end) => {
          try {
            out(summarize(decodeFlow(buf, start, end)));
          } catch (err) {
            if (!(err instanceof ConntrackError)) throw err;
            out({ error: err.code, message: err.message });
          }
        },
      });
      out({ done: res.flows, attempts: res.attempts });
      sock.close();
      return;
    }
    case 'stats': {
      const sock = RequestSocket.open();
      const client = new CtnetlinkClient(sock);
      out({ cpu: await client.cpuStats(), global: await client.globalStats() });
      sock.close();
      return;
    }
    default:
      throw new Error(`usage: ctprobe.js events|dump|stats (got ${mode})`);
  }
}

main(process.argv[2]).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
