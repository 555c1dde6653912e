/**
 * The Kubernetes manifests and the Dockerfile: valid against the API schemas, rendered by
 * kustomize, admissible under Pod Security, and consistent with the code they ship.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import bcrypt from 'bcryptjs';
import { DEFAULT_PORT, parseConfig } from '../../../src/config.js';
import { BasicAuth } from '../../../src/http/basic-auth.js';
import { buildServer } from '../../../src/http/server.js';
import { ROOT } from '../../paths.js';
import {
  findKustomize,
  K8S,
  type K8sObject,
  type Located,
  readObjects,
  render,
  schemaProblem,
  typeProblems,
} from './k8s.js';

const read = (p: string) => readFileSync(`${ROOT}${p}`, 'utf8');
const pkg = JSON.parse(read('package.json')) as { version: string; engines: { node: string } };

const SELECTOR_LABELS = ['app.kubernetes.io/name', 'app.kubernetes.io/instance'];
const RECOMMENDED_LABELS = [
  ...SELECTOR_LABELS,
  'app.kubernetes.io/version',
  'app.kubernetes.io/component',
  'app.kubernetes.io/part-of',
  'app.kubernetes.io/managed-by',
];
/** Capabilities Pod Security "baseline" allows a container to add. */
const BASELINE_CAPABILITIES = new Set([
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
]);

type Probe = {
  httpGet?: { host?: string; path: string; port: string | number; scheme?: string };
  tcpSocket?: { host?: string; port: string | number };
};
interface Container {
  name: string;
  image: string;
  args?: string[];
  ports?: { name?: string; containerPort: number; hostPort?: number }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  securityContext?: {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
    seccompProfile?: { type: string };
    runAsNonRoot?: boolean;
  };
}
interface PodSpec {
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  priorityClassName?: string;
  securityContext?: { seccompProfile?: { type: string } };
  containers: Container[];
}
interface Workload extends K8sObject {
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}

/** Every YAML file under deploy/kubernetes but the kustomizations: the objects we ship. */
function shippedObjects(): Located[] {
  const out: Located[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(`${dir}${e.name}/`);
      else if (e.name.endsWith('.yaml') && e.name !== 'kustomization.yaml') {
        out.push(...readObjects(`${dir}${e.name}`, `${dir.slice(ROOT.length)}${e.name}`));
      }
    }
  };
  walk(K8S);
  return out;
}

const only = (objs: Located[], kind: string): K8sObject[] =>
  objs.filter((o) => o.obj.kind === kind).map((o) => o.obj);
const one = <T extends K8sObject>(objs: Located[], kind: string): T => {
  const found = only(objs, kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0] as T;
};
const matches = (selector: Record<string, string>, labels: Record<string, string> | undefined) =>
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/** The directories that the sources under `dir` load native addons from, inside the image at `app`. */
function addonLoadDirs(app: string, dir: string): string[] {
  return readdirSync(`${ROOT}${dir}`, { withFileTypes: true }).flatMap((e) => {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) return addonLoadDirs(app, p);
    if (!p.endsWith('.ts')) return [];
    // src/x/y.ts runs as <app>/dist/src/x/y.js
    const from = posix.dirname(posix.join(app, 'dist', p));
    return [...read(p).matchAll(/['"]((?:\.\.\/)+native\/build\/Release\/[\w-]+\.node)['"]/g)].map((m) =>
      posix.dirname(posix.resolve(from, m[1]!)),
    );
  });
}

/** Why a pod breaks Pod Security "baseline" (empty: it does not). */
function baselineViolations(pod: PodSpec): string[] {
  const out: string[] = [];
  if (pod.hostNetwork) out.push('hostNetwork');
  if (pod.hostPID) out.push('hostPID');
  if (pod.hostIPC) out.push('hostIPC');
  for (const c of pod.containers) out.push(...containerViolations(c));
  return out;
}

function containerViolations(c: PodSpec['containers'][number]): string[] {
  const out: string[] = [];
  if (c.securityContext?.privileged) out.push(`${c.name}: privileged`);
  for (const p of c.ports ?? []) if (p.hostPort) out.push(`${c.name}: hostPort ${p.hostPort}`);
  for (const cap of c.securityContext?.capabilities?.add ?? []) {
    if (!BASELINE_CAPABILITIES.has(cap)) out.push(`${c.name}: capability ${cap}`);
  }
  // since Kubernetes 1.34: the kubelet must not be sent to another host than the pod
  for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe]) {
    const host = probe?.httpGet?.host ?? probe?.tcpSocket?.host;
    if (host) out.push(`${c.name}: probe host ${host}`);
  }
  return out;
}

