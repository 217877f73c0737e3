import { docker } from './docker.js';

/** Says loudly that a test file lacks what it needs: under CI=true it is a failure, else a skip. */
export function dependencyMissing(lines: string[], skipped: string): void {
  if (process.env.CI === 'true') {
    shout([...lines, 'CI=true: this is a failure.']);
    throw new Error(lines.join(' '));
  }
  shout([...lines, `${skipped} SKIPPED.`]);
}

function shout(lines: string[]): void {
  process.stderr.write(
    ['', '!'.repeat(88), ...lines.map((line) => `!! ${line}`), '!'.repeat(88), ''].join('\n'),
  );
}

/**
 * Whether the engine has the OCI runtime `name` registered. Without it, under CI (CI=true) the
 * test file fails with the reason; elsewhere the reason is shouted and the caller skips its tests.
 */
export async function runtimeRegistered(name: string): Promise<boolean> {
  const info = (await docker.info()) as { Runtimes?: Record<string, unknown> };
  const names = Object.keys(info.Runtimes ?? {});
  if (names.includes(name)) return true;
  const lines = [
    `The Docker engine has no OCI runtime ${name} (it has ${names.join(', ') || 'none listed'}).`,
    `Install and register it (.ci/register-crun does it for crun on Debian, as root).`,
  ];
  dependencyMissing(lines, `The tests that need ${name} are`);
  return false;
}
