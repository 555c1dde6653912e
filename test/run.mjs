// The README's test command ends here (after `npm run build` and lint, see package.json "pretest").
// Unit tests always run. Kernel tests need root, iproute2, nftables and conntrack-tools; without
// them they are skipped with the reason, except under CI=true where a skip is a failure.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const inCI = process.env.CI === 'true';
const missing = [];
if (process.getuid?.() !== 0)
  missing.push(
    'not running as root (network namespaces need CAP_SYS_ADMIN/CAP_NET_ADMIN): run `sudo npm test`',
  );
for (const [tool, pkg] of [
  ['ip', 'iproute2'],
  ['nft', 'nftables'],
  ['conntrack', 'conntrack'],
  ['ping', 'iputils-ping'],
  ['promtool', 'prometheus'],
]) {
  const found = spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
  if (!found) missing.push(`\`${tool}\` not found: apt-get install ${pkg}`);
}
if (missing.length === 0) {
  const probe = `ctx-probe-${process.pid}`;
  const ok = spawnSync('ip', ['netns', 'add', probe], { stdio: 'ignore' }).status === 0;
  spawnSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
  if (!ok) missing.push('`ip netns add` failed: the kernel tests need to create network namespaces');
}

const suites = ['dist/test/unit'];
if (existsSync('dist/test/dashboards')) suites.push('dist/test/dashboards');

// The image test (test/image) builds the Dockerfile with podman and runs the image: a few minutes,
// so it runs under CI=true or when asked for with CONNTRACK_TEST_IMAGE=1.
const imageWanted = inCI || process.env.CONNTRACK_TEST_IMAGE === '1';
if (imageWanted) {
  for (const [tool, pkg] of [
    ['podman', 'podman'],
    ['runc', 'runc'],
    ['mmdebstrap', 'mmdebstrap'],
    ['newuidmap', 'uidmap'],
  ]) {
    const found = spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
    if (!found) missing.push(`\`${tool}\` not found (image test): apt-get install ${pkg}`);
  }
}
if (missing.length > 0) {
  const why = missing.map((m) => `  - ${m}`).join('\n');
  if (inCI) {
    console.error(`CI=true and the kernel integration tests cannot run:\n${why}`);
    process.exit(1);
  }
  console.warn(
    `SKIPPING kernel integration tests (dist/test/integration${imageWanted ? ', dist/test/image' : ''}):\n${why}\n` +
      'Fix the above (or run `bash .ci/run` as root on Debian) to run them.',
  );
} else {
  suites.push('dist/test/integration');
  if (imageWanted) suites.push('dist/test/image');
}

// One process, one closing summary; concurrency 1 because some kernel tests change global sysctls.
// Node 22+ reads test arguments as globs, not directories.
const globs = suites.map((dir) => `${dir}/**/*.test.js`);
const res = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...globs], { stdio: 'inherit' });
process.exit(res.status ?? 1);