describe('Kubernetes manifests: schemas', () => {
  const shipped = shippedObjects();

  it('ship every kind of object a deployment needs', () => {
    const kinds = new Set(shipped.map((o) => o.obj.kind));
    for (const k of [
      'Namespace',
      'ResourceQuota',
      'ServiceAccount',
      'ClusterRole',
      'ClusterRoleBinding',
      'DaemonSet',
      'Service',
      'ServiceMonitor',
      'PrometheusRule',
    ]) {
      assert.ok(kinds.has(k), k);
    }
  });

  it('every object is valid against its Kubernetes or prometheus-operator schema', () => {
    const problems = shipped.flatMap((o) => {
      const p = schemaProblem(o);
      return p === undefined ? [] : [`${o.where}: ${p}`];
    });
    assert.deepEqual(problems, []);
  });

  it('the schema validation rejects a wrong type', () => {
    const ds = structuredClone(one<Workload>(shipped, 'DaemonSet'));
    (ds.spec.template.spec.containers[0] as unknown as Record<string, unknown>)['ports'] = [
      { containerPort: 'metrics' },
    ];
    assert.match(schemaProblem({ where: 'broken', obj: ds }) ?? '', /containerPort/);
  });

  it('no object has a field its API type does not know (tsc excess-property check)', () => {
    const bad = structuredClone(one<Workload>(shipped, 'DaemonSet'));
    (bad.spec.template.spec as unknown as Record<string, unknown>)['hostNetwrk'] = true;
    const problems = typeProblems([...shipped, { where: 'misspelt', obj: bad }], ROOT);
    // the deliberately misspelt field is found, and nothing else
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0]!, /^misspelt: .*hostNetwrk/);
  });
});

