/**
 * Kubernetes objects for the manifest tests: read from YAML, rendered by kustomize, checked
 * against the API schemas of `kubernetes-models` and `@kubernetes-models/prometheus-operator`.
 *
 * Their JSON-schema validators check types, required fields, enums and formats, but accept any
 * unknown field (the schemas allow additional properties), so a misspelled field would pass.
 * The API types those packages also ship close that gap: every object is type-checked by tsc as
 * an object literal of its kind's interface, where an unknown field is an excess-property error.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { TestContext } from 'node:test';
import type { Model } from '@kubernetes-models/base';
import {
  PrometheusRule,
  ServiceMonitor,
} from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { DaemonSet } from 'kubernetes-models/apps/v1';
import { ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { Namespace, ResourceQuota, Service, ServiceAccount } from 'kubernetes-models/v1';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../../paths.js';

/** The kustomize tree. */
export const K8S = `${ROOT}deploy/kubernetes/`;

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
}

/** Where an object came from (file or rendering) and the object. */
export interface Located {
  where: string;
  obj: K8sObject;
}

interface Kind {
  model: new (data: never) => Model<unknown>;
  /** Module and interface of its API type, for the type check. */
  types: [string, string];
}

/** Every kind we ship. An object of any other kind fails the tests: add it here first. */
export const KINDS: Record<string, Kind> = {
  'v1/Namespace': { model: Namespace, types: ['kubernetes-models/v1/Namespace', 'INamespace'] },
  'v1/ResourceQuota': {
    model: ResourceQuota,
    types: ['kubernetes-models/v1/ResourceQuota', 'IResourceQuota'],
  },
  'v1/Service': { model: Service, types: ['kubernetes-models/v1/Service', 'IService'] },
  'v1/ServiceAccount': {
    model: ServiceAccount,
    types: ['kubernetes-models/v1/ServiceAccount', 'IServiceAccount'],
  },
  'rbac.authorization.k8s.io/v1/ClusterRole': {
    model: ClusterRole,
    types: ['kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole', 'IClusterRole'],
  },
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': {
    model: ClusterRoleBinding,
    types: ['kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding', 'IClusterRoleBinding'],
  },
  'apps/v1/DaemonSet': { model: DaemonSet, types: ['kubernetes-models/apps/v1/DaemonSet', 'IDaemonSet'] },
  'monitoring.coreos.com/v1/ServiceMonitor': {
    model: ServiceMonitor,
    types: [
      '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor',
      'IServiceMonitor',
    ],
  },
  'monitoring.coreos.com/v1/PrometheusRule': {
    model: PrometheusRule,
    types: [
      '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule',
      'IPrometheusRule',
    ],
  },
};

const kindOf = (o: K8sObject) => `${o.apiVersion}/${o.kind}`;

export function parseObjects(text: string, where: string): Located[] {
  return parseAllDocuments(text).flatMap((doc, i) => {
    if (doc.errors.length > 0) throw new Error(`${where} document ${i}: ${doc.errors[0]!.message}`);
    const obj = doc.toJS() as K8sObject | null;
    return obj === null ? [] : [{ where: `${where} (${obj.kind} ${obj.metadata?.name})`, obj }];
  });
}

export function readObjects(path: string, where: string): Located[] {
  return parseObjects(readFileSync(path, 'utf8'), where);
}

