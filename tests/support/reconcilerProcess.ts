import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PROJECT_ROOT } from '../../lib/projectRoot.js';

export type LogEntry = Record<string, unknown> & { level: string; message: string };

export interface ReconcilerProcess {
  process: ChildProcess;
  /** Every JSON entry it printed so far. */
  entries: LogEntry[];
  exited: Promise<number>;
}

/** The real reconciler (dist/reconciler/main.js), its JSON output collected. */
export function startReconciler(env: Record<string, string>, args: string[] = []) {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist/reconciler/main.js'), ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const entries: LogEntry[] = [];
  const collect = (line: string) => {
    try {
      entries.push(JSON.parse(line) as LogEntry);
    } catch {
      entries.push({ level: 'RAW', message: line });
    }
  };
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', collect);
  }
  const exited = new Promise<number>((resolve) =>
    child.once('exit', (code) => resolve(code ?? -1)),
  );
  return { process: child, entries, exited } satisfies ReconcilerProcess;
}

/** One pass (`--once`): its exit code and its entries. */
export async function reconcileOnce(env: Record<string, string>) {
  const reconciler = startReconciler(env, ['--once']);
  const code = await reconciler.exited;
  // The last lines may still be in the pipe when the exit event fires.
  await new Promise((resolve) => setTimeout(resolve, 50));
  return { code, entries: reconciler.entries };
}

export function passSummaries(entries: LogEntry[]) {
  return entries.filter((entry) => entry.message === 'reconcile pass finished');
}
