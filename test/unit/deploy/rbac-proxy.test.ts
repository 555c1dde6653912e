/**
 * The default deployment (deploy/kubernetes/base): the exporter on the node's loopback only,
 * kube-rbac-proxy on the node's address in front of it, Prometheus let in by its service account
 * token, and RBAC that grants exactly what the proxy asks the API server.
 */
import assert from 'node:assert/strict';
import { before, describe, it, type TestContext } from 'node:test';
import { parseConfig } from '../../../src/config.js';
import { findKustomize, K8S, type K8sObject, type Located, render, rendererFor } from './k8s.js';

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number; hostPort?: number; hostIP?: string }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; capabilities?: { add?: string[] } };
}
interface Volume {
  name: string;
  projected?: { sources: { serviceAccountToken?: { path: string; audience?: string } }[] };
}
interface PodSpec {
  hostNetwork?: boolean;
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  containers: Container[];
  volumes?: Volume[];
}
type DaemonSet = K8sObject & { spec: { template: { spec: PodSpec } } };
interface Rule {
  apiGroups?: string[];
  resources?: string[];
  nonResourceURLs?: string[];
  verbs: string[];
}
type Role = K8sObject & { rules: Rule[] };
type Binding = K8sObject & {
  roleRef: { kind: string; name: string };
  subjects: { kind: string; name: string; namespace?: string }[];
};
interface Endpoint {
  port: string;
  path?: string;
  scheme?: string;
  bearerTokenFile?: string;
  authorization?: unknown;
  tlsConfig?: { insecureSkipVerify?: boolean; ca?: unknown };
}

const TOKEN_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** Flags of the proxy that would serve without authentication. */
const UNAUTHENTICATED_PROXY_FLAGS = ['--ignore-paths', '--insecure-listen-address'];

const flag = (args: readonly string[] | undefined, name: string): string | undefined =>
  args?.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);