/** The JSON-schema validation of the object's kind; returns the problem, or undefined. */
export function schemaProblem({ obj }: Located): string | undefined {
  const kind = KINDS[kindOf(obj)];
  if (!kind) return `no schema known for ${kindOf(obj)}`;
  try {
    new kind.model(obj as never).validate();
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/**
 * Type-checks every object as a literal of its kind's API interface; returns tsc's messages, each
 * prefixed with the object's origin. Types are checked in memory: nothing is written.
 */
export function typeProblems(objects: Located[], root: string): string[] {
  const imports: string[] = [];
  const lines: string[] = [];
  const lineOwner: string[] = [];
  const aliases = new Map<string, string>();
  for (const { where, obj } of objects) {
    const kind = KINDS[kindOf(obj)];
    if (!kind) return [`${where}: no API type known for ${kindOf(obj)}`];
    const key = kind.types.join('#');
    let alias = aliases.get(key);
    if (alias === undefined) {
      alias = `T${aliases.size}`;
      aliases.set(key, alias);
      imports.push(`import type { ${kind.types[1]} as ${alias} } from '${kind.types[0]}';`);
    }
    lines.push(`export const o${lines.length}: ${alias} = ${JSON.stringify(obj)};`);
    lineOwner.push(where);
  }
  const source = [...imports, ...lines].join('\n');
  const file = `${root}manifest-types.check.ts`;
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, lang, ...rest) =>
    name === file ? ts.createSourceFile(name, source, lang) : getSourceFile.call(host, name, lang, ...rest);
  host.fileExists = (name) => name === file || fileExists.call(host, name);
  host.readFile = (name) => (name === file ? source : readFile.call(host, name));
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (d.file?.fileName !== file || d.start === undefined) return text;
    const line = d.file.getLineAndCharacterOfPosition(d.start).line - imports.length;
    return `${lineOwner[line] ?? 'imports'}: ${text}`;
  });
}

export type Renderer = { cmd: string; args: (dir: string) => string[]; version: string };

/**
 * `kubectl kustomize`, or a standalone `kustomize build`, if either is installed with kustomize
 * v4 or newer (components need 3.7; Debian's kubernetes-client 1.20 embeds 2.0.3). Otherwise
 * the reason it is missing.
 */
export function findKustomize(): Renderer | string {
  const kubectl = spawnSync('kubectl', ['version', '--client', '-o', 'json'], { encoding: 'utf8' });
  if (kubectl.status === 0) {
    const v = (JSON.parse(kubectl.stdout) as { kustomizeVersion?: string }).kustomizeVersion ?? '';
    if (/^v([4-9]|\d\d)\./.test(v)) return { cmd: 'kubectl', args: (d) => ['kustomize', d], version: v };
  }
  const standalone = spawnSync('kustomize', ['version'], { encoding: 'utf8' });
  if (standalone.status === 0 && /v([4-9]|\d\d)\./.test(standalone.stdout)) {
    return { cmd: 'kustomize', args: (d) => ['build', d], version: standalone.stdout.trim() };
  }
  return 'neither `kubectl` with kustomize v4+ nor `kustomize` v4+ is installed';
}

/**
 * The renderer, or undefined after skipping the test (failing it under CI=true) when none is
 * installed.
 */
export function rendererFor(t: TestContext): Renderer | undefined {
  const r = findKustomize();
  if (typeof r !== 'string') return r;
  if (process.env['CI'] === 'true') assert.fail(`CI=true and ${r}`);
  t.skip(r);
  return undefined;
}

export function render(r: Renderer, dir: string): Located[] {
  const res = spawnSync(r.cmd, r.args(dir), { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`${r.cmd} ${r.args(dir).join(' ')}: ${res.stderr}`);
  return parseObjects(res.stdout, `rendered ${dir}`);
}

/**
 * Renders an overlay of our own, as an operator would write one: `resources` and `components`
 * are paths under deploy/kubernetes (kustomize wants them relative to the overlay).
 */
export function renderComposed(r: Renderer, resources: string[], components: string[]): Located[] {
  const dir = mkdtempSync(join(tmpdir(), 'ctx-kustomize-'));
  try {
    const rel = relative(dir, K8S);
    const list = (key: string, paths: string[]) =>
      paths.length === 0 ? '' : `${key}:\n${paths.map((p) => `  - ${rel}/${p}\n`).join('')}`;
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n${list('resources', resources)}${list('components', components)}`,
    );
    return render(r, dir).map((o) => ({
      ...o,
      where: o.where.replace(dir, [...resources, ...components].join('+')),
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The kubelet's expansion of $(VAR) in a container's args, from the given values. */
export function expandArgs(args: readonly string[], env: Readonly<Record<string, string>>): string[] {
  return args.map((a) =>
    a.replace(/\$\((\w+)\)/g, (m, name: string) => {
      if (!(name in env)) throw new Error(`${a}: no value for ${m}`);
      return env[name]!;
    }),
  );
}
