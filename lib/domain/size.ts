/** A size as settings and configs write it: `512m`, `4g`, `100` (bytes). */
export const SIZE_PATTERN = /^(\d+(?:\.\d+)?)([bkmg]?)$/i;

export function parseSize(value: string): number {
  const match = SIZE_PATTERN.exec(value.trim());
  if (!match) throw new Error(`not a size: ${value}`);
  const units: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
  return Math.floor(Number(match[1]) * (units[(match[2] ?? '').toLowerCase()] ?? 1));
}

/** A size for people: `64.0 MiB`, `1.50 GiB`. */
export function describeSize(bytes: number): string {
  return bytes >= 1024 ** 3
    ? `${(bytes / 1024 ** 3).toFixed(2)} GiB`
    : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}
