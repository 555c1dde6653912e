/**
 * The addon's guards, from JavaScript (issue 17): sizes out of range throw a RangeError naming the
 * argument instead of allocating (V8 aborts the process when an ArrayBuffer cannot be had) or
 * truncating; a failed open or start leaves no descriptor, thread or reference behind. Failures
 * are provoked for real in a child process: the reader thread's eventfd with every descriptor
 * taken (EMFILE), pthread_create in a pids cgroup that allows no more tasks (EAGAIN), an open in a
 * "namespace" that is /dev/null (setns: EINVAL). Descriptors are counted in /proc/self/fd.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { after, describe, it } from 'node:test';
import { addon } from '../../src/netlink/addon.js';
import { NETLINK_NETFILTER, SO_RCVBUFFORCE, SOL_SOCKET } from '../../src/netlink/transport.js';
import { DIST, sleep } from './harness/netns.js';

const fds = (): number => readdirSync('/proc/self/fd').length;

/** A RangeError (ERR_OUT_OF_RANGE) whose message starts with the argument's name. */
const rangeError = (arg: string) => (e: unknown) =>
  e instanceof RangeError &&
  (e as { code?: string }).code === 'ERR_OUT_OF_RANGE' &&
  e.message.startsWith(arg);

describe('the addon refuses sizes out of range, naming the argument', () => {
  const open = (slots: number, slotSize: number, pauseMs = 0, chunks = 0, protocol = NETLINK_NETFILTER) =>
    addon().open(protocol, slots, slotSize, null, pauseMs, chunks);

  it('open: slots, slotSize, pauseMs, chunks, protocol, and the areas together', () => {
    const before = fds();
    const cases: [() => unknown, string][] = [
      [() => open(0, 4096), 'slots'],
      [() => open(4097, 4096), 'slots'],
      [() => open(1.5, 4096), 'slots'],
      [() => open(Number.NaN, 4096), 'slots'],
      [() => open(2 ** 32 + 4, 4096), 'slots'],
      [() => open(4, 100), 'slotSize'],
      [() => open(4, 2 ** 20 + 1), 'slotSize'],
      [() => open(4, 4096, -1), 'pauseMs'],
      [() => open(4, 4096, 0, 65), 'chunks'],
      [() => open(4, 4096, 0, -1), 'chunks'],
      [() => open(4, 4096, 0, 0, 32), 'protocol'],
      // 4096 slots of 1 MiB in 64 chunks were accepted before: 256 GiB asked of V8, which aborts.
      [() => open(4096, 2 ** 20, 0, 64), 'slots * slotSize * max(chunks, 1)'],
      [() => open(256, 2 ** 20), 'slots * slotSize * max(chunks, 1)'],
    ];
    for (const [call, arg] of cases) assert.throws(call, rangeError(arg), arg);
    assert.throws(
      () => addon().open(NETLINK_NETFILTER, '4' as unknown as number, 4096, null, 0, 0),
      TypeError,
    );
    assert.equal(fds(), before, 'nothing was opened');
  });

  it('setInt: a socket buffer size must be 1 KiB..1 GiB; other options take any int', () => {
    const [h] = open(4, 4096);
    try {
      for (const bad of [0, -1, 512, 2 ** 30 + 1, 2 ** 31 - 1, 2 ** 31]) {
        assert.throws(
          () => addon().setInt(h, SOL_SOCKET, SO_RCVBUFFORCE, bad),
          rangeError('value'),
          String(bad),
        );
      }
      addon().setInt(h, SOL_SOCKET, SO_RCVBUFFORCE, 16 * 2 ** 20);
      assert.ok(addon().getInt(h, SOL_SOCKET, 8 /* SO_RCVBUF */) >= 16 * 2 ** 20);
      assert.throws(() => addon().ref(h, 1 as unknown as boolean), TypeError);
    } finally {
      addon().close(h);
    }
  });

  it('open in a descriptor that is no namespace: fails (setns: EINVAL), and leaves no descriptor', () => {
    const devNull = openSync('/dev/null', 'r');
    try {
      const before = fds();
      for (let i = 0; i < 50; i++) {
        assert.throws(
          () => addon().open(NETLINK_NETFILTER, 4, 4096, devNull, 0, 0),
          (e: unknown) => (e as { errno?: number }).errno === 22,
        );
      }
      assert.equal(fds(), before);
    } finally {
      closeSync(devNull);
    }
  });
});

/**
 * Runs in a child: opens a socket with a reader thread (chunks 2), provokes the failure `mode`
 * names when it starts, undoes the provocation, and reports descriptors (relative to before the
 * open) after the failed start, after a second start and close, and for a socket whose failed
 * start is followed by nothing but JS letting go of it (the finalizer must close it).
 */