describe('the default: kube-rbac-proxy in front of the exporter', () => {
  let objects: Located[] | undefined;
  before(() => {
    const r = findKustomize();
    if (typeof r !== 'string') objects = render(r, `${K8S}base`);
  });
  /** The rendered base, or undefined after skipping (failing under CI=true) without kustomize. */
  const base = (t: TestContext): Located[] | undefined => {
    if (!objects) rendererFor(t);
    return objects;
  };
  const all = (objs: Located[], kind: string) => objs.filter((o) => o.obj.kind === kind).map((o) => o.obj);
  const named = <T extends K8sObject>(objs: Located[], kind: string, name: string): T => {
    const found = all(objs, kind).filter((o) => o.metadata.name === name);
    assert.equal(found.length, 1, `one ${kind} ${name}`);
    return found[0] as T;
  };
  const pod = (objs: Located[]) =>
    named<DaemonSet>(objs, 'DaemonSet', 'conntrack-exporter').spec.template.spec;
  const container = (objs: Located[], name: string) => {
    const c = pod(objs).containers.find((x) => x.name === name);
    assert.ok(c, `container ${name}`);
    return c;
  };

  it('the exporter listens on the loopback only, and declares no port', (t) => {
    const objs = base(t);
    if (!objs) return;
    const exporter = container(objs, 'conntrack-exporter');
    const { listen } = parseConfig(exporter.args ?? []);
    assert.ok(listen.length > 0);
    for (const l of listen) assert.equal(l.host, '127.0.0.1', `${l.host}:${l.port}`);
    assert.equal(exporter.ports, undefined, 'a declared port would be a hostPort (hostNetwork)');
  });

  it("the only port on the node's address is the proxy's HTTPS, forwarded to the exporter's loopback", (t) => {
    const objs = base(t);
    if (!objs) return;
    const spec = pod(objs);
    assert.equal(spec.hostNetwork, true);
    const nodePorts = spec.containers.flatMap((c) =>
      (c.ports ?? []).map((p) => ({ container: c.name, name: p.name, port: p.hostPort ?? p.containerPort })),
    );
    const exporter = parseConfig(container(objs, 'conntrack-exporter').args ?? []);
    const listen = exporter.listen[0]!;
    assert.deepEqual(nodePorts, [{ container: 'kube-rbac-proxy', name: 'metrics', port: listen.port }]);

    const proxy = container(objs, 'kube-rbac-proxy');
    // the node's own address (the pod IP under hostNetwork), never all addresses
    assert.equal(flag(proxy.args, '--secure-listen-address'), `[$(IP)]:${listen.port}`);
    const ip = proxy.env?.find((e) => e.name === 'IP');
    assert.equal(ip?.valueFrom?.fieldRef?.fieldPath, 'status.podIP');
    assert.equal(flag(proxy.args, '--upstream'), `http://${listen.host}:${listen.port}/`);
    assert.equal(flag(proxy.args, '--allow-paths'), exporter.telemetryPath, 'the metrics and nothing else');
    for (const f of UNAUTHENTICATED_PROXY_FLAGS) {
      assert.equal(flag(proxy.args, f), undefined, `${f}: a path or port without authentication`);
    }
    assert.equal(flag(proxy.args, '--tls-min-version'), 'VersionTLS13');
  });

  it('the ServiceMonitor scrapes the proxy over https with Prometheus’s service account token', (t) => {
    const objs = base(t);
    if (!objs) return;
    const sm = named<K8sObject & { spec: { endpoints: Endpoint[] } }>(
      objs,
      'ServiceMonitor',
      'conntrack-exporter',
    );
    const svc = named<K8sObject & { spec: { ports: { name: string; targetPort: string }[] } }>(
      objs,
      'Service',
      'conntrack-exporter',
    );
    const proxyPorts = (container(objs, 'kube-rbac-proxy').ports ?? []).map((p) => p.name);
    const { telemetryPath } = parseConfig(container(objs, 'conntrack-exporter').args ?? []);
    assert.equal(sm.spec.endpoints.length, 1);
    for (const e of sm.spec.endpoints) {
      const target = svc.spec.ports.find((p) => p.name === e.port)?.targetPort;
      assert.ok(target && proxyPorts.includes(target), `endpoint ${e.port} → the proxy's port`);
      assert.equal(e.scheme?.toLowerCase(), 'https');
      assert.equal(e.bearerTokenFile, `${TOKEN_DIR}/token`, "Prometheus's own token");
      assert.equal(e.path ?? '/metrics', telemetryPath);
      // the proxy's certificate is self-signed at each start: nothing to verify it against
      assert.equal(e.tlsConfig?.insecureSkipVerify, true);
    }
  });

  it('RBAC: the proxy may create TokenReviews and SubjectAccessReviews, nothing else', (t) => {
    const objs = base(t);
    if (!objs) return;
    const spec = pod(objs);
    const ns = objs.find((o) => o.obj.kind === 'Namespace')!.obj.metadata.name;
    const sa = named<K8sObject & { automountServiceAccountToken?: boolean }>(
      objs,
      'ServiceAccount',
      spec.serviceAccountName!,
    );
    assert.equal(sa.metadata.namespace, ns);
    assert.equal(sa.automountServiceAccountToken, false);

    const bindings = [...all(objs, 'ClusterRoleBinding'), ...all(objs, 'RoleBinding')] as Binding[];
    const ofAccount = bindings.filter((b) =>
      b.subjects.some((s) => s.kind === 'ServiceAccount' && s.name === sa.metadata.name),
    );
    assert.equal(ofAccount.length, 1, 'one binding for the pods’ account');
    const binding = ofAccount[0]!;
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: ns }]);
    assert.equal(binding.roleRef.kind, 'ClusterRole');
    const role = named<Role>(objs, 'ClusterRole', binding.roleRef.name);
    assert.deepEqual(role.rules, [
      { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
      { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
    ]);
    assert.deepEqual(all(objs, 'Role'), [], 'no namespaced grants');
  });

  it('a ClusterRole for Prometheus grants get on the telemetry path only, bound to no one', (t) => {
    const objs = base(t);
    if (!objs) return;
    const { telemetryPath } = parseConfig(container(objs, 'conntrack-exporter').args ?? []);
    const reader = named<Role>(objs, 'ClusterRole', 'conntrack-exporter-metrics-reader');
    // what the proxy's SubjectAccessReview asks: verb get, non-resource URL = the request's path
    assert.deepEqual(reader.rules, [{ nonResourceURLs: [telemetryPath], verbs: ['get'] }]);
    const bound = (all(objs, 'ClusterRoleBinding') as Binding[]).filter(
      (b) => b.roleRef.name === reader.metadata.name,
    );
    assert.deepEqual(bound, [], "the operator binds it to their Prometheus's account");
  });

  it('only the proxy gets an API token', (t) => {
    const objs = base(t);
    if (!objs) return;
    const spec = pod(objs);
    assert.equal(spec.automountServiceAccountToken, false, 'no token in every container');
    const tokenVolumes = (spec.volumes ?? [])
      .filter((v) => v.projected?.sources.some((s) => s.serviceAccountToken))
      .map((v) => v.name);
    assert.equal(tokenVolumes.length, 1);
    const mounts = spec.containers.flatMap((c) =>
      (c.volumeMounts ?? [])
        .filter((m) => tokenVolumes.includes(m.name))
        .map((m) => [c.name, m.mountPath, m.readOnly]),
    );
    // where client-go's in-cluster config reads it
    assert.deepEqual(mounts, [['kube-rbac-proxy', TOKEN_DIR, true]]);
    for (const c of spec.containers) {
      if (c.name === 'kube-rbac-proxy') continue;
      assert.ok(!(c.volumeMounts ?? []).some((m) => m.mountPath.startsWith(TOKEN_DIR)), c.name);
    }
  });

  it('the proxy image is pinned by tag and digest; it runs unprivileged, with requests and a memory limit', (t) => {
    const objs = base(t);
    if (!objs) return;
    const proxy = container(objs, 'kube-rbac-proxy');
    assert.match(proxy.image, /^quay\.io\/brancz\/kube-rbac-proxy:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}$/);
    assert.equal(proxy.securityContext?.runAsNonRoot, true);
    assert.notEqual(proxy.securityContext?.runAsUser, 0);
    assert.equal(proxy.securityContext?.capabilities?.add, undefined);
    assert.ok(proxy.resources?.requests?.['cpu'] && proxy.resources.requests['memory'], 'requests');
    assert.ok(proxy.resources?.limits?.['memory'], 'a memory limit');
  });
});
