/**
 * `--web.config.file`: TLS, basic authentication and response headers in the format of the
 * Prometheus exporter-toolkit (docs/web-configuration.md), so one file serves node_exporter and
 * this exporter alike. Parsed and checked once at start-up: an unknown key, a bad value, a bcrypt
 * hash that is not one or a certificate that cannot be read stops start-up with a WebConfigError
 * naming the file and the key (exit code 2, as a bad flag). Relative paths are relative to the
 * file's directory, as in exporter-toolkit.
 *
 * Beyond exporter-toolkit, refused at start-up rather than accepted and regretted: a bcrypt cost
 * above MAX_BCRYPT_COST (a login would stall every other), a `rate_limit` that admits nothing or
 * whose interval has no unit, an empty `client_allowed_sans` (no client could connect).
 * `http_server_config.http2` is accepted for compatibility; the exporter speaks HTTP/1.1.
 */
import { dirname, resolve } from 'node:path';
import type { SecureVersion } from 'node:tls';
import { LineCounter, parseDocument } from 'yaml';
import { ConntrackError } from '../errors.js';
import { bcryptCost } from './basic-auth.js';

const CLIENT_AUTH_TYPES = [
  'NoClientCert',
  'RequestClientCert',
  'RequireAnyClientCert',
  'VerifyClientCertIfGiven',
  'RequireAndVerifyClientCert',
] as const;
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

/** exporter-toolkit (Go) version names -> Node's. */
const TLS_VERSIONS: Readonly<Record<string, SecureVersion>> = {
  TLS10: 'TLSv1',
  TLS11: 'TLSv1.1',
  TLS12: 'TLSv1.2',
  TLS13: 'TLSv1.3',
};
const VERSION_ORDER: readonly SecureVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/**
 * Go's crypto/tls names (tls.CipherSuites(), the ones exporter-toolkit accepts) -> OpenSSL's.
 * TLS 1.3 suites have the same name in both; unlike Go, listing them restricts TLS 1.3 too.
 */
const CIPHER_SUITES: Readonly<Record<string, string>> = {
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_AES_128_GCM_SHA256: 'TLS_AES_128_GCM_SHA256',
  TLS_AES_256_GCM_SHA384: 'TLS_AES_256_GCM_SHA384',
  TLS_CHACHA20_POLY1305_SHA256: 'TLS_CHACHA20_POLY1305_SHA256',
};

/** exporter-toolkit's curve names -> OpenSSL group names. */
const CURVES: Readonly<Record<string, string>> = {
  CurveP256: 'P-256',
  CurveP384: 'P-384',
  CurveP521: 'P-521',
  X25519: 'X25519',
};

/** exporter-toolkit's settable headers; an empty list means any value. */
const HEADERS: Readonly<Record<string, readonly string[]>> = {
  'Strict-Transport-Security': [],
  'X-Content-Type-Options': ['nosniff'],
  'X-Frame-Options': ['deny', 'sameorigin'],
  'X-XSS-Protection': [],
  'Content-Security-Policy': [],
};

/** bcrypt in modular crypt format: $2a$, $2b$ or $2y$, cost 04-31, 22 chars salt + 31 hash. */
const BCRYPT = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;
/**
 * The highest bcrypt cost accepted. Each step doubles the time: bcryptjs takes about 1.2 s at 14
 * on this project's VM (77 ms at 10), and checks run one at a time, so a first login (and the
 * decoy check of every unknown user) must stay well inside Prometheus' 10 s scrape timeout.
 */
export const MAX_BCRYPT_COST = 14;

/** Go's time.ParseDuration units, in milliseconds. */
const GO_DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** A PEM source: a file (re-read when it changes) or text inline in the web config. */
export type PemSource =
  | { readonly file: string; readonly key: string }
  | { readonly text: string; readonly key: string };

export interface TlsServerConfig {
  readonly cert: PemSource;
  readonly key: PemSource;
  readonly clientCa: PemSource | undefined;
  readonly clientAuthType: ClientAuthType;
  readonly minVersion: SecureVersion;
  readonly maxVersion: SecureVersion;
  /** OpenSSL cipher list, or undefined for Node's default. */
  readonly ciphers: string | undefined;
  /** OpenSSL group list, or undefined for Node's default. */
  readonly ecdhCurve: string | undefined;
  /** prefer_server_cipher_suites. */
  readonly honorCipherOrder: boolean;
  /** client_allowed_sans: the client certificate must carry one of these; undefined: any. */
  readonly clientAllowedSans: readonly string[] | undefined;
}