describe('Kubernetes manifests: what kustomize renders', () => {
  let base: Located[];
  let kps: Located[];
  before(() => {
    const r = findKustomize();
    if (typeof r === 'string') return;
    base = render(r, `${K8S}base`);
    kps = render(r, `${K8S}overlays/kube-prometheus-stack`);
  });
  /** false (and the test skipped, or failed under CI=true) when no kustomize is installed. */
  const rendered = (t: TestContext): boolean => {
    if (base !== undefined) return true;
    const why = findKustomize() as string;
    if (process.env['CI'] === 'true') assert.fail(`CI=true and ${why}`);
    t.skip(why);
    return false;
  };

  it('renders every shipped base object, valid against its schema and API type', (t) => {
    if (!rendered(t)) return;
    const files = readObjects(`${K8S}base/kustomization.yaml`, 'kustomization');
    const resources = (files[0]!.obj as unknown as { resources: string[] }).resources;
    const fromFiles = resources.flatMap((f) => readObjects(`${K8S}base/${f}`, f));
    assert.deepEqual(
      base.map((o) => `${o.obj.kind}/${o.obj.metadata.name}`).sort(),
      fromFiles.map((o) => `${o.obj.kind}/${o.obj.metadata.name}`).sort(),
    );
    const all = [...base, ...kps];
    assert.deepEqual(
      all.flatMap((o) => schemaProblem(o) ?? []),
      [],
    );
    assert.deepEqual(typeProblems(all, ROOT), []);
  });

  it('puts everything in its own namespace, which Pod Security lets the pod into', (t) => {
    if (!rendered(t)) return;
    const ns = one(base, 'Namespace');
    const clusterScoped = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding']);
    for (const { where, obj } of base) {
      if (!clusterScoped.has(obj.kind)) assert.equal(obj.metadata.namespace, ns.metadata.name, where);
      else assert.equal(obj.metadata.namespace, undefined, where);
    }
    // hostNetwork, hostPort, NET_ADMIN and a probe host break "baseline": the namespace must be
    // "privileged", and no more open than the pod needs
    const pod = one<Workload>(base, 'DaemonSet').spec.template.spec;
    const level = baselineViolations(pod).length > 0 ? 'privileged' : 'baseline';
    assert.deepEqual(baselineViolations(pod).sort(), [
      'conntrack-exporter: capability NET_ADMIN',
      'conntrack-exporter: probe host 127.0.0.1',
      'conntrack-exporter: probe host 127.0.0.1',
      'hostNetwork',
      `kube-rbac-proxy: hostPort ${DEFAULT_PORT}`,
    ]);
    for (const mode of ['enforce', 'audit', 'warn']) {
      assert.equal(ns.metadata.labels?.[`pod-security.kubernetes.io/${mode}`], level, mode);
    }
  });

  it('labels every object and the pods with the recommended app.kubernetes.io labels', (t) => {
    if (!rendered(t)) return;
    const ds = one<Workload>(base, 'DaemonSet');
    const labelled = [
      ...base.map((o) => ({ where: o.where, labels: o.obj.metadata.labels })),
      { where: 'pod template', labels: ds.spec.template.metadata.labels },
    ];
    for (const { where, labels } of labelled) {
      for (const l of RECOMMENDED_LABELS) assert.ok(labels?.[l], `${where}: ${l}`);
      assert.equal(labels?.['app.kubernetes.io/version'], pkg.version, `${where}: version`);
    }
    assert.equal(ds.spec.template.spec.containers[0]!.image.split(':').at(-1), pkg.version, 'image tag');
  });

  it('selects by name and instance only, and every selector finds its target', (t) => {
    if (!rendered(t)) return;
    const ds = one<Workload>(base, 'DaemonSet');
    const svc = one(base, 'Service') as K8sObject & {
      spec: { selector: Record<string, string>; ports: { name: string; targetPort: string }[] };
    };
    const sm = one(base, 'ServiceMonitor') as K8sObject & {
      spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string }[] };
    };
    // selectors are immutable on a DaemonSet: a version in them would block every upgrade
    for (const sel of [ds.spec.selector.matchLabels, svc.spec.selector, sm.spec.selector.matchLabels]) {
      assert.deepEqual(Object.keys(sel).sort(), [...SELECTOR_LABELS].sort());
    }
    assert.ok(matches(ds.spec.selector.matchLabels, ds.spec.template.metadata.labels), 'DaemonSet → pods');
    assert.ok(matches(svc.spec.selector, ds.spec.template.metadata.labels), 'Service → pods');
    assert.ok(matches(sm.spec.selector.matchLabels, svc.metadata.labels), 'ServiceMonitor → Service');
    assert.equal(sm.metadata.namespace, svc.metadata.namespace, 'ServiceMonitor beside its Service');
    const portNames = svc.spec.ports.map((p) => p.name);
    for (const e of sm.spec.endpoints) assert.ok(portNames.includes(e.port), `endpoint port ${e.port}`);
    const containerPorts = ds.spec.template.spec.containers.flatMap((c) => c.ports ?? []).map((p) => p.name);
    for (const p of svc.spec.ports) assert.ok(containerPorts.includes(p.targetPort), p.targetPort);
  });

  it('runs with seccomp RuntimeDefault, NET_ADMIN for the exporter only, no privilege escalation, read-only root', (t) => {
    if (!rendered(t)) return;
    const pod = one<Workload>(base, 'DaemonSet').spec.template.spec;
    assert.equal(pod.hostNetwork, true);
    assert.equal(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault');
    assert.deepEqual(
      pod.containers.map((c) => c.name),
      ['conntrack-exporter', 'kube-rbac-proxy'],
    );
    for (const c of pod.containers) {
      const sc = c.securityContext;
      const exporter = c.name === 'conntrack-exporter';
      assert.deepEqual(
        sc?.capabilities,
        exporter ? { drop: ['ALL'], add: ['NET_ADMIN'] } : { drop: ['ALL'] },
        c.name,
      );
      // root only where a capability needs it
      assert.equal(sc?.runAsNonRoot, !exporter, c.name);
      assert.equal(sc?.allowPrivilegeEscalation, false, c.name);
      assert.equal(sc?.readOnlyRootFilesystem, true, c.name);
      assert.notEqual(sc?.privileged, true, c.name);
      assert.notEqual(sc?.seccompProfile?.type, 'Unconfined', c.name);
    }
  });

  it('a system-* priority class comes with the ResourceQuota that GKE requires outside kube-system', (t) => {
    if (!rendered(t)) return;
    const pc = one<Workload>(base, 'DaemonSet').spec.template.spec.priorityClassName;
    if (pc === undefined || !pc.startsWith('system-')) return;
    type Quota = K8sObject & {
      spec: {
        scopeSelector?: { matchExpressions: { scopeName: string; operator: string; values: string[] }[] };
      };
    };
    const quotas = only(base, 'ResourceQuota') as Quota[];
    assert.ok(
      quotas.some((q) =>
        q.spec.scopeSelector?.matchExpressions.some(
          (e) => e.scopeName === 'PriorityClass' && e.operator === 'In' && e.values.includes(pc),
        ),
      ),
      `a ResourceQuota scoped to PriorityClass In [${pc}]`,
    );
  });

  it('the kube-prometheus-stack overlay adds release= to the ServiceMonitor and PrometheusRule only', (t) => {
    if (!rendered(t)) return;
    assert.equal(kps.length, base.length);
    for (const [i, { where, obj }] of kps.entries()) {
      const expected = structuredClone(base[i]!.obj);
      if (obj.kind === 'ServiceMonitor' || obj.kind === 'PrometheusRule') {
        expected.metadata.labels = { ...expected.metadata.labels, release: 'kube-prometheus-stack' };
      }
      assert.deepEqual(obj, expected, where);
    }
  });
});

