/**
 * The event socket's reconnect policy, which belongs to synchronisation: a socket that fails is
 * closed and reopened a second later (every second until it opens), and the consumer is told,
 * because whatever happened while nobody listened was not seen: it resyncs, and flows the dump
 * finds new may send no events (nf_conntrack_events=2), so they are followed as silent.
 * netlink/ only opens, reads and closes sockets; the caller says how to open one.
 */
import type { ConntrackError } from '../errors.js';
import type { EventSocketHandlers } from '../netlink/events.js';
import type { Batch } from '../netlink/transport.js';
import { realTimers, type TimerHandle, type Timers } from './timers.js';

/** A consumer of events that can repair a gap by resynchronising. */
export interface EventConsumer {
  onBatch(batch: Batch): void;
  onOverrun(lost: number): void;
  /** The socket was reopened after a failure: whatever happened meanwhile was not seen. */
  onResubscribed(): void;
}

/** What the policy needs of an open event socket. */
export interface OpenEventSocket {
  readonly receiveBufferSize: number;
  close(): void;
}

/** Opens an event socket that reports to `handlers`; throws if it cannot (netlink's EventSocket). */
export type EventSocketFactory = (handlers: EventSocketHandlers) => OpenEventSocket;

/** A second: long enough not to spin on a lasting failure, short next to a scrape interval. */
const RETRY_MS = 1000;

/** An event socket that reopens itself after it fails (and retries until it can). */
export class ResilientEventSocket {
  private sock: OpenEventSocket | undefined;
  private retry: TimerHandle | undefined;
  private closed = false;

  constructor(
    private readonly consumer: EventConsumer,
    private readonly openSocket: EventSocketFactory,
    private readonly log: { error(obj: object, msg: string): void },
    private readonly timers: Timers = realTimers,
  ) {
    this.sock = this.open(); // the first failure is the caller's (start-up stops)
  }

  /** The effective SO_RCVBUF; undefined while the socket is being reopened. */
  get receiveBufferSize(): number | undefined {
    return this.sock?.receiveBufferSize;
  }

  close(): void {
    this.closed = true;
    if (this.retry) this.timers.clearTimeout(this.retry);
    this.retry = undefined;
    this.sock?.close();
    this.sock = undefined;
  }

  private open(): OpenEventSocket {
    // Not const: an error reported while the factory still runs finds it undefined, not unset.
    let sock: OpenEventSocket | undefined;
    sock = this.openSocket({
      onBatch: (batch) => this.consumer.onBatch(batch),
      onOverrun: (lost) => this.consumer.onOverrun(lost),
      onError: (err) => this.failed(sock, err),
    });
    return sock;
  }

  private failed(sock: OpenEventSocket | undefined, err: ConntrackError): void {
    // A late error of a socket already given up (or of one that never finished opening).
    if (this.closed || sock === undefined || sock !== this.sock) return;
    this.log.error({ err }, 'event socket failed; reopening it and resynchronising');
    sock.close();
    this.sock = undefined;
    this.reopenLater();
  }

  private reopenLater(): void {
    this.retry = this.timers.setTimeout(() => {
      this.retry = undefined;
      if (this.closed) return;
      try {
        this.sock = this.open();
      } catch (err) {
        this.log.error({ err }, 'reopening the event socket failed; trying again');
        this.reopenLater();
        return;
      }
      this.consumer.onResubscribed();
    }, RETRY_MS);
  }
}
