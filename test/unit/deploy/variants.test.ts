/**
 * The three ways to serve the metrics (the base with kube-rbac-proxy, components/basic-auth,
 * components/plain) and every shipped overlay: each renders, alone and with the optional
 * components; the kubelet's probes reach listeners and paths that answer; basic-auth's Secrets,
 * as make-secrets.sh writes them, are served by the real server as the ServiceMonitor scrapes
 * it; plain says it is not for production; nothing secret is committed under deploy/.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix } from 'node:path';
import { describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import pino from 'pino';
import { type Config, parseConfig } from '../../../src/config.js';
import { BasicAuth } from '../../../src/http/basic-auth.js';
import { serve } from '../../../src/http/serve.js';
import { buildServer } from '../../../src/http/server.js';
import { loadWebConfig } from '../../../src/http/web-config-files.js';
import { ROOT } from '../../paths.js';
import {
  expandArgs,
  K8S,
  type K8sObject,
  type Located,
  type Renderer,
  render,
  renderComposed,
  rendererFor,
  schemaProblem,
  typeProblems,
} from './k8s.js';

interface Probe {
  httpGet?: { host?: string; path: string; port: string | number; scheme?: string };
}
interface Container {
  name: string;
  args?: string[];
  env?: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports?: { name?: string; containerPort: number; hostPort?: number }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: { name: string; secret?: { secretName: string; optional?: boolean } }[];
}
type DaemonSet = K8sObject & { spec: { template: { spec: PodSpec } } };
type SecretKey = { name: string; key: string };
interface Endpoint {
  port: string;
  scheme?: string;
  bearerTokenFile?: string;
  basicAuth?: { username: SecretKey; password: SecretKey };
  tlsConfig?: { insecureSkipVerify?: boolean; ca?: { secret?: SecretKey }; serverName?: string };
}
type ServiceMonitor = K8sObject & { spec: { endpoints: Endpoint[] } };

/** How each way to serve is added to the base. */
const VARIANTS: Record<string, string[]> = {
  'kube-rbac-proxy': [],
  'basic-auth': ['components/basic-auth'],
  plain: ['components/plain'],
};
const OPTIONAL = [
  'components/netns-all',
  'components/kube-prometheus-stack',
  'components/nf-conntrack-events-1',
];
/** Whether an optional component's change is in a rendering. */
const OPTIONAL_DONE: Record<string, (objs: Located[]) => boolean> = {
  'components/netns-all': (objs) => {
    const exporter = exporterOf(daemonSet(objs));
    return (
      (exporter.args ?? []).includes('--netns.all') &&
      (exporter.volumeMounts ?? []).some((m) => m.mountPath === '/var/run/netns')
    );
  },
  'components/kube-prometheus-stack': (objs) =>
    serviceMonitor(objs).metadata.labels?.['release'] === 'kube-prometheus-stack',
  'components/nf-conntrack-events-1': (objs) => daemonSet(objs).initContainers?.length === 1,
};
/** What status.podIP is under hostNetwork: the node's address. */
const POD_IP = '10.0.0.7';
const log = pino({ level: 'silent' });

const daemonSet = (objs: Located[]) => {
  const found = objs.filter((o) => o.obj.kind === 'DaemonSet');
  assert.equal(found.length, 1, 'one DaemonSet');
  return (found[0]!.obj as DaemonSet).spec.template.spec;
};
const exporterOf = (pod: PodSpec) => {
  const c = pod.containers[0]!;
  assert.equal(c.name, 'conntrack-exporter', 'the exporter is the first container');
  return c;
};
const serviceMonitor = (objs: Located[]) =>
  objs.find((o) => o.obj.kind === 'ServiceMonitor')!.obj as ServiceMonitor;
/** The exporter's flags as the kubelet passes them on a node whose address is POD_IP. */
const exporterConfig = (pod: PodSpec): Config =>
  parseConfig(expandArgs(exporterOf(pod).args ?? [], { IP: POD_IP }));
/** Ports the pod holds on the node's address: under hostNetwork, every declared one. */
const nodePorts = (pod: PodSpec) =>
  pod.containers.flatMap((c) =>
    (c.ports ?? []).map((p) => ({ container: c.name, name: p.name, port: p.hostPort ?? p.containerPort })),
  );
/** Each rendering made once for all the tests. */
const renders = new Map<string, Located[]>();
function once(key: string, make: () => Located[]): Located[] {
  let objs = renders.get(key);
  if (!objs) {
    objs = make();
    renders.set(key, objs);
  }
  return objs;
}
/** The base with these components. */
const composed = (r: Renderer, components: string[]) =>
  once(components.join(), () => renderComposed(r, ['base'], components));
