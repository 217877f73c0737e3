import { Logger } from '@aws-lambda-powertools/logger';

export type { Logger };

/** One logger for the process; handlers and adapters take children of it. */
export function createLogger(level: string): Logger {
  return new Logger({
    serviceName: 'matrx-sandbox-orchestrator',
    logLevel: level === 'WARNING' ? 'WARN' : (level as 'DEBUG' | 'INFO' | 'ERROR' | 'CRITICAL'),
  });
}
