/** One line of /proc/self/mountinfo: what is mounted where, and from which filesystem. */
export interface MountEntry {
  /** The kernel's id of this mount (not reused while it exists). */
  mountId: string;
  /** `major:minor` of the filesystem: every bind of one FUSE mount shares it. */
  device: string;
  /** The directory of that filesystem seen at the mount point. */
  root: string;
  mountPoint: string;
  fsType: string;
  source: string;
  /** Mounts made under it here propagate to its peers (a container's `rslave` bind sees them). */
  shared: boolean;
}

/** mountinfo escapes space, tab, newline and backslash in paths as `\` and three octal digits. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(Number.parseInt(octal, 8)),
  );
}

/** The inverse, for tests and for writing a path as the kernel would. */
export function escapeMountPath(path: string): string {
  return path.replace(
    /[ \t\n\\]/g,
    (char) => `\\${char.charCodeAt(0).toString(8).padStart(3, '0')}`,
  );
}

/**
 * Parses the text of /proc/self/mountinfo (see proc(5)); a line that does not have its shape
 * is skipped rather than guessed at.
 */
export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    if (separator < 0 || fields.length < separator + 3) continue;
    const [mountId, , device, root, mountPoint] = fields;
    if (!mountId || !device || !root || !mountPoint || !/^\d+:\d+$/.test(device)) continue;
    const optional = fields.slice(6, separator);
    entries.push({
      mountId,
      device,
      root: unescape(root),
      mountPoint: unescape(mountPoint),
      fsType: fields[separator + 1] ?? '',
      source: unescape(fields[separator + 2] ?? ''),
      shared: optional.some((tag) => tag.startsWith('shared:')),
    });
  }
  return entries;
}

/** The mount at exactly `path` (the last one, which hides those before it). */
export function mountAt(entries: readonly MountEntry[], path: string): MountEntry | undefined {
  let found: MountEntry | undefined;
  for (const entry of entries) if (entry.mountPoint === path) found = entry;
  return found;
}
