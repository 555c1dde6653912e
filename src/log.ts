/** The process logger: pino, as JSON lines or (pino-pretty, synchronous) readable text. */
import { type Logger, pino } from 'pino';
import pretty from 'pino-pretty';
import type { LogFormat, LogLevel } from './config.js';

export function createLogger(level: LogLevel, format: LogFormat): Logger {
  const base = { level, base: { name: 'conntrack-exporter' } };
  if (format === 'json') return pino(base);
  return pino(
    base,
    pretty({ sync: true, colorize: process.stderr.isTTY, destination: 2, ignore: 'pid,hostname,name' }),
  );
}
