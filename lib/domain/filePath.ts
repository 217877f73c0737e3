/** Why a path in a sandbox is refused, or null when it is fine. */
export function filePathProblem(path: string): string | null {
  if (path.includes('\0')) return 'must not contain a NUL byte';
  if (!path.startsWith('/')) return 'must be an absolute path';
  if (path.split('/').includes('..')) return 'must not contain a .. segment';
  return null;
}

/**
 * The one spelling of an accepted path: no empty or `.` segments, no trailing slash (`/` stays
 * `/`). Only for a path `filePathProblem` accepts.
 */
export function normalizeFilePath(path: string): string {
  const segments = path.split('/').filter((segment) => segment !== '' && segment !== '.');
  return `/${segments.join('/')}`;
}

/** The last segment of a normalized path (`/` for the root). */
export function fileName(path: string): string {
  return path === '/' ? '/' : path.slice(path.lastIndexOf('/') + 1);
}