/** A shipped overlay. */
const overlay = (r: Renderer, name: string) =>
  once(`overlays/${name}`, () => render(r, `${K8S}overlays/${name}`));
/** Where the kubelet connects for an httpGet probe: the pod's IP unless `host`, a named port of the container. */
function probeTarget(
  c: Container,
  get: NonNullable<Probe['httpGet']>,
): { host: string; port: number | undefined } {
  const port =
    typeof get.port === 'number' ? get.port : c.ports?.find((p) => p.name === get.port)?.containerPort;
  return { host: get.host ?? POD_IP, port };
}
const names = (objs: Located[]) => objs.map((o) => `${o.obj.kind}/${o.obj.metadata.name}`).sort();

/** Every file under dir, relative to the repository. */
function filesUnder(dir: string): string[] {
  return readdirSync(`${ROOT}${dir}`, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(`${dir}/${e.name}`) : [`${dir}/${e.name}`],
  );
}

describe('ways to serve the metrics, and the overlays', () => {
  it('every shipped overlay renders, valid against its schemas and API types', (t) => {
    const r = rendererFor(t);
    if (!r) return;
    const overlays = readdirSync(`${K8S}overlays`);
    for (const o of ['basic-auth', 'plain', 'kube-prometheus-stack', 'netns-all'])
      assert.ok(overlays.includes(o), o);
    const all = overlays.flatMap((o) => overlay(r, o));
    assert.deepEqual(
      all.flatMap((o) => schemaProblem(o) ?? []),
      [],
    );
    assert.deepEqual(typeProblems(all, ROOT), []);
  });

  it('each way renders alone and with every optional component, listed before or after it; one node port', (t) => {
    const r = rendererFor(t);
    if (!r) return;
    for (const [variant, own] of Object.entries(VARIANTS)) {
      const orders = [own, [...own, ...OPTIONAL], [...OPTIONAL, ...own]];
      for (const components of new Map(orders.map((c) => [c.join(), c])).values()) {
        const objs = composed(r, components);
        const what = components.join(' + ') || variant;
        assert.deepEqual(
          objs.flatMap((o) => schemaProblem(o) ?? []),
          [],
          what,
        );
        const pod = daemonSet(objs);
        const served = variant === 'kube-rbac-proxy' ? 'kube-rbac-proxy' : 'conntrack-exporter';
        assert.deepEqual(nodePorts(pod), [{ container: served, name: 'metrics', port: 9466 }], what);
        const hosts = exporterConfig(pod).listen.map((l) => l.host);
        const expected = { 'kube-rbac-proxy': '127.0.0.1', 'basic-auth': POD_IP, plain: '::' }[variant];
        assert.deepEqual(hosts, [expected], `${what}: listens on`);
        assert.deepEqual(
          OPTIONAL.filter((c) => components.includes(c) && !OPTIONAL_DONE[c]!(objs)),
          [],
          `${what}: each optional component did its part`,
        );
      }
    }
  });

  it('two ways to serve do not combine: the build stops', (t) => {
    const r = rendererFor(t);
    if (!r) return;
    assert.throws(
      () => renderComposed(r, ['base'], ['components/basic-auth', 'components/plain']),
      /test failed/,
    );
    assert.throws(
      () => renderComposed(r, ['base'], ['components/plain', 'components/basic-auth']),
      /test failed/,
    );
  });

  it("in each way, the kubelet's probes reach a listener of the exporter and paths that answer", async (t) => {
    const r = rendererFor(t);
    if (!r) return;
    for (const variant of Object.keys(VARIANTS)) {
      const pod = daemonSet(composed(r, VARIANTS[variant]!));
      const exporter = exporterOf(pod);
      const config = exporterConfig(pod);
      // The kubelet never sends credentials: with basic auth the probes must still pass.
      const auth = config.webConfigFile
        ? new BasicAuth(new Map([['prometheus', bcrypt.hashSync('secret', 4)]]))
        : undefined;
      const app = buildServer({
        telemetryPath: config.telemetryPath,
        version: '0.0.0',
        render: async () => '',
        isReady: () => true,
        auth,
      });
      try {
        for (const probe of [exporter.livenessProbe, exporter.readinessProbe]) {
          const get = probe?.httpGet;
          assert.ok(get, `${variant}: an httpGet probe`);
          const target = probeTarget(exporter, get);
          const reached = config.listen.some(
            (l) => l.port === target.port && [target.host, '::'].includes(l.host),
          );
          assert.ok(reached, `${variant}: ${target.host}:${target.port} is a listener`);
          assert.equal(get.scheme === 'HTTPS', config.webConfigFile !== undefined, `${variant}: scheme`);
          assert.equal((await app.inject({ url: get.path })).statusCode, 200, `${variant}: ${get.path}`);
        }
      } finally {
        await app.close();
      }
    }
  });

  it('plain: says it is not for production; plain HTTP on every address, no authentication', (t) => {
    for (const f of ['overlays/plain/kustomization.yaml', 'components/plain/kustomization.yaml']) {
      assert.match(readFileSync(`${K8S}${f}`, 'utf8'), /NOT FOR PRODUCTION/, f);
    }
    const r = rendererFor(t);
    if (!r) return;
    const objs = overlay(r, 'plain');
    const pod = daemonSet(objs);
    assert.deepEqual(
      pod.containers.map((c) => c.name),
      ['conntrack-exporter'],
    );
    assert.equal(exporterConfig(pod).webConfigFile, undefined);
    const [e] = serviceMonitor(objs).spec.endpoints;
    assert.deepEqual([e?.scheme, e?.bearerTokenFile, e?.tlsConfig], [undefined, undefined, undefined]);
    // nothing of the proxy is left behind: no RBAC object, no token
    assert.deepEqual(
      objs.filter((o) => o.obj.kind.startsWith('ClusterRole')).map((o) => o.obj.metadata.name),
      [],
    );
    assert.deepEqual(pod.volumes, []);
  });

  it('basic-auth: the exporter reads its web config from one Secret, the ServiceMonitor its credentials from another; neither is shipped', (t) => {
    const r = rendererFor(t);
    if (!r) return;
    const objs = overlay(r, 'basic-auth');
    const pod = daemonSet(objs);
    assert.deepEqual(
      pod.containers.map((c) => c.name),
      ['conntrack-exporter'],
    );
    const exporter = exporterOf(pod);
    const file = exporterConfig(pod).webConfigFile;
    assert.ok(file, '--web.config.file');
    const mount = exporter.volumeMounts?.find((m) => m.mountPath === dirname(file));
    assert.equal(mount?.readOnly, true, 'the web config is a mounted volume');
    const volume = pod.volumes?.find((v) => v.name === mount?.name);
    assert.equal(volume?.secret?.secretName, 'conntrack-exporter-web');
    assert.notEqual(
      volume?.secret?.optional,
      true,
      'no Secret, no exporter: never a silent fallback to no auth',
    );
    // listens on the node's address, which the kubelet sets
    assert.equal(exporter.env?.find((e) => e.name === 'IP')?.valueFrom?.fieldRef?.fieldPath, 'status.podIP');

    const [e] = serviceMonitor(objs).spec.endpoints;
    assert.equal(e?.scheme, 'https');
    assert.equal(e?.bearerTokenFile, undefined);
    assert.deepEqual(e?.basicAuth, {
      username: { name: 'conntrack-exporter-scrape', key: 'username' },
      password: { name: 'conntrack-exporter-scrape', key: 'password' },
    });
    assert.deepEqual(e?.tlsConfig?.ca?.secret, { name: 'conntrack-exporter-scrape', key: 'ca.crt' });
    assert.ok(e?.tlsConfig?.serverName, 'a name to check the certificate against');
    assert.notEqual(e?.tlsConfig?.insecureSkipVerify, true);

    assert.deepEqual(
      names(objs).filter((n) => n.startsWith('Secret/') || n.startsWith('ClusterRole')),
      [],
      'the user makes the Secrets; no RBAC object of the proxy is left',
    );
  });

  it("basic-auth: make-secrets.sh writes both Secrets' files; the exporter serves them as the ServiceMonitor scrapes", async (t) => {
    const r = rendererFor(t);
    if (!r) return;
    if (spawnSync('openssl', ['version']).status !== 0) {
      if (process.env['CI'] === 'true') assert.fail('CI=true and no openssl');
      return t.skip('openssl is not installed');
    }
    const objs = overlay(r, 'basic-auth');
    const pod = daemonSet(objs);
    const endpoint = serviceMonitor(objs).spec.endpoints[0]!;
    const tmp = mkdtempSync(join(tmpdir(), 'ctx-secrets-'));
    try {
      const dir = join(tmp, 'secrets');
      const script = `${K8S}components/basic-auth/make-secrets.sh`;
      // its default certificate name must be the one the ServiceMonitor checks
      const run = spawnSync('bash', [script, dir], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      const secrets = printedSecrets(run.stdout);
      const web = pod.volumes?.find((v) => v.secret)?.secret?.secretName;
      const file = exporterConfig(pod).webConfigFile!;
      assert.ok(secrets.get(web!)?.includes(basename(file)), `${web} holds ${basename(file)}`);
      for (const ref of [
        endpoint.basicAuth!.username,
        endpoint.basicAuth!.password,
        endpoint.tlsConfig!.ca!.secret!,
      ]) {
        assert.ok(secrets.get(ref.name)?.includes(ref.key), `${ref.name} holds ${ref.key}`);
      }

      // The exporter as the DaemonSet starts it, with the Secret's files where it mounts them
      // (here, the directory), on an ephemeral port of the loopback.
      const webConfig = loadWebConfig(join(dir, basename(file)));
      assert.ok(
        [webConfig.tls!.cert, webConfig.tls!.key].every(
          (s) => 'file' in s && secrets.get(web!)?.includes(basename(s.file)),
        ),
        'the web config names files of its own Secret',
      );
      const args = expandArgs(exporterOf(pod).args ?? [], { IP: '127.0.0.1' }).map((a) =>
        a.startsWith('--web.listen-address=') ? '--web.listen-address=127.0.0.1:0' : a,
      );
      const served = await serve(parseConfig(args), webConfig, log, {
        version: '0.0.0',
        render: async () => 'conntrack_entries 1\n',
        isReady: () => true,
      });
      try {
        const port = Number(served.addresses[0]!.split(':').pop());
        const prometheus = asPrometheus(endpoint, (f) => readFileSync(join(dir, f), 'utf8'));
        const metrics = parseConfig(args).telemetryPath;
        assert.deepEqual(await get(port, metrics, prometheus), {
          status: 200,
          body: 'conntrack_entries 1\n',
        });
        assert.equal((await get(port, metrics, { ...prometheus, auth: 'prometheus:wrong' })).status, 401);
        const { auth: _, ...anonymous } = prometheus;
        assert.equal((await get(port, metrics, anonymous)).status, 401);
        // the certificate is checked: another name fails the handshake
        await assert.rejects(get(port, metrics, { ...prometheus, servername: 'example.com' }), /altnames/);
        // the kubelet: HTTPS without checking the certificate, no credentials
        for (const probe of ['/healthz', '/readyz']) {
          assert.equal((await get(port, probe, { insecure: true })).status, 200, probe);
        }
      } finally {
        await served.close();
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('no private key or password hash is committed under deploy/', () => {
    const PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;
    const BCRYPT = /\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}/;
    // the patterns find the real thing
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    });
    assert.match(String(key), PRIVATE_KEY);
    assert.match(bcrypt.hashSync('x', 4), BCRYPT);
    const files = filesUnder('deploy');
    assert.ok(files.includes('deploy/kubernetes/components/basic-auth/make-secrets.sh'));
    for (const f of files) {
      const text = readFileSync(`${ROOT}${f}`, 'utf8');
      assert.doesNotMatch(text, PRIVATE_KEY, f);
      assert.doesNotMatch(text, BCRYPT, f);
    }
  });
});

/** The Secrets that make-secrets.sh's printed commands create, and the files (keys) of each. */
function printedSecrets(stdout: string): Map<string, string[]> {
  const secrets = new Map<string, string[]>();
  for (const m of stdout.matchAll(/create secret generic (\S+)((?:\s+\\?\s*--from-file=\S+)+)/g)) {
    secrets.set(
      m[1]!,
      [...m[2]!.matchAll(/--from-file=(\S+)/g)].map((f) => posix.basename(f[1]!)),
    );
  }
  return secrets;
}

/** The client the ServiceMonitor endpoint makes of Prometheus, its Secret's keys read by `read`. */
function asPrometheus(e: Endpoint, read: (key: string) => string): Client {
  const { basicAuth, tlsConfig } = e;
  assert.ok(basicAuth && tlsConfig?.ca?.secret && tlsConfig.serverName, 'basic auth, CA and server name');
  return {
    ca: read(tlsConfig.ca.secret.key),
    servername: tlsConfig.serverName,
    auth: `${read(basicAuth.username.key)}:${read(basicAuth.password.key)}`,
  };
}

interface Client {
  ca?: string;
  servername?: string;
  auth?: string;
  /** Skip certificate checks, as the kubelet's HTTPS probes do. */
  insecure?: boolean;
}

function get(port: number, path: string, c: Client): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        agent: false,
        ...(c.insecure ? { rejectUnauthorized: false } : { ca: c.ca, servername: c.servername }),
        ...(c.auth === undefined ? {} : { auth: c.auth }),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}
