import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { LogFormat, Logger } from '../../lib/logger.js';

const isTextEntry = (line: string) => /^\d{4}-\d{2}-\d{2}T\S+ [A-Z]+ /.test(line);

/**
 * Passes the service's own log lines through and turns anything else the framework prints (its
 * banner, its warnings) into log entries too, so every line of output is one entry.
 */
export function relayOutput(
  stream: Readable | null,
  logger: Logger,
  format: LogFormat,
  level: 'info' | 'warn',
): void {
  if (!stream) return;
  const isEntry = format === 'json' ? (line: string) => line.startsWith('{') : isTextEntry;
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
    if (isEntry(line)) {
      process.stdout.write(`${line}\n`);
      return;
    }
    const text = line.replace(/[│┌┐└┘─]/g, '').trim();
    if (!text) return;
    // The route table of the banner is detail; anything else the framework says is worth seeing.
    if (/^(GET|POST|PUT|DELETE|PATCH|ANY|\*|http)/.test(text)) {
      logger.debug('serverless-offline', { output: text });
    } else {
      logger[level]('serverless-offline', { output: text });
    }
  });
}
