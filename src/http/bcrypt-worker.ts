/**
 * The worker thread of bcrypt.ts: compares a password with a bcrypt hash, one message at a time,
 * so the event loop that serves scrapes and reads the kernel never runs bcrypt itself.
 */
import { parentPort } from 'node:worker_threads';
import bcrypt from 'bcryptjs';

export interface CompareRequest {
  readonly id: number;
  readonly password: string;
  readonly hash: string;
}

export type CompareReply =
  | { readonly id: number; readonly matches: boolean }
  | { readonly id: number; readonly error: string };

parentPort?.on('message', (m: CompareRequest) => {
  let reply: CompareReply;
  try {
    reply = { id: m.id, matches: bcrypt.compareSync(m.password, m.hash) };
  } catch (err) {
    reply = { id: m.id, error: err instanceof Error ? err.message : String(err) };
  }
  parentPort?.postMessage(reply);
});
