/**
 * The one reopen policy of every netlink socket, which belongs to synchronisation: a socket that
 * fails is closed and reopened after a back-off (1 s, doubling up to 30 s, retried as long as the
 * exporter runs). After REOPEN_POLICY.attempts failed attempts in a row the socket counts as
 * lost: /healthz fails, so the kubelet restarts a pod whose sockets cannot come back, and the
 * socket is still retried at the longest back-off (outside Kubernetes nothing else would).
 *
 * Two users: the event socket, whose consumer is told when it is back (whatever happened while
 * nobody listened was not seen: it resyncs, and flows the dump finds new may send no events with
 * nf_conntrack_events=2, so they are followed as silent); and the request sockets (statistics,
 * dumps, namespace ids), whose requests fail at once while they are down (the kernel reader falls
 * back to procfs, a resync is retried by its scheduler). netlink/ only opens, reads and closes
 * sockets; the caller says how to open one.
 */
import { ConntrackError } from '../errors.js';
import type { EventSocketHandlers } from '../netlink/events.js';
import type { ReplyHandler, Requester, RequestResult } from '../netlink/request.js';
import type { Batch } from '../netlink/transport.js';
import { realTimers, type TimerHandle, type Timers } from './timers.js';

export interface ReopenPolicy {
  /** Wait before the first attempt; it doubles after each failed attempt up to `maxDelayMs`. */
  firstDelayMs: number;
  maxDelayMs: number;
  /** Failed attempts in a row after which the socket counts as lost (health fails). */
  attempts: number;
}

/**
 * A second first: long enough not to spin on a lasting failure, short next to a scrape interval.
 * Five attempts take 31 s (1+2+4+8+16) before the socket counts as lost; the kubelet's default
 * liveness probe (3 failures 10 s apart) restarts the pod about half a minute later.
 */
export const REOPEN_POLICY: ReopenPolicy = Object.freeze({
  firstDelayMs: 1000,
  maxDelayMs: 30_000,
  attempts: 5,
});

/** What health and metrics read of one reopening socket. */
export interface SocketHealth {
  /** Which socket: events, stats, dump, nsid. */
  readonly name: string;
  /** Open; false from a failure until it is reopened. */
  readonly up: boolean;
  /** Reopening has failed `attempts` times in a row: the process should be restarted. */
  readonly lost: boolean;
  /** Socket errors that closed it. */
  readonly failures: number;
}

export interface ReopenOptions {
  log: { error(obj: object, msg: string): void };
  timers?: Timers | undefined;
  policy?: ReopenPolicy | undefined;
  /** Called after each successful reopen. */
  onReopened?: (() => void) | undefined;
}

/** Opens a socket that reports its failure to `onError`; throws if it cannot be opened. */
export type SocketOpener<S> = (onError: (err: ConntrackError) => void) => S;

/** A socket that reopens itself after it fails: the policy, whatever the socket. */
export class Reopening<S extends { close(): void }> implements SocketHealth {
  failures = 0;
  private sock: S | undefined;
  private retry: TimerHandle | undefined;
  /** Failed attempts since the last failure. */
  private attempts = 0;
  private closed = false;
  private readonly timers: Timers;
  private readonly policy: ReopenPolicy;

  constructor(
    readonly name: string,
    private readonly openSocket: SocketOpener<S>,
    private readonly options: ReopenOptions,
  ) {
    this.timers = options.timers ?? realTimers;
    this.policy = options.policy ?? REOPEN_POLICY;
    this.sock = this.open(); // the first failure is the caller's (start-up stops)
  }

  /** The open socket; undefined while it is being reopened (or after close). */
  get current(): S | undefined {
    return this.sock;
  }

  get up(): boolean {
    return this.sock !== undefined;
  }

  get lost(): boolean {
    return !this.closed && this.attempts >= this.policy.attempts;
  }

  close(): void {
    this.closed = true;
    if (this.retry) this.timers.clearTimeout(this.retry);
    this.retry = undefined;
    this.sock?.close();
    this.sock = undefined;
  }

  private open(): S {
    // Not const: an error reported while the opener still runs finds it undefined, not unset.
    let sock: S | undefined;
    sock = this.openSocket((err) => this.failed(sock, err));
    return sock;
  }

  private failed(sock: S | undefined, err: ConntrackError): void {
    // A late error of a socket already given up (or of one that never finished opening).
    if (this.closed || sock === undefined || sock !== this.sock) return;
    this.failures++;
    this.options.log.error({ err, socket: this.name }, `${this.name} socket failed; reopening it`);
    sock.close();
    this.sock = undefined;
    this.attempts = 0;
    this.reopenLater();
  }

  private reopenLater(): void {
    const { firstDelayMs, maxDelayMs } = this.policy;
    const delay = Math.min(maxDelayMs, firstDelayMs * 2 ** Math.min(this.attempts, 30));
    this.retry = this.timers.setTimeout(() => {
      this.retry = undefined;
      if (this.closed) return;
      try {
        this.sock = this.open();
      } catch (err) {
        this.attempts++;
        this.options.log.error(
          { err, socket: this.name, attempts: this.attempts, lost: this.lost },
          `reopening the ${this.name} socket failed; trying again`,
        );
        this.reopenLater();
        return;
      }
      this.attempts = 0;
      this.options.onReopened?.();
    }, delay);
  }
}

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

/** The event socket, reopened after it fails; the consumer hears when it is back. */
export class ResilientEventSocket {
  readonly health: SocketHealth;
  private readonly socket: Reopening<OpenEventSocket>;

  constructor(
    consumer: EventConsumer,
    openSocket: EventSocketFactory,
    log: ReopenOptions['log'],
    timers: Timers = realTimers,
    policy?: ReopenPolicy,
  ) {
    this.socket = new Reopening(
      'events',
      (onError) =>
        openSocket({
          onBatch: (batch) => consumer.onBatch(batch),
          onOverrun: (lost) => consumer.onOverrun(lost),
          onError,
        }),
      { log, timers, policy, onReopened: () => consumer.onResubscribed() },
    );
    this.health = this.socket;
  }

  /** The effective SO_RCVBUF; undefined while the socket is being reopened. */
  get receiveBufferSize(): number | undefined {
    return this.socket.current?.receiveBufferSize;
  }

  close(): void {
    this.socket.close();
  }
}

/** Opens a request socket that reports a broken socket to `onBroken` (netlink's RequestSocket.open). */
export type RequestSocketFactory = (onBroken: (err: ConntrackError) => void) => Requester;

/**
 * A request socket reopened after it breaks. While it is down, requests fail at once with
 * CT_ERR_SOCKET: their callers already handle a failed request (procfs stands in for statistics,
 * a failed resync is retried, a namespace id is asked again at the next scan).
 */
export class ResilientRequestSocket implements Requester {
  readonly health: SocketHealth;
  private readonly socket: Reopening<Requester>;

  constructor(name: string, openSocket: RequestSocketFactory, options: ReopenOptions) {
    this.socket = new Reopening(name, openSocket, options);
    this.health = this.socket;
  }

  request(type: number, flags: number, payload: Buffer, onMessage: ReplyHandler): Promise<RequestResult> {
    const s = this.socket.current;
    if (!s) {
      return Promise.reject(
        new ConntrackError('CT_ERR_SOCKET', `the ${this.health.name} socket failed and is being reopened`),
      );
    }
    return s.request(type, flags, payload, onMessage);
  }

  close(): void {
    this.socket.close();
  }
}
