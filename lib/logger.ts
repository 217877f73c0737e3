import { AsyncLocalStorage } from 'node:async_hooks';
import { Logger } from '@aws-lambda-powertools/logger';
import type { ConstructorOptions } from '@aws-lambda-powertools/logger/types';

export type { Logger };
export type LogLevelName = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL';
export type LogFormat = 'json' | 'text';

/** The request being served, so every line logged while serving it carries its id. */
export const requestContext = new AsyncLocalStorage<{ requestId: string }>();

const SERVICE = 'matrx-sandbox-orchestrator';
// Printed first in text lines; everything else follows as key=value.
const HEAD_KEYS = new Set(['timestamp', 'level', 'message', 'service', 'sampling_rate']);

type PrintedLog = Parameters<Logger['printLog']>[1];

/**
 * Powertools' logger with our level names (WARNING, as MATRX_LOG_LEVEL spells it), the request id
 * of the current request, and a text format: one line per entry, same fields, for people.
 */
class MatrxLogger extends Logger {
  readonly #format: LogFormat;

  constructor(format: LogFormat, options: ConstructorOptions) {
    super(options);
    this.#format = format;
  }

  protected override createLogger(options?: ConstructorOptions): Logger {
    return new MatrxLogger(this.#format, options ?? {});
  }

  protected override printLog(_logLevel: number, log: PrintedLog): void {
    log.prepareForPrint();
    const entry: Record<string, unknown> = { ...log.getAttributes() };
    if (entry.level === 'WARN') entry.level = 'WARNING';
    delete entry.sampling_rate;
    const requestId = requestContext.getStore()?.requestId;
    if (requestId && entry.request_id === undefined) entry.request_id = requestId;
    process.stdout.write(`${formatEntry(entry, this.#format, this.getJsonReplacer())}\n`);
  }
}

type Replacer = (key: string, value: unknown) => unknown;

/** One entry as one line: JSON, or `timestamp LEVEL message key=value ...`. */
export function formatEntry(
  entry: Record<string, unknown>,
  format: LogFormat,
  replacer?: Replacer,
): string {
  if (format === 'json') return JSON.stringify(entry, replacer);
  const text = (value: unknown) => {
    const plain = typeof value === 'string' ? value : JSON.stringify(value, replacer);
    return /^[^\s"=]+$/.test(plain ?? '') ? plain : JSON.stringify(plain);
  };
  const fields = Object.entries(entry)
    .filter(([key, value]) => !HEAD_KEYS.has(key) && value !== undefined)
    .map(([key, value]) => `${key}=${text(value)}`);
  const message = JSON.stringify(String(entry.message ?? '')).slice(1, -1);
  const level = String(entry.level ?? '').padEnd(8);
  return [
    `${String(entry.timestamp ?? new Date().toISOString())} ${level} ${message}`,
    ...fields,
  ].join(' ');
}

/** One logger for the process (the API, the reconciler, the launcher); children share its setup. */
export function createLogger(level: LogLevelName, format: LogFormat): Logger {
  return new MatrxLogger(format, {
    serviceName: SERVICE,
    logLevel: level === 'WARNING' ? 'WARN' : level,
  });
}