/** exporter-toolkit's rate_limit: a token bucket over all requests. */
export interface RateLimit {
  /** One request more is allowed every this many milliseconds... */
  readonly intervalMs: number;
  /** ...and this many at once. */
  readonly burst: number;
}

export interface WebConfig {
  readonly file: string;
  /** undefined: plain HTTP. */
  readonly tls: TlsServerConfig | undefined;
  /** User -> bcrypt hash; empty: no authentication. */
  readonly users: ReadonlyMap<string, string>;
  /** Added to every response. */
  readonly headers: Readonly<Record<string, string>>;
  /** undefined: no rate limit (absent, or interval 0). */
  readonly rateLimit: RateLimit | undefined;
}

/** A mistake in the web config file; `key` is the dotted path of the offending key. */
export class WebConfigError extends ConntrackError {
  readonly file: string;
  readonly key: string;
  constructor(file: string, key: string, message: string, cause?: unknown) {
    super('CT_ERR_CONFIG', `--web.config.file=${file}: ${key}: ${message}`, { cause });
    this.file = file;
    this.key = key;
  }
}

type Plain = string | number | boolean | null | Plain[] | { [k: string]: Plain };

class Reader {
  constructor(readonly file: string) {}

  fail(key: string, message: string, cause?: unknown): never {
    throw new WebConfigError(this.file, key, message, cause);
  }

  /** A mapping with only the allowed keys (null or absent: empty). */
  object(key: string, value: Plain | undefined, allowed: readonly string[]): Record<string, Plain> {
    if (value === undefined || value === null) return {};
    if (typeof value !== 'object' || Array.isArray(value))
      this.fail(key || '(document)', 'must be a mapping');
    for (const k of Object.keys(value)) {
      if (!allowed.includes(k)) {
        this.fail(key === '' ? k : `${key}.${k}`, `unknown key (known here: ${allowed.join(', ')})`);
      }
    }
    return value;
  }

  string(key: string, value: Plain | undefined): string | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') this.fail(key, 'must be a string');
    return value;
  }

  boolean(key: string, value: Plain | undefined, fallback: boolean): boolean {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean') this.fail(key, 'must be true or false');
    return value;
  }

  list(key: string, value: Plain | undefined): string[] {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) this.fail(key, 'must be a list');
    return value.map((v, i) => this.string(`${key}[${i}]`, v) ?? this.fail(`${key}[${i}]`, 'is empty'));
  }

  oneOf<T extends string>(key: string, value: string, allowed: readonly T[]): T {
    if (!(allowed as readonly string[]).includes(value)) {
      this.fail(key, `"${value}" is not one of ${allowed.join(', ')}`);
    }
    return value as T;
  }
}

/** YAML text -> plain values; syntax errors and duplicate keys name their line. */
function parseYaml(text: string, r: Reader): Plain | undefined {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const err = doc.errors[0];
  if (err) {
    const { line, col } = lines.linePos(err.pos[0]);
    r.fail(`line ${line}:${col}`, `not valid YAML: ${err.message.split('\n')[0]}`);
  }
  try {
    // Aliases are a YAML feature nobody needs here, and the way to blow up a parser.
    return doc.toJS({ maxAliasCount: 0 }) as Plain | undefined;
  } catch (err) {
    return r.fail('(document)', `not usable: ${err instanceof Error ? err.message : String(err)}`, err);
  }
}

function pemSource(
  r: Reader,
  dir: string,
  section: Record<string, Plain>,
  inlineKey: string,
  fileKey: string,
): PemSource | undefined {
  const text = r.string(`tls_server_config.${inlineKey}`, section[inlineKey]);
  const file = r.string(`tls_server_config.${fileKey}`, section[fileKey]);
  if (text !== undefined && text !== '' && file !== undefined && file !== '') {
    r.fail(`tls_server_config.${inlineKey}`, `set either ${inlineKey} or ${fileKey}, not both`);
  }
  if (file !== undefined && file !== '')
    return { file: resolve(dir, file), key: `tls_server_config.${fileKey}` };
  if (text !== undefined && text !== '') return { text, key: `tls_server_config.${inlineKey}` };
  return undefined;
}

