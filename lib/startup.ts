import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig, type Settings } from './config.js';
import { PROJECT_ROOT } from './projectRoot.js';

// Node 20 is supported here; the SDK's notice would be the one line of output not in our format.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/**
 * The settings of a command-line entry point: `.env` if there is one (variables already set in the
 * environment win), parsed once; a bad value ends the process naming the variable.
 */
export function loadSettingsOrExit(): Settings {
  if (existsSync(join(PROJECT_ROOT, '.env'))) process.loadEnvFile(join(PROJECT_ROOT, '.env'));
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

/** Runs an entry point's main, exiting with its code; a crash prints its stack once. */
export function runMain(main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
}

/**
 * A startup check's failure as a log call: its message says what to do, so the error's own stack
 * is left out; only what caused it (a refused connection, say) is attached.
 */
export function startupFailure(error: unknown): [string, Record<string, unknown>] {
  const { message, cause } = error as Error;
  return [message, cause === undefined ? {} : { error: cause }];
}