const CHILD = `
import { createRequire } from 'node:module';
import { closeSync, openSync, readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
const addon = createRequire(import.meta.url)(${JSON.stringify(`${DIST}../native/build/Release/netlink.node`)});
const fds = () => readdirSync('/proc/self/fd').length;
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const mode = process.argv[1];
const out = {};
async function provoke(h) {
  if (mode === 'emfile') {
    const fill = [];
    try { for (;;) fill.push(openSync('/dev/null', 'r')); } catch (e) { if (e.code !== 'EMFILE') throw e; }
    try { addon.start(h, () => {}, () => {}); } catch (e) { out.error = e.syscall + ' ' + e.errno; }
    for (const fd of fill) closeSync(fd);
  } else {
    console.log('ready'); // the parent limits this process's tasks, then answers
    await lines.next();
    try { addon.start(h, () => {}, () => {}); } catch (e) { out.error = e.syscall + ' ' + e.errno; }
    console.log('undo');
    await lines.next();
  }
}
const base = fds();
const [h] = addon.open(12, 4, 4096, null, 0, 2);
await provoke(h);
out.afterFailedStart = fds() - base;
addon.start(h, () => {}, () => {});
addon.close(h);
await new Promise((r) => setTimeout(r, 50));
out.afterClose = fds() - base;
// Let go without close after a failed start: the finalizer closes it unless a reference leaked.
await (async () => { const [h2] = addon.open(12, 4, 4096, null, 0, 2); await provoke(h2); })();
for (let i = 0; i < 20 && fds() > base; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); }
out.afterGc = fds() - base;
console.log(JSON.stringify(out));
process.exit(0);
`;

interface ChildResult {
  error?: string;
  afterFailedStart: number;
  afterClose: number;
  afterGc: number;
}

/** Runs CHILD; `onLine` answers its 'ready' and 'undo' lines (the pids cgroup). */
async function runChild(
  mode: string,
  onLine: (line: string, pid: number) => void = () => {},
): Promise<ChildResult[]> {
  const child = spawn(process.execPath, ['--expose-gc', '--input-type=module', '-e', CHILD, mode], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const results: ChildResult[] = [];
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.startsWith('{')) results.push(JSON.parse(line) as ChildResult);
      else {
        onLine(line, child.pid!);
        child.stdin.write('go\n');
      }
    }
  });
  const code = await new Promise<number | null>((r) => child.once('close', r));
  assert.equal(code, 0, 'the child exits cleanly (no abort)');
  return results;
}

/** A pids cgroup (v2 with pids enabled, else v1's pids hierarchy), or why there is none. */
function pidsCgroupRoot(): string | undefined {
  try {
    if (readFileSync('/sys/fs/cgroup/cgroup.subtree_control', 'utf8').split(/\s+/).includes('pids')) {
      return '/sys/fs/cgroup';
    }
  } catch {
    // not cgroup v2
  }
  return existsSync('/sys/fs/cgroup/pids/cgroup.procs') ? '/sys/fs/cgroup/pids' : undefined;
}

describe('a failed start leaves nothing behind', () => {
  const made: string[] = [];
  after(async () => {
    for (const dir of made) {
      for (let i = 0; i < 50 && existsSync(dir); i++) {
        try {
          rmdirSync(dir);
        } catch {
          await sleep(100);
        }
      }
    }
  });

  it('eventfd fails (EMFILE): no descriptor left, the socket still starts, and one let go is closed', async () => {
    const [first, second] = await runChild('emfile');
    console.log(`# failed start (eventfd EMFILE): ${JSON.stringify(first)}`);
    assert.equal(first?.error, 'eventfd 24');
    // Relative to before the open: the socket's own descriptor only.
    assert.deepEqual([first?.afterFailedStart, first?.afterClose], [1, 0]);
    assert.equal(first?.afterGc, 0, 'a reference left by the failed start would keep the socket open');
    assert.equal(second, undefined);
  });

  const root = pidsCgroupRoot();
  it('pthread_create fails (a pids cgroup full): the wake eventfd is closed', {
    skip: root ? false : 'no pids cgroup controller',
  }, async () => {
    const dir = `${root}/ctx-pids-${process.pid}`;
    mkdirSync(dir);
    made.push(dir);
    const [result] = await runChild('pids', (line, pid) => {
      if (line === 'ready') {
        writeFileSync(`${dir}/cgroup.procs`, String(pid));
        const threads = Number(/^Threads:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
        writeFileSync(`${dir}/pids.max`, String(threads));
      } else writeFileSync(`${dir}/pids.max`, 'max');
    });
    console.log(`# failed start (pthread_create in a full pids cgroup): ${JSON.stringify(result)}`);
    assert.equal(result?.error, 'pthread_create 11');
    assert.deepEqual([result?.afterFailedStart, result?.afterClose, result?.afterGc], [1, 0, 0]);
  });
});
