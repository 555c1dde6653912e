/**
 * bcrypt off the event loop. bcryptjs is pure JavaScript: on the main thread it computes in
 * slices of up to 100 ms, during which nothing else runs (no scrape, no kernel message, no
 * other request is even read, so a per-client limit cannot see the next request of a flood
 * before the current check is over). One worker thread runs the comparisons instead; it is
 * started at the first check and stopped after a while without one (a scraper whose password
 * is remembered never needs it again).
 */
import { Worker } from 'node:worker_threads';
import type { CompareReply, CompareRequest } from './bcrypt-worker.js';

const IDLE_MS = 30_000;

class BcryptWorker {
  private worker: Worker | undefined;
  private idle: NodeJS.Timeout | undefined;
  private nextId = 0;
  private readonly waiting = new Map<number, PromiseWithResolvers<boolean>>();

  compare(password: string, hash: string): Promise<boolean> {
    clearTimeout(this.idle);
    this.worker ??= this.start();
    this.worker.ref();
    const id = this.nextId++;
    const result = Promise.withResolvers<boolean>();
    this.waiting.set(id, result);
    this.worker.postMessage({ id, password, hash } satisfies CompareRequest);
    return result.promise;
  }

  private start(): Worker {
    const worker = new Worker(new URL('./bcrypt-worker.js', import.meta.url));
    worker.on('message', (reply: CompareReply) => {
      const result = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      if ('error' in reply) result?.reject(new Error(`bcrypt: ${reply.error}`));
      else result?.resolve(reply.matches);
      if (this.waiting.size > 0) return;
      // Idle: not what keeps the process alive, and stopped after a while.
      worker.unref();
      this.idle = setTimeout(() => this.stop(worker), IDLE_MS).unref();
    });
    const failed = (err: Error): void => {
      if (this.worker === worker) this.worker = undefined;
      for (const result of this.waiting.values()) result.reject(err);
      this.waiting.clear();
    };
    worker.on('error', failed);
    worker.on('exit', (code) => failed(new Error(`bcrypt worker exited with code ${code}`)));
    return worker;
  }

  private stop(worker: Worker): void {
    if (this.worker !== worker || this.waiting.size > 0) return;
    this.worker = undefined;
    void worker.terminate();
  }
}

const shared = new BcryptWorker();

/** bcrypt's comparison of a password with a hash, on the shared worker thread. */
export function compareOffThread(password: string, hash: string): Promise<boolean> {
  return shared.compare(password, hash);
}
