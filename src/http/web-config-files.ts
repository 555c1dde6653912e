/**
 * The web config's files, read from disk: the config itself and the certificates it names, each
 * checked by OpenSSL at start-up (and on every change on disk) so a bad one is named, not found
 * by the first client. web-config.ts parses; this reads.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import {
  type PemSource,
  parseWebConfig,
  type TlsServerConfig,
  type WebConfig,
  WebConfigError,
} from './web-config.js';

/** Certificate, key and client CA as PEM text, read now. */
export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ca: string | undefined;
}

function readPem(file: string, src: PemSource): string {
  if ('text' in src) return src.text;
  try {
    return readFileSync(src.file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new WebConfigError(file, src.key, `cannot read ${src.file} (${code})`, err);
  }
}

/**
 * Reads the certificate, key and client CA and checks that OpenSSL takes them (the key belongs
 * to the certificate, the CA file holds certificates). Used at start-up and on every change on
 * disk; a WebConfigError names the key whose file is at fault.
 */
export function loadTlsMaterial(config: WebConfig): TlsMaterial {
  const t = config.tls;
  if (t === undefined) throw new WebConfigError(config.file, 'tls_server_config', 'TLS is not configured');
  const material = {
    cert: readPem(config.file, t.cert),
    key: readPem(config.file, t.key),
    ca: t.clientCa && readPem(config.file, t.clientCa),
  };
  const check = (src: PemSource, what: string, options: SecureContextOptions): void => {
    try {
      createSecureContext(options);
    } catch (err) {
      throw new WebConfigError(
        config.file,
        src.key,
        `${what} (${err instanceof Error ? err.message : String(err)})`,
        err,
      );
    }
  };
  check(t.cert, 'is not a PEM certificate', { cert: material.cert });
  check(t.key, 'is not a PEM private key', { key: material.key });
  check(t.key, `does not belong to the certificate of ${t.cert.key}`, {
    cert: material.cert,
    key: material.key,
  });
  if (t.clientCa && material.ca !== undefined) {
    const blocks = material.ca.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0)
      throw new WebConfigError(config.file, t.clientCa.key, 'holds no PEM certificate');
    for (const pem of blocks) {
      try {
        new X509Certificate(pem);
      } catch (err) {
        throw new WebConfigError(config.file, t.clientCa.key, 'holds a certificate that does not parse', err);
      }
    }
  }
  return material;
}

/** What tls.createSecureContext / server.setSecureContext take, for this config and material. */
export function secureContextOptions(t: TlsServerConfig, m: TlsMaterial): SecureContextOptions {
  const o: SecureContextOptions = {
    cert: m.cert,
    key: m.key,
    minVersion: t.minVersion,
    maxVersion: t.maxVersion,
    honorCipherOrder: t.honorCipherOrder,
  };
  if (m.ca !== undefined) o.ca = m.ca;
  if (t.ciphers !== undefined) o.ciphers = t.ciphers;
  if (t.ecdhCurve !== undefined) o.ecdhCurve = t.ecdhCurve;
  return o;
}

/**
 * Reads, parses and checks the file and its certificates: everything that can be wrong is found
 * here, at start-up, and named.
 */
export function loadWebConfig(file: string): WebConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new WebConfigError(file, '(file)', `cannot read it (${code})`, err);
  }
  const config = parseWebConfig(text, file);
  if (config.tls) {
    const material = loadTlsMaterial(config);
    const t = config.tls;
    const check = (key: string, options: SecureContextOptions): void => {
      try {
        createSecureContext(options);
      } catch (err) {
        throw new WebConfigError(
          file,
          key,
          `refused by OpenSSL (${err instanceof Error ? err.message : String(err)})`,
          err,
        );
      }
    };
    if (t.ciphers !== undefined) check('tls_server_config.cipher_suites', { ciphers: t.ciphers });
    if (t.ecdhCurve !== undefined) check('tls_server_config.curve_preferences', { ecdhCurve: t.ecdhCurve });
    check('tls_server_config', secureContextOptions(t, material));
  }
  return config;
}