describe('deployment files agree with the code', () => {
  const dockerfile = read('Dockerfile');
  const ds = readObjects(`${K8S}base/daemonset.yaml`, 'daemonset.yaml');
  const pod = one<Workload>(ds, 'DaemonSet').spec.template.spec;
  const container = pod.containers[0]!;
  it('the exporter listens on the default port of the loopback, the node port is the default port', () => {
    assert.deepEqual(parseConfig(container.args ?? []).listen, [{ host: '127.0.0.1', port: DEFAULT_PORT }]);
    assert.deepEqual(
      pod.containers.flatMap((c) =>
        (c.ports ?? []).map((p) => [c.name, p.name, p.containerPort, p.hostPort]),
      ),
      [['kube-rbac-proxy', 'metrics', DEFAULT_PORT, DEFAULT_PORT]],
    );
    const svc = one(readObjects(`${K8S}base/service.yaml`, 'service.yaml'), 'Service') as K8sObject & {
      spec: { ports: { port: number }[] };
    };
    assert.deepEqual(
      svc.spec.ports.map((p) => p.port),
      [DEFAULT_PORT],
    );
  });

  it('the probes ask the server built with its args: alive before the first dump, ready after it', async () => {
    const liveness = container.livenessProbe?.httpGet;
    const readiness = container.readinessProbe?.httpGet;
    assert.ok(liveness && readiness, 'both probes are httpGet');
    const { telemetryPath, listen } = parseConfig(container.args ?? []);
    // The kubelet shares the pod's network namespace (hostNetwork): it connects to host:port.
    for (const probe of [liveness, readiness]) {
      assert.deepEqual({ host: probe.host, port: probe.port }, listen[0], 'the probe reaches the listener');
    }
    // The kubelet sends no credentials: the probes must pass when basic auth guards the rest.
    const users = new Map([['prometheus', bcrypt.hashSync('secret', 4)]]);
    for (const auth of [undefined, new BasicAuth(users)]) {
      let ready = false;
      const app = buildServer({
        telemetryPath,
        version: pkg.version,
        render: async () => '',
        isReady: () => ready,
        auth,
      });
      try {
        const status = async (path: string) => (await app.inject({ url: path })).statusCode;
        const what = auth ? 'with basic auth' : 'without auth';
        // Not ready yet (the table dump runs): not restarted by the kubelet, not sent traffic.
        assert.equal(await status(liveness.path), 200, `liveness ${liveness.path} ${what}, not ready`);
        assert.equal(await status(readiness.path), 503, `readiness ${readiness.path} ${what}, not ready`);
        ready = true;
        assert.equal(await status(liveness.path), 200, `liveness ${liveness.path} ${what}, ready`);
        assert.equal(await status(readiness.path), 200, `readiness ${readiness.path} ${what}, ready`);
      } finally {
        await app.close();
      }
    }
  });

  it('the image runs the built entry point and exposes the default port', () => {
    const entry = /^ENTRYPOINT \["node", "([^"]+)"\]$/m.exec(dockerfile);
    assert.ok(entry, 'ENTRYPOINT');
    assert.ok(existsSync(`${ROOT}${entry[1]}`), `${entry[1]} is built`);
    assert.match(dockerfile, new RegExp(`^EXPOSE ${DEFAULT_PORT}$`, 'm'));
  });

  it('two stages on one pinned node:24 Debian trixie slim base; the runtime stage only copies', () => {
    const base = /^ARG BASE=(\S+)$/m.exec(dockerfile)?.[1];
    assert.match(base ?? '', /^node:(\d+)\.\d+\.\d+-trixie-slim$/, 'a pinned node:<x.y.z>-trixie-slim');
    const major = Number(/^node:(\d+)/.exec(base!)![1]);
    const floor = Number(/(\d+)/.exec(pkg.engines.node)![1]);
    assert.ok(major >= floor && major % 2 === 0, `Node.js ${major}: an LTS line within engines`);
    const stages = dockerfile.split(/^FROM /m).slice(1);
    assert.equal(stages.length, 2);
    assert.match(stages[0]!, /^\$\{BASE\} AS build\n/);
    assert.match(stages[1]!, /^\$\{BASE\}\n/);
    const runtime = stages[1]!;
    assert.doesNotMatch(runtime, /^RUN /m, 'nothing built or installed in the runtime stage');
    const copied = [...runtime.matchAll(/^COPY --from=build (\S+) (\S+)$/gm)].map((m) => m[1]);
    assert.deepEqual(copied, [
      '/src/package.json',
      '/src/node_modules',
      '/src/dist/src',
      '/src/native/build/Release/*.node',
    ]);
    assert.match(stages[0]!, /^RUN npm ci /m);
    assert.match(stages[0]!, /npm prune --omit=dev/);
  });

  it('native addons are copied to where the code loads them from', () => {
    const workdir = /^WORKDIR (\S+)$/gm;
    const dirs = [...dockerfile.matchAll(workdir)].map((m) => m[1]!);
    const app = dirs.at(-1)!;
    const dest = /^COPY --from=build \S+\/native\/build\/Release\/\*\.node (\S+)$/m.exec(dockerfile)?.[1];
    assert.ok(dest, 'addons copied');
    const copiedTo = posix.join(app, dest);
    const loaders = addonLoadDirs(app, 'src');
    assert.ok(loaders.length > 0, 'the code loads an addon from native/build/Release');
    for (const dir of loaders) assert.equal(`${dir}/`, copiedTo);
  });
});
