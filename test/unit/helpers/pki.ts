/**
 * A throwaway PKI made with the `openssl` command in a temporary directory: a CA, a server
 * certificate for 127.0.0.1/localhost, a client certificate from the same CA, and a client
 * certificate from a CA the server does not trust. P-256 keys: fast to make.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function openssl(cwd: string, args: string[]): void {
  const res = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (res.error) throw res.error;
  if (res.status !== 0) throw new Error(`openssl ${args.join(' ')} exited ${res.status}: ${res.stderr}`);
}

/** `openssl req -x509`: a new P-256 key NAME.key and a certificate NAME.crt for CN, valid two days. */
function certificate(dir: string, name: string, cn: string, more: string[]): void {
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`];
  openssl(dir, ['req', '-x509', ...key, '-out', `${name}.crt`, '-subj', `/CN=${cn}`, '-days', '2', ...more]);
}

export class Pki {
  readonly dir = mkdtempSync(join(tmpdir(), 'ctx-pki-'));
  private serial = 0;

  constructor() {
    this.ca('ca');
    this.ca('other-ca');
    this.issue('server', 'ca', [
      'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost',
      'extendedKeyUsage=serverAuth',
    ]);
    this.issue('client', 'ca', ['extendedKeyUsage=clientAuth']);
    this.issue('stranger', 'other-ca', ['extendedKeyUsage=clientAuth']);
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  /** A self-signed CA: NAME.crt and NAME.key. */
  ca(name: string): void {
    certificate(this.dir, name, name, [
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
  }

  /** A leaf certificate NAME.crt/NAME.key signed by CA; the common name says which issue it is. */
  issue(name: string, ca: string, extensions: string[], dir = this.dir): string {
    const cn = `${name}-${++this.serial}`;
    certificate(dir, name, cn, [
      '-CA',
      join(this.dir, `${ca}.crt`),
      '-CAkey',
      join(this.dir, `${ca}.key`),
      ...extensions.flatMap((e) => ['-addext', e]),
    ]);
    return cn;
  }

  /** Writes a file into the PKI directory (web configs, garbage). */
  write(name: string, text: string): string {
    writeFileSync(this.path(name), text);
    return this.path(name);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
