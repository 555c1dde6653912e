/**
 * The container image, built from the real Dockerfile and run (slow: a few minutes; run by
 * `npm test` under CI=true or with CONNTRACK_TEST_IMAGE=1, see test/run.mjs).
 *
 * No Docker engine and no registry here: podman builds the Dockerfile unchanged, on a stand-in
 * for its base image made from Debian and the npm registry's Node.js package (podman.ts). The
 * image then runs with NET_ADMIN as its only capability, in a network namespace this test
 * creates, and must answer as the exporter does outside a container.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mustRun, Netns, ROOT, waitFor } from '../integration/harness/netns.js';
import { Scrape } from '../integration/harness/promtext.js';
import { type BaseImage, baseImageOf, buildBaseStandIn, buildMounts, Podman } from './podman.js';

const TAG = `localhost/conntrack-exporter:test-${process.pid}`;
const LISTEN = '127.0.0.1:9466';
const CAP_NET_ADMIN = 12;
const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string };

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

describe('container image, built from the Dockerfile and run', { timeout: 20 * 60_000 }, () => {
  let work: string;
  let podman: Podman;
  let base: BaseImage;
  let ns: Netns;
  let buildLog = '';
  let buildStatus = -1;
  const container = `ctx-image-${process.pid}`;

  before(
    () => {
      work = mkdtempSync('/var/tmp/ctx-image-');
      podman = new Podman(work);
      base = baseImageOf(readFileSync(`${ROOT}Dockerfile`, 'utf8'));
      const nodeDir = buildBaseStandIn(podman, base, work);
      const r = podman.run([
        'build',
        '--pull=never',
        '--network=host',
        ...buildMounts(work, nodeDir),
        '--file',
        `${ROOT}Dockerfile`,
        '--tag',
        TAG,
        ROOT,
      ]);
      buildStatus = r.status;
      buildLog = r.stdout + r.stderr;
      ns = Netns.create('image');
    },
    { timeout: 15 * 60_000 },
  );

  after(() => {
    podman?.run(['rm', '--force', '--time', '0', container]);
    ns?.delete();
    podman?.reset();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  const run = (args: string[]) =>
    podman.run([
      'run',
      '--rm',
      `--network=ns:/run/netns/${ns.name}`,
      '--cap-drop=ALL',
      '--cap-add=NET_ADMIN',
      TAG,
      ...args,
    ]);

  const get = (path: string) => {
    const out = ns.node('test/integration/harness/http-get.js', [`http://${LISTEN}${path}`]);
    const nl = out.indexOf('\n');
    return { status: Number(out.slice(0, nl)), body: out.slice(nl + 1) };
  };

  it('builds: npm ci installed and compiled, TypeScript built, dev dependencies pruned', () => {
    // npm without the CA bundle and nodedir printed "Exit handler never called!" and exited 0:
    // the log must show each step done, not only a zero status
    assert.equal(buildStatus, 0, buildLog.slice(-4000));
    assert.doesNotMatch(buildLog, /Exit handler never called|npm error|ERR!/);
    assert.match(buildLog, /^added \d+ packages/m, 'npm ci installed packages');
    assert.match(buildLog, /^gyp info ok/m, 'node-gyp built the addon');
    assert.match(buildLog, /^> tsc -p tsconfig\.json$/m);
    assert.match(buildLog, /^removed \d+ packages/m, 'npm prune removed the dev dependencies');
    assert.match(buildLog, new RegExp(`Successfully tagged ${TAG}`));
  });

  it('holds the runtime only: no compilers, sources, dev dependencies, npm config or CA bundle', (t) => {
    const id = podman.must(['create', TAG]).trim();
    let files: string[];
    try {
      const tar = join(work, 'fs.tar');
      podman.must(['export', '--output', tar, id]);
      files = mustRun('tar', ['-tf', tar]).stdout.split('\n');
      rmSync(tar);
    } finally {
      podman.run(['rm', id]);
    }
    const has = (re: RegExp) => files.some((f) => re.test(f));
    assert.ok(has(/^app\/dist\/src\/main\.js$/));
    assert.ok(has(/^app\/node_modules\/fastify\/package\.json$/));
    assert.ok(has(/^app\/native\/build\/Release\/[\w-]+\.node$/));
    assert.ok(has(/^usr\/local\/bin\/node$/));
    for (const re of [
      /^app\/(src|test|bench|scripts)\//,
      /^app\/dist\/(test|bench|scripts)\//,
      /^app\/native\/build\/Release\/obj/,
      /^app\/node_modules\/(typescript|@biomejs|@types|kubernetes-models|@kubernetes-models|yaml)\/./,
      /^usr\/bin\/(g\+\+|gcc|make|python3)$/,
      /(^|\/)\.npmrc$/,
      /^ctx-build\//,
      /^src\//,
    ]) {
      assert.deepEqual(files.filter((f) => re.test(f)).slice(0, 3), [], `${re} in the image`);
    }

    const [img] = JSON.parse(podman.must(['image', 'inspect', TAG])) as {
      Size: number;
      Config: { Entrypoint: string[]; ExposedPorts: Record<string, unknown>; Env: string[]; User: string };
    }[];
    const [baseImg] = JSON.parse(podman.must(['image', 'inspect', `docker.io/library/${base.ref}`])) as {
      Size: number;
    }[];
    assert.deepEqual(img!.Config.Entrypoint, ['node', 'dist/src/main.js']);
    assert.ok('9466/tcp' in img!.Config.ExposedPorts);
    assert.doesNotMatch(img!.Config.Env.join('\n'), /npm_config|cafile|nodedir|ctx-build/i);
    t.diagnostic(
      `image ${mb(img!.Size)}: base stand-in ${mb(baseImg!.Size)} + exporter ${mb(img!.Size - baseImg!.Size)}`,
    );
  });

  it('--version names the package version and the base image’s Node.js', () => {
    const r = run(['--version']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), `conntrack-exporter ${pkg.version} (node v${base.node})`);
  });

  it('serves /readyz and the namespace’s conntrack table with NET_ADMIN as its only capability', async () => {
    podman.must([
      'run',
      '--detach',
      '--name',
      container,
      `--network=ns:/run/netns/${ns.name}`,
      '--cap-drop=ALL',
      '--cap-add=NET_ADMIN',
      '--read-only',
      '--security-opt=no-new-privileges',
      TAG,
      `--web.listen-address=${LISTEN}`,
      '--log.format=json',
    ]);
    const pid = Number(podman.must(['inspect', '--format', '{{.State.Pid}}', container]).trim());
    const capEff = /^CapEff:\s+([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    assert.equal(BigInt(`0x${capEff}`), 1n << BigInt(CAP_NET_ADMIN), 'effective capabilities');

    await waitFor('/readyz 200', () => (get('/readyz').status === 200 ? true : undefined), 30_000);
    const made = ns.traffic('tcp=127.0.0.1', 'syn=127.0.0.1', 'udp-noreply=127.0.0.1');
    const scrape = await waitFor(
      'the flows in /metrics',
      () => {
        const r = get('/metrics');
        if (r.status !== 200) return undefined;
        const s = new Scrape(r.body);
        return s.sum('conntrack_flows') >= made.length ? s : undefined;
      },
      30_000,
    );
    assert.equal(scrape.sum('conntrack_flows', { protocol: 'tcp', state: 'SYN_SENT' }), 1);
    assert.equal(scrape.sum('conntrack_flows', { protocol: 'udp', state: 'UNREPLIED' }), 1);
    assert.ok(scrape.value('conntrack_entries') >= made.length);
    assert.ok(scrape.value('conntrack_entries_limit') > 0);
    assert.ok(scrape.value('conntrack_events_total', { event: 'new' }) >= made.length);
    assert.equal(scrape.value('conntrack_exporter_build_info', { version: pkg.version }), 1);
  });

  it('SIGTERM: exits 0 on its own within 2 s (podman stop kills it after 2 s otherwise)', () => {
    podman.must(['stop', '--time', '2', container]);
    const state = podman.must(['inspect', '--format', '{{.State.ExitCode}} {{.State.Status}}', container]);
    assert.equal(state.trim(), '0 exited');
    assert.match(podman.must(['logs', container]), /"signal":"SIGTERM".*shutting down/);
  });
});