function parseTls(r: Reader, dir: string, value: Plain | undefined): TlsServerConfig | undefined {
  const t = r.object('tls_server_config', value, [
    'cert',
    'key',
    'client_ca',
    'cert_file',
    'key_file',
    'client_auth_type',
    'client_ca_file',
    'client_allowed_sans',
    'min_version',
    'max_version',
    'cipher_suites',
    'prefer_server_cipher_suites',
    'curve_preferences',
  ]);
  const cert = pemSource(r, dir, t, 'cert', 'cert_file');
  const key = pemSource(r, dir, t, 'key', 'key_file');
  const clientCa = pemSource(r, dir, t, 'client_ca', 'client_ca_file');
  const authText = r.string('tls_server_config.client_auth_type', t['client_auth_type']);
  // exporter-toolkit's rule: any of these turns TLS on, and then cert and key are required.
  if (cert === undefined && key === undefined && clientCa === undefined && !authText) return undefined;
  if (cert === undefined) r.fail('tls_server_config.cert_file', 'missing: TLS needs cert_file (or cert)');
  if (key === undefined) r.fail('tls_server_config.key_file', 'missing: TLS needs key_file (or key)');

  // "RequireClientCert" is exporter-toolkit's old spelling of RequireAnyClientCert.
  const authName = authText === 'RequireClientCert' ? 'RequireAnyClientCert' : authText || 'NoClientCert';
  const clientAuthType = r.oneOf('tls_server_config.client_auth_type', authName, CLIENT_AUTH_TYPES);
  if (clientCa !== undefined && clientAuthType === 'NoClientCert') {
    r.fail(
      clientCa.key,
      'a client CA is set but client_auth_type is NoClientCert (no client certificate is asked for)',
    );
  }
  const version = (k: 'min_version' | 'max_version', fallback: SecureVersion): SecureVersion => {
    const v = r.string(`tls_server_config.${k}`, t[k]);
    if (v === undefined || v === '') return fallback;
    return TLS_VERSIONS[r.oneOf(`tls_server_config.${k}`, v, Object.keys(TLS_VERSIONS))] ?? fallback;
  };
  const minVersion = version('min_version', 'TLSv1.2');
  const maxVersion = version('max_version', 'TLSv1.3');
  if (VERSION_ORDER.indexOf(minVersion) > VERSION_ORDER.indexOf(maxVersion)) {
    r.fail('tls_server_config.max_version', 'is below min_version');
  }
  const clientAllowedSans = parseAllowedSans(r, t['client_allowed_sans'], clientAuthType);
  const ciphers = r
    .list('tls_server_config.cipher_suites', t['cipher_suites'])
    .map(
      (c, i) =>
        CIPHER_SUITES[c] ??
        r.fail(
          `tls_server_config.cipher_suites[${i}]`,
          `unknown cipher suite "${c}" (known: ${Object.keys(CIPHER_SUITES).join(', ')})`,
        ),
    );
  const curves = r
    .list('tls_server_config.curve_preferences', t['curve_preferences'])
    .map(
      (c, i) =>
        CURVES[c] ??
        r.fail(
          `tls_server_config.curve_preferences[${i}]`,
          `unknown curve "${c}" (known: ${Object.keys(CURVES).join(', ')})`,
        ),
    );
  return {
    cert,
    key,
    clientCa,
    clientAuthType,
    minVersion,
    maxVersion,
    ciphers: ciphers.length > 0 ? ciphers.join(':') : undefined,
    ecdhCurve: curves.length > 0 ? curves.join(':') : undefined,
    honorCipherOrder: r.boolean(
      'tls_server_config.prefer_server_cipher_suites',
      t['prefer_server_cipher_suites'],
      true,
    ),
    clientAllowedSans,
  };
}

/**
 * client_allowed_sans, with exporter-toolkit's rule: only with a client auth type that requires a
 * certificate (the others let a client in without one, leaving nothing to match).
 */
function parseAllowedSans(
  r: Reader,
  value: Plain | undefined,
  clientAuthType: ClientAuthType,
): readonly string[] | undefined {
  const key = 'tls_server_config.client_allowed_sans';
  if (value === undefined || value === null) return undefined;
  const sans = r.list(key, value);
  if (sans.length === 0)
    r.fail(key, 'is empty: no client certificate could match (leave it out to allow any)');
  if (clientAuthType !== 'RequireAnyClientCert' && clientAuthType !== 'RequireAndVerifyClientCert') {
    r.fail(key, 'needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert');
  }
  return Object.freeze(sans);
}

/** Parses and checks the file's text; reads no certificate (see loadTlsMaterial). */
export function parseWebConfig(text: string, file: string): WebConfig {
  const r: Reader = new Reader(file);
  const top = r.object('', parseYaml(text, r), [
    'tls_server_config',
    'http_server_config',
    'basic_auth_users',
    'rate_limit',
  ]);
  const headers = parseHeaders(r, top['http_server_config']);
  const users = parseUsers(r, top['basic_auth_users']);
  return Object.freeze({
    file,
    tls: parseTls(r, dirname(resolve(file)), top['tls_server_config']),
    users,
    headers: Object.freeze(headers),
    rateLimit: parseRateLimit(r, top['rate_limit']),
  });
}

