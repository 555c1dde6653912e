#!/usr/bin/env node
/**
 * Entry point: flags -> Config -> running exporter; SIGTERM/SIGINT close it within 2 s (a second
 * signal exits at once). Start-up failures print one line naming the problem and exit non-zero.
 */
import { exporterVersion, type RunningExporter, startExporter } from './app.js';
import { parseConfig, usage } from './config.js';
import { ConntrackError } from './errors.js';
import { createLogger } from './log.js';

const SHUTDOWN_DEADLINE_MS = 1500;

function fail(err: unknown): never {
  const message =
    err instanceof ConntrackError ? err.message : err instanceof Error ? err.message : String(err);
  const hint = err instanceof ConntrackError && err.code === 'CT_ERR_CONFIG' ? ' (see --help)' : '';
  process.stderr.write(`conntrack-exporter: ${message}${hint}\n`);
  process.exit(err instanceof ConntrackError && err.code === 'CT_ERR_CONFIG' ? 2 : 1);
}

async function main(): Promise<void> {
  let config: ReturnType<typeof parseConfig>;
  try {
    config = parseConfig(process.argv.slice(2), process.stderr.isTTY);
  } catch (err) {
    fail(err);
  }
  if (config.action === 'help') {
    process.stdout.write(usage());
    return;
  }
  if (config.action === 'version') {
    process.stdout.write(`conntrack-exporter ${exporterVersion()} (node ${process.version})\n`);
    return;
  }

  const log = createLogger(config.logLevel, config.logFormat);
  let running: RunningExporter;
  try {
    running = await startExporter(config, log);
  } catch (err) {
    fail(err);
  }
  log.info(
    { addresses: running.addresses, tls: running.tls, telemetryPath: config.telemetryPath },
    'conntrack-exporter listening',
  );
  running.seeded.catch((err: unknown) => {
    log.fatal({ err }, 'initial conntrack table dump failed');
    fail(err);
  });

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal, exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    setTimeout(() => {
      log.warn('shutdown deadline passed, exiting');
      process.exit(0);
    }, SHUTDOWN_DEADLINE_MS).unref();
    running.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'error while shutting down');
        process.exit(0);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

void main();