/**
 * A Go duration (time.ParseDuration, as exporter-toolkit's YAML reads one): "0", or numbers with
 * units, e.g. 1s, 1m30s, 0.5s, 250ms. Milliseconds; undefined when it is not one.
 */
export function parseGoDuration(text: string): number | undefined {
  const s = text.startsWith('+') ? text.slice(1) : text;
  if (s === '0') return 0;
  const part = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let ms = 0;
  let at = 0;
  while (at < s.length) {
    part.lastIndex = at;
    const m = part.exec(s);
    if (m === null) return undefined;
    ms += Number(m[1]) * (GO_DURATION_UNITS[m[2] ?? ''] ?? Number.NaN);
    at = part.lastIndex;
  }
  return at === 0 || Number.isNaN(ms) ? undefined : ms;
}

/**
 * rate_limit: interval (a duration; 0 or absent turns it off, as in exporter-toolkit) and burst.
 * Refused where exporter-toolkit would quietly do something else than meant: a bare number
 * (Go reads it as nanoseconds, i.e. no limit), a negative interval (no limit), a burst below 1
 * (every request refused).
 */
function parseRateLimit(r: Reader, section: Plain | undefined): RateLimit | undefined {
  const t = r.object('rate_limit', section, ['interval', 'burst']);
  const interval = t['interval'];
  let intervalMs: number | undefined;
  if (interval === undefined || interval === null || interval === 0) intervalMs = 0;
  else if (typeof interval === 'string') intervalMs = parseGoDuration(interval);
  if (intervalMs === undefined) {
    r.fail(
      'rate_limit.interval',
      typeof interval === 'number'
        ? `${interval} has no unit (write e.g. 1s or 100ms; Go would read it as nanoseconds)`
        : `"${String(interval)}" is not a duration (e.g. 1s, 100ms, 1m30s; 0 turns the limit off)`,
    );
  }
  if (intervalMs === 0) return undefined;
  const burst = t['burst'];
  if (typeof burst !== 'number' || !Number.isInteger(burst) || burst < 1) {
    r.fail('rate_limit.burst', 'must be a whole number of at least 1 (0 would refuse every request)');
  }
  return Object.freeze({ intervalMs, burst });
}

/** http_server_config: http2 (accepted, always on) and the response headers to set. */
function parseHeaders(r: Reader, section: Plain | undefined): Record<string, string> {
  const http = r.object('http_server_config', section, ['http2', 'headers']);
  r.boolean('http_server_config.http2', http['http2'], true);
  const headers: Record<string, string> = {};
  for (const [name, v] of Object.entries(
    r.object('http_server_config.headers', http['headers'], Object.keys(HEADERS)),
  )) {
    const key = `http_server_config.headers.${name}`;
    const value = r.string(key, v);
    if (value === undefined || value === '') continue; // blank: unset, as in exporter-toolkit
    const allowed = HEADERS[name] ?? [];
    if (allowed.length > 0) r.oneOf(key, value, allowed);
    if (/[\r\n]/.test(value)) r.fail(key, 'must be one line');
    headers[name] = value;
  }
  return headers;
}

/** basic_auth_users: user name -> bcrypt hash. */
function parseUsers(r: Reader, section: Plain | undefined): Map<string, string> {
  const users = new Map<string, string>();
  if (section === undefined || section === null) return users;
  if (typeof section !== 'object' || Array.isArray(section)) {
    r.fail('basic_auth_users', 'must be a mapping of user names to bcrypt hashes');
  }
  for (const [user, hash] of Object.entries(section)) {
    const key = `basic_auth_users.${user}`;
    if (user === '' || user.includes(':')) r.fail(key, 'a user name must be non-empty and without ":"');
    const h = r.string(key, hash);
    if (h === undefined || !BCRYPT.test(h)) {
      r.fail(
        key,
        'is not a bcrypt hash ($2y$, $2b$ or $2a$, cost 04-31; e.g. from `htpasswd -nBC 10 "" | tr -d \':\\n\'`)',
      );
    }
    const cost = bcryptCost(h);
    if (cost > MAX_BCRYPT_COST) {
      r.fail(
        key,
        `bcrypt cost ${cost} is above ${MAX_BCRYPT_COST}: every login would take ${2 ** (cost - 10)}x as long as at cost 10 and hold up all others; hash it again with a lower cost (htpasswd -nBC 10)`,
      );
    }
    users.set(user, h);
  }
  return users;
}
